"""Convolutional meta-encoders: plain, mobile (depthwise separable) and residual."""
from typing import Optional

from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_int
from .base import BaseMetaEncoder

__all__ = ['ConvMetaEncoder']

_VARIANTS = ('plain', 'mobile', 'residual')


def _conv3x3(in_channels: int, out_channels: int, depthwise_separable: bool,
             bias: bool = True) -> nn.Module:
    if not depthwise_separable:
        return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias)
    return nn.Sequential(
        nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=bias),
        nn.Conv2d(in_channels, out_channels, 1, bias=bias))


@register_model()
class ConvMetaEncoder(BaseMetaEncoder):
    """SiLU -> 3x3 conv -> GroupNorm(1) -> SiLU -> 3x3 conv.

    Variants:
        - ``'plain'``: the body above is the velocity.
        - ``'mobile'``: same, with depthwise 3x3 + pointwise 1x1 convs (far fewer FLOPs).
        - ``'residual'``: ``h + body(h)`` followed by a 1x1 output conv.

    On ``(B, C)`` vectors (1x1 maps) only the centre tap of each 3x3 kernel is used.

    Args:
        in_channels: channels of ``x`` (kept).
        variant: one of ``'plain'``, ``'mobile'``, ``'residual'``.
        hidden_channels: channels between the two convs (default ``in_channels``).
        time_embed_dim: sinusoidal features of the time embedding (None: ``in_channels``).
        zero_init_out: zero-initialise the last conv (initial velocity 0).
        bias: give the convs a bias (the FM-KT authors' convs have none: ``bias=False``).
        time_embed: other arguments of the time embedding (see :class:`BaseMetaEncoder`).
    """

    short_name = 'conv'

    def __init__(self,
                 in_channels: int,
                 variant: str = 'plain',
                 hidden_channels: Optional[int] = None,
                 time_embed_dim: Optional[int] = 128,
                 zero_init_out: bool = True,
                 bias: bool = True,
                 time_embed: Optional[dict] = None) -> None:
        super().__init__(in_channels, time_embed_dim, zero_init_out, time_embed)
        if variant not in _VARIANTS:
            raise ValueError(f'ConvMetaEncoder: variant must be one of {_VARIANTS}, got '
                             f'{variant!r}')
        self.variant = variant
        hidden = (in_channels if hidden_channels is None else
                  check_int(hidden_channels, 'hidden_channels', owner='ConvMetaEncoder'))
        separable = variant == 'mobile'
        self.body = nn.Sequential(
            nn.SiLU(), _conv3x3(in_channels, hidden, separable, bias), nn.GroupNorm(1, hidden),
            nn.SiLU(), _conv3x3(hidden, in_channels, separable, bias))
        self.out = (nn.Conv2d(in_channels, in_channels, 1, bias=bias)
                    if variant == 'residual' else None)
        self.init_weights()

    def velocity(self, h: Tensor) -> Tensor:
        if self.out is None:
            return self.body(h)
        return self.out(h + self.body(h))

    def output_layer(self) -> nn.Module:
        if self.out is not None:
            return self.out
        last = self.body[-1]
        return last[-1] if isinstance(last, nn.Sequential) else last
