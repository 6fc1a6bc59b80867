"""Velocity models v(x, t) ("meta-encoders")."""
from .base import BaseMetaEncoder, LayerNorm2d
from .conv import ConvMetaEncoder
from .linear import LinearMetaEncoder
from .mlp import MLPMetaEncoder
from .time_embedding import SinusoidalTimeEmbedding
from .transformer import TransformerMetaEncoder

__all__ = [
    'BaseMetaEncoder', 'SinusoidalTimeEmbedding', 'LinearMetaEncoder', 'MLPMetaEncoder',
    'ConvMetaEncoder', 'TransformerMetaEncoder', 'LayerNorm2d'
]
