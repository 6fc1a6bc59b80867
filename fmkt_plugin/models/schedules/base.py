"""Interpolant schedule: the path between the student and teacher representations."""
from abc import ABCMeta, abstractmethod
from typing import Dict, Union

import torch
from torch import Tensor

__all__ = ['InterpolantSchedule', 'SCHEDULE_ALIASES', 'TimeLike']

TimeLike = Union[float, Tensor]

#: short config names (``'rectified'``, ``'vp'``, ...) -> schedule class, filled by subclassing.
SCHEDULE_ALIASES: Dict[str, type] = {}


class InterpolantSchedule(metaclass=ABCMeta):
    """Path ``x_t = alpha(t) * z_s + sigma(t) * z_t`` from the student (t=1) to the teacher (t=0).

    Subclasses implement the four coefficient functions; everything the solver and the losses
    need (interpolation, conditional velocity, teacher estimate, start point) is derived here, so
    a new schedule is one class. Set ``short_name`` on a subclass to make it available to
    :func:`build_schedule` under that name.

    All methods accept ``t`` as a Python float, a 0-d tensor, or a ``(B,)`` tensor; a ``(B,)``
    time is broadcast over all trailing dimensions of the representation.
    """

    short_name: str = ''

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.short_name:
            SCHEDULE_ALIASES[cls.short_name] = cls

    # --- coefficients, elementwise on a tensor t -------------------------------------------
    @abstractmethod
    def alpha(self, t: Tensor) -> Tensor:
        """Coefficient of the student representation."""

    @abstractmethod
    def sigma(self, t: Tensor) -> Tensor:
        """Coefficient of the teacher representation."""

    @abstractmethod
    def d_alpha(self, t: Tensor) -> Tensor:
        """Time derivative of :meth:`alpha`."""

    @abstractmethod
    def d_sigma(self, t: Tensor) -> Tensor:
        """Time derivative of :meth:`sigma`."""

    # --- derived quantities ----------------------------------------------------------------
    @staticmethod
    def broadcast_time(t: TimeLike, like: Tensor) -> Tensor:
        """Turn ``t`` into a tensor that broadcasts against ``like`` (batch first)."""
        t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
        if t.dim() == 0:
            return t
        if t.dim() != 1 or t.shape[0] != like.shape[0]:
            raise ValueError(f'time must be a scalar or a (B,) tensor with B={like.shape[0]}, '
                             f'got shape {tuple(t.shape)}')
        return t.reshape(-1, *([1] * (like.dim() - 1)))

    def interpolate(self, z_s: Tensor, z_t: Tensor, t: TimeLike) -> Tensor:
        """Point on the path: ``alpha(t) z_s + sigma(t) z_t``."""
        t = self.broadcast_time(t, z_s)
        return self.alpha(t) * z_s + self.sigma(t) * z_t

    def velocity(self, z_s: Tensor, z_t: Tensor, t: TimeLike) -> Tensor:
        """Conditional velocity ``d x_t / dt = alpha'(t) z_s + sigma'(t) z_t``."""
        t = self.broadcast_time(t, z_s)
        return self.d_alpha(t) * z_s + self.d_sigma(t) * z_t

    def teacher_estimate(self, x_t: Tensor, v: Tensor, t: TimeLike) -> Tensor:
        """Teacher representation implied by a state ``x_t`` and a velocity ``v``.

        Solves ``x_t = alpha z_s + sigma z_t`` and ``v = alpha' z_s + sigma' z_t`` for ``z_t``:
        ``(alpha' x_t - alpha v) / (alpha' sigma - alpha sigma')``. The denominator is the
        Wronskian of the path; it is non-zero for every schedule shipped here.
        """
        t = self.broadcast_time(t, x_t)
        a, s = self.alpha(t), self.sigma(t)
        da, ds = self.d_alpha(t), self.d_sigma(t)
        return (da * x_t - a * v) / (da * s - a * ds)

    def init(self, z_s: Tensor) -> Tensor:
        """Start of the sampler, ``x_1 = alpha(1) z_s`` (exact when ``sigma(1) = 0``)."""
        return self.alpha(torch.ones((), dtype=z_s.dtype, device=z_s.device)) * z_s

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
