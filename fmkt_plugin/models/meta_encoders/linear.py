"""Affine meta-encoder: a flow of it folds into one linear layer (zero-cost FM-KT^Theta)."""
from typing import Optional

from torch import Tensor, nn

from ...registry import register_model
from .base import BaseMetaEncoder, pointwise

__all__ = ['LinearMetaEncoder']


@register_model()
class LinearMetaEncoder(BaseMetaEncoder):
    """``v(x, t) = W (x + e(t)) + b``: a 1x1 conv on the time-conditioned input.

    The velocity is affine in ``x`` for every ``t`` (the time embedding ``e(t)`` only shifts it).
    Every schedule's teacher estimate is affine in ``(x, v)`` and the Euler update is linear, so
    the whole N-step flow, the shared step classifier and the ensemble mean compose into one
    affine map of the student feature. :func:`fold_flow_head` computes that map, and the
    student deploys as a plain linear classifier that gives the ensemble's logits exactly, at
    zero inference overhead.

    Args:
        in_channels: channels of ``x`` (kept).
        time_embed_dim: sinusoidal features of the time embedding (None: ``in_channels``).
        zero_init_out: zero-initialise the conv (initial velocity 0).
    """

    short_name = 'linear'
    affine = True

    def __init__(self, in_channels: int, time_embed_dim: Optional[int] = 128,
                 zero_init_out: bool = True) -> None:
        super().__init__(in_channels, time_embed_dim, zero_init_out)
        self.out = nn.Conv2d(in_channels, in_channels, 1)
        self.init_weights()

    def velocity(self, h: Tensor) -> Tensor:
        return self.out(h)

    def velocity_vector(self, h: Tensor) -> Tensor:
        return pointwise(self.out, h)

    def output_layer(self) -> nn.Module:
        return self.out
