"""Structural re-parameterisation (RDR's branches) and the fold of an RDR student."""
from .rdr_fold import fold_rdr_state, rdr_plain_student_state
from .rep_conv_branches import RepConvBranches, fold_conv_bn_branches

__all__ = [
    'RepConvBranches', 'fold_conv_bn_branches', 'rdr_plain_student_state', 'fold_rdr_state'
]
