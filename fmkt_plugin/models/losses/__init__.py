"""Losses of FM-KT."""
from .dist_metric import DISTMetric
from .fmkt_loss import FMKTLoss, MSEMetric

__all__ = ['FMKTLoss', 'MSEMetric', 'DISTMetric']
