"""DiffKD (Huang et al., NeurIPS 2023): the teacher's feature denoised from the student's with
a DDIM sampler, as its authors' code runs it (docs/rivals.md)."""
from .algorithm import DiffKDDistill
from .bottleneck import ResidualBottleneck
from .connector import DiffKDConnector, DiffKDOutput
from .denoiser import DiffKDDenoiser
from .linear_autoencoder import LinearAutoEncoder
from .loss import DiffKDLoss
from .noise_adapter import NoiseAdapter
from .schedule import DDIMSchedule, NoiseCoefficients
from .solver import DDIMSolver, DDIMSolverOutput

__all__ = ['DiffKDDistill', 'DiffKDConnector', 'DiffKDOutput', 'DiffKDDenoiser', 'DiffKDLoss',
           'LinearAutoEncoder', 'NoiseAdapter', 'ResidualBottleneck', 'DDIMSchedule',
           'NoiseCoefficients', 'DDIMSolver', 'DDIMSolverOutput']
