"""Export entry of RDR students (our reading of RDR): the fold of a checkpoint's branches.

The fold itself is model code (``fmkt_plugin.models.reparam.rdr_fold``); the exporter
(``fmkt_plugin.apis.export``) and the tools reach it through this module.
"""
from ..models.reparam.rdr_fold import fold_rdr_state, rdr_plain_student_state

__all__ = ['fold_rdr_state', 'rdr_plain_student_state']
