"""ViTKD (Yang et al., 2022): mimicking of the shallow tokens and generation of the deep ones
from masked student tokens, the feature loss of the FM-KT authors' DeiT recipe."""
from .loss import ViTKDLoss

__all__ = ['ViTKDLoss']
