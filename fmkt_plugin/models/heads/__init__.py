"""Classification heads of FM-KT."""
from .flow_matching_cls_head import FlowMatchingClsHead
from .fold import fold_flow_head, plain_student_state
from .step_classifier import StepClassifier

__all__ = ['FlowMatchingClsHead', 'StepClassifier', 'fold_flow_head', 'plain_student_state']
