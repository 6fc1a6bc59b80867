"""Noise-prediction models and helpers of diffusion-based distillation (DiffKD)."""
from .bottleneck import ResidualBottleneck
from .diffkd_denoiser import DiffKDDenoiser
from .linear_autoencoder import LinearAutoEncoder
from .noise_adapter import NoiseAdapter

__all__ = ['ResidualBottleneck', 'DiffKDDenoiser', 'NoiseAdapter', 'LinearAutoEncoder']
