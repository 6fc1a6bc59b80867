"""Explicit Euler: first order, one velocity evaluation per step."""
from typing import Tuple

from torch import Tensor

from ...registry import register_model
from .base import GridVelocity, ODESolver

__all__ = ['EulerSolver']


@register_model()
class EulerSolver(ODESolver):
    """``x_{k+1} = x_k + (t_{k+1} - t_k) model(x_k, t_k)``; global error ``O(1/N)``.

    FM-KT's default (the method as published): N serial steps, each scored.
    """

    def step(self, velocity: GridVelocity, x: Tensor, t: float,
             t_next: float) -> Tuple[Tensor, Tensor]:
        v = velocity(x, t)
        return x - (t - t_next) * v, v
