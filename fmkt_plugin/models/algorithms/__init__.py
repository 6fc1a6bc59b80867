"""FM-KT algorithms."""
from .checked_distill import CheckedTeacherDistill
from .fmkt_distill import FMKTDistill
from .fmkt_fpn_distill import FMKTFpnDistill
from .ofmkt import OFMKT

__all__ = ['CheckedTeacherDistill', 'FMKTDistill', 'FMKTFpnDistill', 'OFMKT']
