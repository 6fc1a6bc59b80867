"""Base class of the velocity models (meta-encoders)."""
from abc import abstractmethod
from typing import Callable, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...utils.device import host_to_device
from ...utils.validation import check_int
from ..short_names import add_short_name
from .time_embedding import SinusoidalTimeEmbedding

__all__ = ['BaseMetaEncoder', 'LayerNorm2d', 'pointwise']


def pointwise(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """A 1x1 convolution applied to ``(B, C)`` vectors, as a matrix product with its weights."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a ``(B, C, H, W)`` map, independently per position."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class BaseMetaEncoder(nn.Module):
    """Velocity model ``v(x, t)`` with the shape and channel count of ``x``.

    Handles what all meta-encoders share: ``(B, C)`` vectors are processed as ``(B, C, 1, 1)``
    maps, ``(B, L, C)`` tokens (a ViT's, channels last) as a ``(B, C, L, 1)`` map of ``L``
    positions (a pointwise encoder acts on each token alone; a convolution or window attention
    runs along the token sequence), and the time enters by adding
    ``SinusoidalTimeEmbedding(t)`` (projected to ``C`` channels) to every position of ``x``.
    Subclasses implement :meth:`velocity` on maps and name their final layer in
    :meth:`output_layer`.

    In a flow, the solver binds the encoder to its time grid (:meth:`on_time_grid`): the
    embeddings of all the times it evaluates come from one batched call, and each step reuses
    its row broadcast over the batch, instead of embedding a ``(B,)`` time tensor per step.

    Zero-initialising that final layer makes the initial velocity exactly 0 (the teacher
    estimate of the rectified/VE paths then starts at the student feature). It does not stop
    training: the zero layer's own gradient ``dL/dW = g h^T`` is non-zero, so it moves at the
    first update and earlier layers receive gradients from then on. It would stall only if two
    zeroed layers were in series, which none of the encoders here does.

    Args:
        in_channels: channels of ``x``.
        time_embed_dim: sinusoidal features of the time embedding (None: ``in_channels``).
        zero_init_out: zero-initialise the output layer (initial velocity 0).
        time_embed: other arguments of the :class:`SinusoidalTimeEmbedding` (``time_scale``,
            ``order``, ``activation``); the FM-KT authors' embedding is ``time_embed_dim=None``
            (C features) with ``dict(time_scale=1, order='cos_sin', activation='relu')``.
    """

    short_name: str = ''
    #: True when ``v(x, t)`` is affine in ``x`` for every ``t``: a flow of such an encoder on a
    #: pooled feature folds into one linear layer (see :func:`fold_flow_head`).
    affine: bool = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.short_name:
            add_short_name('meta_encoder', cls.short_name, cls)

    def __init__(self, in_channels: int, time_embed_dim: Optional[int] = 128,
                 zero_init_out: bool = True, time_embed: Optional[dict] = None) -> None:
        super().__init__()
        self.in_channels = check_int(in_channels, 'in_channels', owner=type(self).__name__)
        # None: as many features as x has channels (the FM-KT authors' choice)
        time_embed_dim = self.in_channels if time_embed_dim is None else check_int(
            time_embed_dim, 'time_embed_dim', owner=type(self).__name__)
        self.zero_init_out = zero_init_out
        extra = dict(time_embed or {})
        unknown = set(extra) - {'time_scale', 'order', 'activation', 'max_period'}
        if unknown:
            raise ValueError(f'{type(self).__name__}: time_embed takes time_scale, order, '
                             f'activation, max_period; got {sorted(unknown)}')
        self.time_embed = SinusoidalTimeEmbedding(time_embed_dim, out_channels=in_channels,
                                                  **extra)

    @abstractmethod
    def velocity(self, h: Tensor) -> Tensor:
        """Velocity of a time-conditioned map ``h`` of shape ``(B, C, H, W)``."""

    @abstractmethod
    def output_layer(self) -> nn.Module:
        """The final layer (zero-initialised when ``zero_init_out``)."""

    def init_weights(self) -> None:
        """Apply the output-layer zero init (also re-applied after mmengine's ``init_cfg``)."""
        if self.zero_init_out:
            layer = self.output_layer()
            nn.init.zeros_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor, t: Union[float, Tensor, None],
                time_embedding: Optional[Tensor] = None) -> Tensor:
        """Predict the velocity.

        Args:
            x: ``(B, C)`` vectors, ``(B, C, H, W)`` maps or ``(B, L, C)`` tokens.
            t: a float, a 0-d tensor or a ``(B,)`` tensor in [0, 1] (not read, and may be
                ``None``, when ``time_embedding`` is given).
            time_embedding: ``self.time_embed(t)`` computed beforehand, ``(1, C)`` or
                ``(B, C)``; ``t`` is then not embedded again (see :meth:`on_time_grid`).

        Returns:
            A tensor of the shape of ``x``.
        """
        if x.dim() not in (2, 3, 4):
            raise ValueError(f'{type(self).__name__}: expected (B, C), (B, C, H, W) or (B, L, C) '
                             f'tokens, got shape {tuple(x.shape)}')
        channels = x.shape[-1] if x.dim() == 3 else x.shape[1]
        if channels != self.in_channels:
            raise ValueError(f'{type(self).__name__}: expected {self.in_channels} channels, got '
                             f'{channels}' + (' (tokens are (B, L, C))' if x.dim() == 3 else ''))
        if time_embedding is None:
            time_embedding = self.time_embed(t, batch_size=x.shape[0])
        temb = time_embedding.to(x.dtype)
        if x.dim() == 2:
            return self.velocity_vector(x + temb)
        if x.dim() == 3:  # tokens: a (B, C, L, 1) map of the sequence, back to channels last
            seq = (x + temb[:, None, :]).transpose(1, 2).unsqueeze(-1)
            return self.velocity(seq).squeeze(-1).transpose(1, 2)
        return self.velocity(x + temb[:, :, None, None])

    def on_time_grid(self, times: Sequence[float], like: Tensor,
                     call: Optional[Callable[..., Tensor]] = None
                     ) -> Callable[[Tensor, float], Tensor]:
        """Bind the encoder to the times a solver evaluates.

        Embeds every distinct time in one batched call; the returned ``velocity(x, t)``
        evaluates the encoder at ``x`` with the row of ``t`` (a float of ``times``; any other
        time is embedded on the fly). It is the function ``self(x, t)`` with ``t`` a ``(B,)``
        tensor, to float rounding: the rows are the same, and the gradient of the embedding
        MLP is summed over the batch before the MLP instead of after it.

        Args:
            times: the grid times, as floats.
            like: a tensor with the dtype and device of the states (the times are rounded to
                its dtype, as a per-step ``(B,)`` time tensor would be).
            call: what evaluates the encoder (default ``self``; a ``torch.compile`` wrapper of
                it runs the compiled graph), called as ``call(x, None, time_embedding=row)``.

        Returns:
            ``velocity(x, t)``.
        """
        call = self if call is None else call
        rows = {t: i for i, t in enumerate(dict.fromkeys(float(t) for t in times))}
        # one host-to-device copy per solve, queued without waiting (host_to_device)
        grid = host_to_device(torch.tensor(list(rows), dtype=torch.float64), like.device,
                              like.dtype)
        # unbind: a single backward node for all the rows (slicing would add one per step)
        embeddings: List[Tensor] = list(self.time_embed(grid).unbind(0))

        def velocity(x: Tensor, t: float) -> Tensor:
            i = rows.get(t)
            if i is None:
                return call(x, torch.full((x.shape[0], ), t, dtype=x.dtype, device=x.device))
            # no float time in the call: torch.compile would specialise on each value
            return call(x, None, time_embedding=embeddings[i].unsqueeze(0))

        return velocity

    def velocity_vector(self, h: Tensor) -> Tensor:
        """Velocity of time-conditioned ``(B, C)`` vectors: by default :meth:`velocity` on
        ``1x1`` maps. Pointwise encoders override it with the same weights as plain matrix
        products, several times faster than 1x1 convolutions on 1x1 maps."""
        return self.velocity(h[:, :, None, None]).flatten(1)
