"""Interpolant schedules (alpha, sigma and their derivatives)."""
from .base import InterpolantSchedule
from .build import build_schedule
from .rectified_flow import RectifiedFlowSchedule
from .ve import VESchedule
from .vp import VPSchedule

__all__ = [
    'InterpolantSchedule', 'RectifiedFlowSchedule', 'VPSchedule', 'VESchedule',
    'build_schedule'
]
