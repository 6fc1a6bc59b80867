"""Velocity models v(x, t) ("meta-encoders")."""
from .base import META_ENCODER_ALIASES, BaseMetaEncoder, LayerNorm2d
from .conv import ConvMetaEncoder
from .linear import LinearMetaEncoder
from .mlp import MLPMetaEncoder
from .time_embedding import SinusoidalTimeEmbedding
from .transformer import TransformerMetaEncoder

__all__ = [
    'BaseMetaEncoder', 'SinusoidalTimeEmbedding', 'LinearMetaEncoder', 'MLPMetaEncoder',
    'ConvMetaEncoder', 'TransformerMetaEncoder', 'META_ENCODER_ALIASES', 'LayerNorm2d'
]
