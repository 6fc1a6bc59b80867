"""Losses of FM-KT."""
from .fmkt_loss import FMKTLoss, MSEMetric

__all__ = ['FMKTLoss', 'MSEMetric']
