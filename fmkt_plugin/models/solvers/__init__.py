"""ODE solvers for the student-to-teacher flow (pure integrators over a time grid)."""
from .base import (
                   GridVelocity,
                   ODESolver,
                   Trajectory,
                   VelocityModel,
                   uniform_time_grid,
                   uniform_times,
)
from .euler import EulerSolver
from .heun import HeunSolver

__all__ = ['ODESolver', 'Trajectory', 'VelocityModel', 'GridVelocity', 'uniform_time_grid',
           'uniform_times', 'EulerSolver', 'HeunSolver']
