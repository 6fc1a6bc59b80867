"""Interpolant schedule: the path between the student and teacher representations."""
from abc import ABCMeta, abstractmethod
from typing import NamedTuple, Union

import torch
from torch import Tensor

from ..short_names import add_short_name

__all__ = ['InterpolantSchedule', 'ScheduleOutput', 'TimeLike']

TimeLike = Union[float, Tensor]


class ScheduleOutput(NamedTuple):
    """The coefficients of the path at a time ``t`` (one record per call).

    Attributes:
        alpha: coefficient of the student representation.
        sigma: coefficient of the teacher representation.
        d_alpha: time derivative of ``alpha``.
        d_sigma: time derivative of ``sigma``.
    """

    alpha: Tensor
    sigma: Tensor
    d_alpha: Tensor
    d_sigma: Tensor


class InterpolantSchedule(metaclass=ABCMeta):
    """Path ``x_t = alpha(t) * z_s + sigma(t) * z_t`` from the student (t=1) to the teacher (t=0).

    A subclass implements :meth:`coefficients`, which returns the four coefficients at ``t`` as
    one :class:`ScheduleOutput`; everything the connector and the losses need (interpolation,
    conditional velocity, the two teacher estimates, the start point) is derived here, so a new
    schedule is one class. Set ``short_name`` on a subclass to make it available to
    :func:`build_schedule` under that name.

    Calling the schedule, ``schedule(t, like)``, broadcasts ``t`` against a representation and
    returns the record. ``t`` may be a Python float, a 0-d tensor, or a ``(B,)`` tensor; a
    ``(B,)`` time is broadcast over all trailing dimensions of the representation.

    Time runs the other way round from ``facebookresearch/flow_matching``: there the source
    (noise) sits at t=0 and ``alpha`` multiplies the target; here the source (the student) sits
    at t=1 and ``alpha`` multiplies the student (see ``docs/advanced_guides/architecture.md``).
    """

    short_name: str = ''

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.short_name:
            add_short_name('schedule', cls.short_name, cls)

    @abstractmethod
    def coefficients(self, t: Tensor) -> ScheduleOutput:
        """``alpha, sigma, d_alpha, d_sigma`` at ``t``, elementwise on a tensor."""

    def __call__(self, t: TimeLike, like: Tensor) -> ScheduleOutput:
        """The record at ``t``, broadcast against ``like`` (batch first)."""
        return self.coefficients(self.broadcast_time(t, like))

    # --- single coefficients (convenience; each computes the whole record) ----------------
    def alpha(self, t: Tensor) -> Tensor:
        """Coefficient of the student representation."""
        return self.coefficients(t).alpha

    def sigma(self, t: Tensor) -> Tensor:
        """Coefficient of the teacher representation."""
        return self.coefficients(t).sigma

    def d_alpha(self, t: Tensor) -> Tensor:
        """Time derivative of :meth:`alpha`."""
        return self.coefficients(t).d_alpha

    def d_sigma(self, t: Tensor) -> Tensor:
        """Time derivative of :meth:`sigma`."""
        return self.coefficients(t).d_sigma

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
        c = self(t, z_s)
        return c.alpha * z_s + c.sigma * z_t

    def velocity(self, z_s: Tensor, z_t: Tensor, t: TimeLike) -> Tensor:
        """Conditional velocity ``d x_t / dt = alpha'(t) z_s + sigma'(t) z_t``."""
        c = self(t, z_s)
        return c.d_alpha * z_s + c.d_sigma * z_t

    @staticmethod
    def interpolant_estimate(c: ScheduleOutput, x_t: Tensor, v: Tensor) -> Tensor:
        """Teacher estimate from the state and the velocity, given the record ``c``.

        Solves ``x_t = alpha z_s + sigma z_t`` and ``v = alpha' z_s + sigma' z_t`` for ``z_t``:
        ``(alpha' x_t - alpha v) / (alpha' sigma - alpha sigma')``. The denominator is the
        Wronskian of the path; it is non-zero for every schedule shipped here.
        """
        return (c.d_alpha * x_t - c.alpha * v) / (c.d_alpha * c.sigma - c.alpha * c.d_sigma)

    @staticmethod
    def displacement_estimate(c: ScheduleOutput, z_s: Tensor, v: Tensor) -> Tensor:
        """Teacher estimate from the velocity and the *original* student representation.

        Solves ``v = alpha' z_s + sigma' z_t`` for ``z_t``: ``(v - alpha' z_s) / sigma'``; for
        rectified flow ``z_s - v``, the velocity read as the whole student-to-teacher
        displacement (the form of the FM-KT authors' code). Undefined where ``sigma' = 0``.
        """
        return (v - c.d_alpha * z_s) / c.d_sigma

    def teacher_estimate(self, x_t: Tensor, v: Tensor, t: TimeLike) -> Tensor:
        """:meth:`interpolant_estimate` at time ``t``."""
        return self.interpolant_estimate(self(t, x_t), x_t, v)

    def supports_displacement(self, num: int = 1025) -> bool:
        """Whether ``sigma'`` is non-zero on ``(0, 1]`` (checked on a grid of ``num`` times),
        so that :meth:`displacement_estimate` is defined at every solver time."""
        t = torch.linspace(0.0, 1.0, num, dtype=torch.float64)[1:]
        return bool((self.coefficients(t).d_sigma != 0).all())

    def init(self, z_s: Tensor) -> Tensor:
        """Start of the sampler, ``x_1 = alpha(1) z_s`` (exact when ``sigma(1) = 0``)."""
        return self.alpha(torch.ones((), dtype=z_s.dtype, device=z_s.device)) * z_s

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
