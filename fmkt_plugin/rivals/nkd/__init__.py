"""Normalized KD (Yang et al., ICCV 2023): the logit term ViTKD's authors run next to ViTKD."""
from .loss import NKDLoss

__all__ = ['NKDLoss']
