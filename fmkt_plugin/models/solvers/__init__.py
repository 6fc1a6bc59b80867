"""ODE solvers for the student-to-teacher flow."""
from .euler import EulerSolver, SolverOutput

__all__ = ['EulerSolver', 'SolverOutput']
