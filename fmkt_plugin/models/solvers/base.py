"""ODE solver interface: integrate a velocity model over a time grid."""
import math
from abc import ABCMeta, abstractmethod
from typing import Callable, List, NamedTuple, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ['ODESolver', 'Trajectory', 'VelocityModel', 'GridVelocity', 'uniform_time_grid',
           'uniform_times']

#: ``model(x, t) -> v`` with ``x`` of shape ``(B, ...)`` and ``t`` of shape ``(B,)``.
VelocityModel = Callable[[Tensor, Tensor], Tensor]
#: ``velocity(x, t) -> v`` with ``t`` a time of the grid as a Python float: what a step calls.
GridVelocity = Callable[[Tensor, float], Tensor]


def uniform_times(num_steps: int) -> List[float]:
    """``num_steps + 1`` equally spaced times from 1 (student) to 0 (teacher), as floats."""
    return [i / num_steps for i in range(num_steps, -1, -1)]


def uniform_time_grid(num_steps: int) -> Tensor:
    """:func:`uniform_times` as a float64 tensor on the CPU."""
    return torch.tensor(uniform_times(num_steps), dtype=torch.float64)


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
    if isinstance(time_grid, (list, tuple)) and all(
            isinstance(t, (int, float)) for t in time_grid):
        # checked in Python: no tensor, so torch.compile can trace a whole solve
        values = [float(t) for t in time_grid]
        shape = (len(values), )
    else:
        grid = torch.as_tensor(time_grid, dtype=torch.float64).detach().cpu()
        values, shape = (grid.tolist() if grid.dim() == 1 else []), tuple(grid.shape)
    if len(shape) != 1 or len(values) < 2:
        raise ValueError(f'{owner}: time_grid must be a 1-d sequence of at least 2 times, got '
                         f'shape {shape}')
    if not all(math.isfinite(t) for t in values):
        raise ValueError(f'{owner}: time_grid has non-finite times: {values}')
    return values


class ODESolver(metaclass=ABCMeta):
    """Integrates ``dx/dt = model(x, t)`` over a time grid and returns the whole trajectory.

    A solver knows nothing of schedules or teachers: it gets a start state and a grid, and the
    caller (the :class:`FlowMatchingConnector`) turns the trajectory into teacher estimates.
    Nothing is detached: gradients flow through every step, into the model and the start state
    (the serial training of FM-KT). The grid is read on the host (a CPU tensor or a list of
    floats), so stepping never synchronises with an accelerator.

    A model with an ``on_time_grid(times, like)`` method (every :class:`BaseMetaEncoder`) is
    bound to the grid once per solve: it prepares its time conditioning for every time the
    solver evaluates in one batched call instead of once per step (the steps are serial, so on
    an accelerator each step's small kernels add up). Any other callable is called as
    ``model(x, t)`` with ``t`` a ``(B,)`` tensor at every evaluation.
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
        velocity = self.bind(model, times, x_init)
        states, velocities = [x_init], []
        for k in range(len(times) - 1):
            x_next, v = self.step(velocity, states[-1], times[k], times[k + 1])
            velocities.append(v)
            states.append(x_next)
        return Trajectory(torch.tensor(times, dtype=torch.float64), tuple(states),
                          tuple(velocities))

    def evaluation_times(self, times: List[float]) -> List[float]:
        """The grid times at which :meth:`step` evaluates the model: the step starts (all but
        the last); a multi-stage solver that also evaluates elsewhere on the grid extends it."""
        return times[:-1]

    def bind(self, model: VelocityModel, times: List[float], like: Tensor) -> GridVelocity:
        """The model as a function of a state and a grid time (see the class docstring).

        Args:
            model: the velocity model.
            times: the grid, as floats.
            like: a tensor with the device and dtype of the states.
        """
        prepare = getattr(model, 'on_time_grid', None)
        if callable(prepare):
            return prepare(self.evaluation_times(times), like)
        return lambda x, t: model(x, self.time_batch(t, x))

    @staticmethod
    def time_batch(t: float, x: Tensor) -> Tensor:
        """The time ``t`` as a ``(B,)`` tensor on ``x``'s device and dtype."""
        return torch.full((x.shape[0], ), t, dtype=x.dtype, device=x.device)

    @abstractmethod
    def step(self, velocity: GridVelocity, x: Tensor, t: float,
             t_next: float) -> Tuple[Tensor, Tensor]:
        """One step from ``t`` to ``t_next``; returns ``(x_next, velocity(x, t))``.

        ``velocity`` is the model bound to the grid by :meth:`bind`, called with a float time
        of the grid.
        """

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
