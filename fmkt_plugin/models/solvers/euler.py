"""Serial Euler unroll of the flow from the student (t=1) to the teacher (t=0)."""
from typing import Callable, NamedTuple, Optional

import torch
from torch import Tensor

from ...registry import register_model
from ..schedules import InterpolantSchedule

__all__ = ['EulerSolver', 'SolverOutput']

VelocityModel = Callable[[Tensor, Tensor], Tensor]


class SolverOutput(NamedTuple):
    """Result of a solve.

    Attributes:
        transported: the state after the last step (the representation at t=0), shape of z_s.
        estimates: teacher estimates of every step, ``(N, B, ...)``, first entry at t=1.
    """

    transported: Tensor
    estimates: Tensor


@register_model()
class EulerSolver:
    """Explicit Euler from t=1 to t=0 in ``N`` equal steps.

    Step ``k`` (``i = N .. 1``, ``t = i / N``) evaluates ``v = model(x, t)``, records
    ``schedule.teacher_estimate(x, v, t)`` and moves ``x <- x - v / N``. Nothing is detached:
    the loss of every estimate back-propagates through all earlier steps, into the model and
    the student representation (the serial training of FM-KT).
    """

    def __call__(self,
                 model: VelocityModel,
                 z_s: Tensor,
                 schedule: InterpolantSchedule,
                 num_steps: int,
                 x_init: Optional[Tensor] = None) -> SolverOutput:
        """Integrate the flow.

        Args:
            model: velocity model called as ``model(x, t)`` with ``t`` of shape ``(B,)``.
            z_s: student representation ``(B, ...)``.
            schedule: the interpolant.
            num_steps: number of Euler steps ``N >= 1``.
            x_init: start state; defaults to ``schedule.init(z_s)``.

        Returns:
            :class:`SolverOutput` with the final state and the ``(N, B, ...)`` estimates.
        """
        if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
            raise ValueError(f'EulerSolver: num_steps must be an int >= 1, got {num_steps!r}')
        x = schedule.init(z_s) if x_init is None else x_init
        dt = 1.0 / num_steps
        estimates = []
        for i in range(num_steps, 0, -1):
            t = torch.full((z_s.shape[0], ), i / num_steps, dtype=z_s.dtype, device=z_s.device)
            v = model(x, t)
            estimates.append(schedule.teacher_estimate(x, v, t))
            x = x - dt * v
        return SolverOutput(x, torch.stack(estimates))

    def __repr__(self) -> str:
        return 'EulerSolver()'
