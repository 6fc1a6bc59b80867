"""Variance-preserving (trigonometric) path."""
import math

import torch
from torch import Tensor

from ...registry import register_model
from .base import InterpolantSchedule

__all__ = ['VPSchedule']


@register_model()
class VPSchedule(InterpolantSchedule):
    """``alpha(t) = sin(pi t / 2)``, ``sigma(t) = cos(pi t / 2)``, so ``alpha^2 + sigma^2 = 1``.

    The path is curved (a quarter circle), so Euler integration has an ``O(1/N)`` error.
    """

    short_name = 'vp'

    def alpha(self, t: Tensor) -> Tensor:
        return torch.sin(0.5 * math.pi * t)

    def sigma(self, t: Tensor) -> Tensor:
        return torch.cos(0.5 * math.pi * t)

    def d_alpha(self, t: Tensor) -> Tensor:
        return 0.5 * math.pi * torch.cos(0.5 * math.pi * t)

    def d_sigma(self, t: Tensor) -> Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * t)
