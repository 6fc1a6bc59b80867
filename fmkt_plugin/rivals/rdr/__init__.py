"""RDR (Yao et al., AAAI 2024), our reading: re-parameterisable branches whose partial sums move
towards the teacher step by step, folded into the plain student after training (docs/rivals.md)."""
from .algorithm import RDRDistill
from .fold import fold_rdr_state, rdr_plain_student_state
from .loss import RDRLoss
from .rep_conv_branches import RepConvBranches, fold_conv_bn_branches

__all__ = ['RDRDistill', 'RDRLoss', 'RepConvBranches', 'fold_conv_bn_branches',
           'rdr_plain_student_state', 'fold_rdr_state']
