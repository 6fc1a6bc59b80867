"""Pointwise (MLP) meta-encoder."""
from typing import Optional

from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_int
from .base import BaseMetaEncoder, LayerNorm2d, pointwise

__all__ = ['MLPMetaEncoder']


class _PointwiseResBlock(nn.Module):
    """``x + conv1x1(relu(conv1x1(layernorm(x))))``."""

    def __init__(self, channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.norm = LayerNorm2d(channels)
        self.fc1 = nn.Conv2d(channels, hidden_channels, 1)
        self.act = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden_channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))

    def forward_vector(self, x: Tensor) -> Tensor:
        """The same block on ``(B, C)`` vectors."""
        h = nn.LayerNorm.forward(self.norm, x)
        return x + pointwise(self.fc2, self.act(pointwise(self.fc1, h)))


class _PostNormBlock(nn.Module):
    """``layernorm(x + conv1x1(relu(conv1x1(x))))``, no biases: the FM-KT authors' block."""

    def __init__(self, channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden_channels, 1, bias=False)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden_channels, channels, 1, bias=False)
        self.norm = LayerNorm2d(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.fc2(self.act(self.fc1(x))))

    def forward_vector(self, x: Tensor) -> Tensor:
        return nn.LayerNorm.forward(self.norm, x + pointwise(self.fc2,
                                                             self.act(pointwise(self.fc1, x))))


@register_model()
class MLPMetaEncoder(BaseMetaEncoder):
    """Residual pointwise blocks (LayerNorm -> 1x1 conv -> ReLU -> 1x1 conv) + 1x1 output conv.

    Works per position, so it is the cheapest choice and the natural one for pre-logit vectors.

    Args:
        in_channels: channels of ``x`` (kept).
        num_blocks: number of residual blocks (the paper uses 1 or 2).
        hidden_channels: width inside a block (default ``in_channels``).
        time_embed_dim: sinusoidal features of the time embedding (None: ``in_channels``).
        zero_init_out: zero-initialise the output conv (initial velocity 0).
        block: ``'prenorm'`` (default: ``x + fc2(relu(fc1(LN x)))`` with biases, then a 1x1
            output conv) or ``'authors'`` (the FM-KT authors' ``LN(x + fc2(relu(fc1 x)))``
            without biases and without an output layer: the last block's output is the
            velocity, layer-normalised per position; ``zero_init_out`` must then be False).
        time_embed: see :class:`BaseMetaEncoder`.
    """

    short_name = 'mlp'

    def __init__(self,
                 in_channels: int,
                 num_blocks: int = 1,
                 hidden_channels: Optional[int] = None,
                 time_embed_dim: Optional[int] = 128,
                 zero_init_out: bool = True,
                 block: str = 'prenorm',
                 time_embed: Optional[dict] = None) -> None:
        super().__init__(in_channels, time_embed_dim, zero_init_out, time_embed)
        num_blocks = check_int(num_blocks, 'num_blocks', owner='MLPMetaEncoder')
        hidden = (in_channels if hidden_channels is None else
                  check_int(hidden_channels, 'hidden_channels', owner='MLPMetaEncoder'))
        if block not in ('prenorm', 'authors'):
            raise ValueError(f"MLPMetaEncoder: block must be 'prenorm' or 'authors', got "
                             f'{block!r}')
        if block == 'authors' and zero_init_out:
            raise ValueError("MLPMetaEncoder: block='authors' has no output layer to "
                             'zero-initialise; set zero_init_out=False')
        self.block = block
        cls = _PointwiseResBlock if block == 'prenorm' else _PostNormBlock
        self.blocks = nn.Sequential(*[cls(in_channels, hidden) for _ in range(num_blocks)])
        self.out = nn.Conv2d(in_channels, in_channels, 1) if block == 'prenorm' else None
        self.init_weights()

    def velocity(self, h: Tensor) -> Tensor:
        h = self.blocks(h)
        return h if self.out is None else self.out(h)

    def velocity_vector(self, h: Tensor) -> Tensor:
        for block in self.blocks:
            h = block.forward_vector(h)
        return h if self.out is None else pointwise(self.out, h)

    def output_layer(self) -> nn.Module:
        return self.out
