"""FM-KT algorithms."""
from .diffkd_distill import DiffKDDistill
from .fmkt_distill import FMKTDistill
from .fmkt_fpn_distill import FMKTFpnDistill
from .ofmkt import OFMKT
from .rdr_distill import RDRDistill

__all__ = ['FMKTDistill', 'FMKTFpnDistill', 'OFMKT', 'DiffKDDistill', 'RDRDistill']
