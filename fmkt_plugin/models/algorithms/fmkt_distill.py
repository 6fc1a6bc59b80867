"""FM-KT with a pretrained teacher, as an MMRazor algorithm."""
from typing import Dict

import torch

from ...registry import register_model
from ..connectors import find_flows
from .checked_distill import CheckedTeacherDistill

__all__ = ['FMKTDistill']


@register_model()
class FMKTDistill(CheckedTeacherDistill):
    """Single-teacher distillation whose student carries FM-KT flow modules.

    It behaves like MMRazor's ``SingleTeacherDistill`` (a ``ConfigurableDistiller`` records
    the student's per-step predictions and the teacher's targets and ``FMKTLoss`` scores them)
    with the checks of :class:`CheckedTeacherDistill` (strict teacher checkpoint, no silently
    random teacher, every batch checked, a NaN/inf loss stopped before the optimizer steps),
    and adds FM-KT's own: the student must contain at least one FM-KT flow (a
    ``FlowMatchingConnector`` inside a flow head or neck), checked at build time, and the
    exporter refuses a checkpoint without flow weights.

    Validation and test evaluate the student, i.e. the implicit ensemble of its flow head.

    Args:
        require_flow: whether the student must contain a flow. Defaults to True.
        **kwargs: the arguments of :class:`CheckedTeacherDistill` (``teacher_ckpt``,
            ``allow_random_teacher``, ``check_inputs``) and of ``SingleTeacherDistill``.
    """

    export_needs_flow = True

    def __init__(self, *args, require_flow: bool = True, **kwargs) -> None:
        self.require_flow = require_flow
        super().__init__(*args, **kwargs)

    def check_student(self) -> None:
        if self.require_flow and not self.flow_modules():
            raise ValueError(
                'model.architecture: FMKTDistill needs a student with an FM-KT flow '
                '(e.g. head=dict(type="FlowMatchingClsHead") or a FlowMatchingNeck/FlowFPN)')

    def flow_modules(self) -> Dict[str, torch.nn.Module]:
        """The student's flow connectors, by module name."""
        return find_flows(self.student)
