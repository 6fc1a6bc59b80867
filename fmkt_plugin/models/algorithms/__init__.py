"""FM-KT algorithms."""
from .fmkt_distill import FMKTDistill

__all__ = ['FMKTDistill']
