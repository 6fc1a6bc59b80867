"""Structural re-parameterisation (RDR's branches)."""
from .rep_conv_branches import RepConvBranches, fold_conv_bn_branches

__all__ = ['RepConvBranches', 'fold_conv_bn_branches']
