"""FM-KT algorithms."""
from .fmkt_distill import FMKTDistill
from .ofmkt import OFMKT

__all__ = ['FMKTDistill', 'OFMKT']
