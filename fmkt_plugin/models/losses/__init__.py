"""Losses of FM-KT."""
from .diffkd_loss import DiffKDLoss
from .fmkt_loss import FMKTLoss, MSEMetric
from .rdr_loss import RDRLoss

__all__ = ['FMKTLoss', 'MSEMetric', 'DiffKDLoss', 'RDRLoss']
