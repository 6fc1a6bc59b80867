"""Variance-preserving (trigonometric) path."""
import math

import torch
from torch import Tensor

from ...registry import register_model
from .base import InterpolantSchedule, ScheduleOutput

__all__ = ['VPSchedule']


@register_model()
class VPSchedule(InterpolantSchedule):
    """``alpha(t) = sin(pi t / 2)``, ``sigma(t) = cos(pi t / 2)``, so ``alpha^2 + sigma^2 = 1``.

    The path is curved (a quarter circle), so Euler integration has an ``O(1/N)`` error.
    """

    short_name = 'vp'

    def coefficients(self, t: Tensor) -> ScheduleOutput:
        angle = 0.5 * math.pi * t
        sin, cos = torch.sin(angle), torch.cos(angle)
        return ScheduleOutput(alpha=sin, sigma=cos, d_alpha=0.5 * math.pi * cos,
                              d_sigma=-0.5 * math.pi * sin)
