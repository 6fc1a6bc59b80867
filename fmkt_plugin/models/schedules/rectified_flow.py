"""Rectified flow: the straight line between student and teacher."""
import torch
from torch import Tensor

from ...registry import register_model
from .base import InterpolantSchedule, ScheduleOutput

__all__ = ['RectifiedFlowSchedule']


@register_model()
class RectifiedFlowSchedule(InterpolantSchedule):
    """``alpha(t) = t``, ``sigma(t) = 1 - t``.

    The velocity is constant along the path, so Euler integration with the oracle velocity is
    exact for any number of steps, and the teacher estimate reduces to ``x_t - t * v``.
    """

    short_name = 'rectified'

    def coefficients(self, t: Tensor) -> ScheduleOutput:
        one = torch.ones_like(t)
        return ScheduleOutput(alpha=t, sigma=1 - t, d_alpha=one, d_sigma=-one)
