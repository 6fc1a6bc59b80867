"""Variance-exploding path."""
import math

import torch
from torch import Tensor

from ...registry import register_model
from ...utils.validation import check_number
from .base import InterpolantSchedule, ScheduleOutput

__all__ = ['VESchedule']


#: the largest ``s_max`` accepted
S_MAX_LIMIT = 1e4


@register_model()
class VESchedule(InterpolantSchedule):
    """``alpha(t) = s_min * (s_max / s_min) ** t``, ``sigma(t) = 1``.

    As in the score-SDE VE process, the teacher ("data") term is never scaled and the student
    ("noise") term grows geometrically from ``s_min`` at t=0 to ``s_max`` at t=1. The path's own
    limits are therefore ``x_0 = s_min z_s + z_t`` and ``x_1 = s_max z_s + z_t``.

    Note:
        The sampler starts from ``x_1 = alpha(1) z_s = s_max z_s`` (see
        :meth:`InterpolantSchedule.init`): the teacher term of the true ``x_1`` is unknown at
        inference and is ignored. With the oracle velocity and the exact start the sampler lands
        on ``x_0 = s_min z_s + z_t``, i.e. on the teacher up to ``s_min z_s``. The teacher
        estimate ``x_t - v / log(s_max / s_min)`` is exact on the path for every t.

    Args:
        s_min: student coefficient at t=0 (> 0).
        s_max: student coefficient at t=1 (> s_min). The default 1 starts the sampler on the
            unscaled student representation.
    """

    short_name = 've'

    def __init__(self, s_min: float = 0.01, s_max: float = 1.0) -> None:
        s_min = check_number(s_min, 's_min', positive=True, owner='VESchedule')
        # the sampler starts from s_max * z_s: past 1e4 (times features of order 10) float16
        # overflows, and float32 soon after (s_max=1e300 gave inf on the first step)
        s_max = check_number(s_max, 's_max', positive=True, max_value=S_MAX_LIMIT,
                             owner='VESchedule')
        if not s_min < s_max:
            raise ValueError(f'VESchedule: need 0 < s_min < s_max, got s_min={s_min}, '
                             f's_max={s_max}')
        self.s_min = s_min
        self.s_max = s_max
        self._log_ratio = math.log(self.s_max / self.s_min)

    def coefficients(self, t: Tensor) -> ScheduleOutput:
        alpha = self.s_min * torch.exp(self._log_ratio * t)
        return ScheduleOutput(alpha=alpha, sigma=torch.ones_like(t),
                              d_alpha=self._log_ratio * alpha, d_sigma=torch.zeros_like(t))

    def __repr__(self) -> str:
        return f'VESchedule(s_min={self.s_min}, s_max={self.s_max})'
