"""ODE solvers for the student-to-teacher flow."""
from .ddim import DDIMSolver, DDIMSolverOutput
from .euler import EulerSolver, SolverOutput

__all__ = ['EulerSolver', 'SolverOutput', 'DDIMSolver', 'DDIMSolverOutput']
