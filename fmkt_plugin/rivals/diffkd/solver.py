"""Deterministic DDIM sampler (eta = 0) over a grid of discrete timesteps."""
from typing import Callable, NamedTuple, Sequence, Union

import torch
from torch import Tensor

from ...registry import register_model
from .schedule import DDIMSchedule

__all__ = ['DDIMSolver', 'DDIMSolverOutput']

NoiseModel = Callable[[Tensor, Tensor], Tensor]


class DDIMSolverOutput(NamedTuple):
    """Result of a DDIM solve.

    Attributes:
        sample: the state after the last step.
        trajectory: every state, ``(S + 1, B, ...)``, the start first.
        x0_estimates: the clean-sample estimate of every step, ``(S, B, ...)``.
    """

    sample: Tensor
    trajectory: Tensor
    x0_estimates: Tensor


@register_model()
class DDIMSolver:
    """DDIM (Song et al., 2021) with ``eta = 0``: a pure integrator over a timestep grid.

    For the grid ``t_0 > t_1 > ... > t_{S-1}`` step ``i`` evaluates ``eps = model(x, t_i)``,
    forms ``x0 = (x - sigma_i eps) / alpha_i`` and moves to
    ``x <- alpha_{i+1} x0 + sigma_{i+1} eps`` (``t_S = -1``: the clean end). Nothing is
    detached, so a loss on the result trains the model and whatever produced the start state.
    """

    def __call__(self,
                 model: NoiseModel,
                 x: Tensor,
                 schedule: DDIMSchedule,
                 timesteps: Union[Tensor, Sequence[int]]) -> DDIMSolverOutput:
        """Integrate.

        Args:
            model: noise model called as ``model(x, t)`` with ``t`` a ``(B,)`` long tensor.
            x: start state ``(B, ...)`` (a noisy sample at ``timesteps[0]``).
            schedule: the noise schedule.
            timesteps: strictly decreasing integer timesteps in ``[0, T)``.

        Returns:
            :class:`DDIMSolverOutput`.
        """
        grid = [int(t) for t in torch.as_tensor(timesteps).reshape(-1)]
        if not grid:
            raise ValueError('DDIMSolver: timesteps is empty')
        if any(b >= a for a, b in zip(grid, grid[1:])):
            raise ValueError(f'DDIMSolver: timesteps must be strictly decreasing, got {grid}')
        if grid[-1] < 0 or grid[0] >= schedule.num_train_timesteps:
            raise ValueError(f'DDIMSolver: timesteps must lie in [0, '
                             f'{schedule.num_train_timesteps}), got {grid}')
        states, estimates = [x], []
        for i, t in enumerate(grid):
            t_prev = grid[i + 1] if i + 1 < len(grid) else -1
            t_batch = torch.full((x.shape[0], ), t, dtype=torch.long, device=x.device)
            eps = model(x, t_batch)
            x0 = schedule.predict_x0(x, eps, t)
            nxt = schedule(t_prev, like=x)
            x = nxt.alpha * x0 + nxt.sigma * eps
            states.append(x)
            estimates.append(x0)
        return DDIMSolverOutput(x, torch.stack(states), torch.stack(estimates))

    def __repr__(self) -> str:
        return 'DDIMSolver(eta=0)'
