"""FM-KT algorithms."""
from .fmkt_distill import FMKTDistill
from .fmkt_fpn_distill import FMKTFpnDistill
from .ofmkt import OFMKT

__all__ = ['FMKTDistill', 'FMKTFpnDistill', 'OFMKT']
