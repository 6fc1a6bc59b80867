"""Sinusoidal embedding of the flow time t in [0, 1]."""
import math
from typing import Optional, Union

import torch
from torch import Tensor, nn

__all__ = ['SinusoidalTimeEmbedding']


class SinusoidalTimeEmbedding(nn.Module):
    """Sinusoidal features of ``t`` followed by an optional small MLP.

    ``t`` is scaled by ``time_scale`` first: the flow uses t in [0, 1] while the geometric
    frequency ladder (as in transformer position encodings) is designed for integer-like inputs;
    scaling spreads the steps ``t = i / N`` over many periods of the fast features.

    Args:
        embed_dim: number of sinusoidal features (even).
        out_channels: if set, a ``Linear -> SiLU -> Linear`` MLP maps the features to this
            many channels.
        hidden_channels: width of the MLP (default ``embed_dim``).
        time_scale: multiplier applied to t before the sinusoids.
        max_period: longest period of the sinusoids.
        order: ``'sin_cos'`` (default) or ``'cos_sin'`` (the FM-KT authors' order).
        activation: of the MLP, ``'silu'`` (default) or ``'relu'`` (the FM-KT authors').
    """

    def __init__(self,
                 embed_dim: int = 128,
                 out_channels: Optional[int] = None,
                 hidden_channels: Optional[int] = None,
                 time_scale: float = 1000.0,
                 max_period: float = 10000.0,
                 order: str = 'sin_cos',
                 activation: str = 'silu') -> None:
        super().__init__()
        if order not in ('sin_cos', 'cos_sin'):
            raise ValueError(f"SinusoidalTimeEmbedding: order must be 'sin_cos' or 'cos_sin', "
                             f'got {order!r}')
        if activation not in ('silu', 'relu'):
            raise ValueError(f"SinusoidalTimeEmbedding: activation must be 'silu' or 'relu', "
                             f'got {activation!r}')
        self.order = order
        if embed_dim < 2 or embed_dim % 2:
            raise ValueError(f'SinusoidalTimeEmbedding: embed_dim must be an even int >= 2, '
                             f'got {embed_dim}')
        self.embed_dim = embed_dim
        self.time_scale = time_scale
        half = embed_dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer('freqs', freqs, persistent=False)
        self.out_channels = out_channels or embed_dim
        if out_channels is None:
            self.mlp = None
        else:
            hidden = hidden_channels or embed_dim
            act = nn.SiLU() if activation == 'silu' else nn.ReLU()
            self.mlp = nn.Sequential(
                nn.Linear(embed_dim, hidden), act, nn.Linear(hidden, out_channels))

    def forward(self, t: Union[float, Tensor], batch_size: Optional[int] = None) -> Tensor:
        """Embed the time.

        Args:
            t: a float, a 0-d tensor or a ``(B,)`` tensor.
            batch_size: expand a scalar time to this batch size.

        Returns:
            ``(B, out_channels)`` (``B = 1`` for a scalar time without ``batch_size``).
        """
        t = torch.as_tensor(t, dtype=self.freqs.dtype, device=self.freqs.device).reshape(-1)
        if batch_size is not None and t.numel() == 1:
            t = t.expand(batch_size)
        args = (self.time_scale * t)[:, None] * self.freqs[None, :]
        waves = [torch.sin(args), torch.cos(args)]
        emb = torch.cat(waves if self.order == 'sin_cos' else waves[::-1], dim=1)
        return emb if self.mlp is None else self.mlp(emb)
