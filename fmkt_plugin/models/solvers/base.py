"""ODE solver interface: integrate a velocity model over a time grid."""
from abc import ABCMeta, abstractmethod
from typing import Callable, List, NamedTuple, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ['ODESolver', 'Trajectory', 'VelocityModel', 'uniform_time_grid']

#: ``model(x, t) -> v`` with ``x`` of shape ``(B, ...)`` and ``t`` of shape ``(B,)``.
VelocityModel = Callable[[Tensor, Tensor], Tensor]


def uniform_time_grid(num_steps: int) -> Tensor:
    """``num_steps + 1`` equally spaced times from 1 (student) to 0 (teacher), float64 on CPU."""
    return torch.tensor([i / num_steps for i in range(num_steps, -1, -1)], dtype=torch.float64)


class Trajectory(NamedTuple):
    """The result of a solve.

    Attributes:
        times: the time grid, ``(N + 1,)``, float64 on the CPU; ``times[0]`` is the start.
        states: ``N + 1`` states ``x_k`` at ``times[k]``; ``states[-1]`` is the end point.
        velocities: ``N`` velocities ``model(states[k], times[k])``, one per step (for
            multi-stage solvers, the first stage of step ``k``, i.e. the velocity at the state
            on the trajectory).
    """

    times: Tensor
    states: Tuple[Tensor, ...]
    velocities: Tuple[Tensor, ...]

    @property
    def num_steps(self) -> int:
        """Number of steps ``N``."""
        return len(self.velocities)


def _as_grid(time_grid: Union[Tensor, Sequence[float]], owner: str) -> List[float]:
    grid = torch.as_tensor(time_grid, dtype=torch.float64).detach().cpu()
    if grid.dim() != 1 or grid.numel() < 2:
        raise ValueError(f'{owner}: time_grid must be a 1-d sequence of at least 2 times, got '
                         f'shape {tuple(grid.shape)}')
    if not bool(torch.isfinite(grid).all()):
        raise ValueError(f'{owner}: time_grid has non-finite times: {grid.tolist()}')
    return grid.tolist()


class ODESolver(metaclass=ABCMeta):
    """Integrates ``dx/dt = model(x, t)`` over a time grid and returns the whole trajectory.

    A solver knows nothing of schedules or teachers: it gets a start state and a grid, and the
    caller (the :class:`FlowMatchingConnector`) turns the trajectory into teacher estimates.
    Nothing is detached: gradients flow through every step, into the model and the start state
    (the serial training of FM-KT). The grid is read on the host (a CPU tensor or a list of
    floats), so stepping never synchronises with an accelerator.
    """

    #: velocity-model evaluations per step (the cost of one step relative to Euler).
    evals_per_step: int = 1

    def __call__(self, model: VelocityModel, x_init: Tensor,
                 time_grid: Union[Tensor, Sequence[float]]) -> Trajectory:
        """Integrate from ``time_grid[0]`` to ``time_grid[-1]``.

        Args:
            model: velocity model, called as ``model(x, t)`` with ``t`` of shape ``(B,)``.
            x_init: the state at ``time_grid[0]``, ``(B, ...)``.
            time_grid: ``N + 1`` times (any direction; FM-KT runs from 1 down to 0).

        Returns:
            The :class:`Trajectory`.
        """
        times = _as_grid(time_grid, type(self).__name__)
        states, velocities = [x_init], []
        for k in range(len(times) - 1):
            x_next, v = self.step(model, states[-1], times[k], times[k + 1])
            velocities.append(v)
            states.append(x_next)
        return Trajectory(torch.tensor(times, dtype=torch.float64), tuple(states),
                          tuple(velocities))

    @staticmethod
    def time_batch(t: float, x: Tensor) -> Tensor:
        """The time ``t`` as a ``(B,)`` tensor on ``x``'s device and dtype."""
        return torch.full((x.shape[0], ), t, dtype=x.dtype, device=x.device)

    @abstractmethod
    def step(self, model: VelocityModel, x: Tensor, t: float,
             t_next: float) -> Tuple[Tensor, Tensor]:
        """One step from ``t`` to ``t_next``; returns ``(x_next, model(x, t))``."""

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
