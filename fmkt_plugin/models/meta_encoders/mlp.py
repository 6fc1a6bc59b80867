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


@register_model()
class MLPMetaEncoder(BaseMetaEncoder):
    """Residual pointwise blocks (LayerNorm -> 1x1 conv -> ReLU -> 1x1 conv) + 1x1 output conv.

    Works per position, so it is the cheapest choice and the natural one for pre-logit vectors.

    Args:
        in_channels: channels of ``x`` (kept).
        num_blocks: number of residual blocks (the paper uses 1 or 2).
        hidden_channels: width inside a block (default ``in_channels``).
        time_embed_dim: sinusoidal features of the time embedding.
        zero_init_out: zero-initialise the output conv (initial velocity 0).
    """

    short_name = 'mlp'

    def __init__(self,
                 in_channels: int,
                 num_blocks: int = 1,
                 hidden_channels: Optional[int] = None,
                 time_embed_dim: int = 128,
                 zero_init_out: bool = True) -> None:
        super().__init__(in_channels, time_embed_dim, zero_init_out)
        num_blocks = check_int(num_blocks, 'num_blocks', owner='MLPMetaEncoder')
        hidden = (in_channels if hidden_channels is None else
                  check_int(hidden_channels, 'hidden_channels', owner='MLPMetaEncoder'))
        self.blocks = nn.Sequential(
            *[_PointwiseResBlock(in_channels, hidden) for _ in range(num_blocks)])
        self.out = nn.Conv2d(in_channels, in_channels, 1)
        self.init_weights()

    def velocity(self, h: Tensor) -> Tensor:
        return self.out(self.blocks(h))

    def velocity_vector(self, h: Tensor) -> Tensor:
        for block in self.blocks:
            h = block.forward_vector(h)
        return pointwise(self.out, h)

    def output_layer(self) -> nn.Module:
        return self.out
