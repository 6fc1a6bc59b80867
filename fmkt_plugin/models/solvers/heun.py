"""Heun's method (explicit trapezoidal rule): second order, two evaluations per step."""
from typing import List, Tuple

from torch import Tensor

from ...registry import register_model
from .base import GridVelocity, ODESolver

__all__ = ['HeunSolver']


@register_model()
class HeunSolver(ODESolver):
    """Euler predictor, then the mean of the velocities at both ends; global error ``O(1/N^2)``.

    ``x' = x_k + h v_k``, ``x_{k+1} = x_k + h (v_k + model(x', t_{k+1})) / 2`` with
    ``h = t_{k+1} - t_k``. The trajectory reports ``v_k`` (the velocity at the state on the
    trajectory) for each step, so the teacher estimates are read as with Euler. A step costs
    two velocity evaluations: N Heun steps cost about what 2N Euler steps cost.
    """

    evals_per_step = 2

    def evaluation_times(self, times: List[float]) -> List[float]:
        return times  # the corrector evaluates at t_{k+1}: the last step at the grid's end

    def step(self, velocity: GridVelocity, x: Tensor, t: float,
             t_next: float) -> Tuple[Tensor, Tensor]:
        h = t_next - t
        v = velocity(x, t)
        v_pred = velocity(x + h * v, t_next)
        return x + (0.5 * h) * (v + v_pred), v
