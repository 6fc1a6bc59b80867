"""FM-KT with a pretrained teacher, as an MMRazor algorithm."""
from typing import Dict, Optional, Tuple

import torch
from mmrazor.models.algorithms import SingleTeacherDistill

from ...registry import register_model
from ..connectors import find_flows
from .checks import check_finite_losses, load_teacher_checkpoint

__all__ = ['FMKTDistill']


@register_model()
class FMKTDistill(SingleTeacherDistill):
    """Single-teacher distillation whose student carries FM-KT flow modules.

    It behaves like MMRazor's ``SingleTeacherDistill`` (a ``ConfigurableDistiller`` records
    the student's per-step predictions and the teacher's targets and ``FMKTLoss`` scores them),
    and adds what FM-KT training needs to be safe:

    - the student must contain at least one FM-KT flow (a ``FlowMatchingConnector`` inside a
      flow head or neck), checked at build time;
    - the teacher checkpoint is loaded strictly: a checkpoint of another architecture is an
      error, not a warning;
    - a NaN/inf loss stops training with a message before the optimizer steps.

    Validation and test evaluate the student, i.e. the implicit ensemble of its flow head.

    Args:
        teacher_ckpt: teacher checkpoint path or URL (loaded strictly).
        require_flow: whether the student must contain a flow. Defaults to True.
        **kwargs: the arguments of ``SingleTeacherDistill``.
    """

    def __init__(self, *args, teacher_ckpt: Optional[str] = None, require_flow: bool = True,
                 **kwargs) -> None:
        super().__init__(*args, teacher_ckpt=None, **kwargs)
        if teacher_ckpt:
            load_teacher_checkpoint(self.teacher, teacher_ckpt)
            self.teacher._is_init = True  # keep init_weights() from overwriting it
        self.teacher_ckpt = teacher_ckpt
        if require_flow and not self.flow_modules():
            raise ValueError(
                'model.architecture: FMKTDistill needs a student with an FM-KT flow '
                '(e.g. head=dict(type="FlowMatchingClsHead") or a FlowMatchingNeck/FlowFPN)')

    def flow_modules(self) -> Dict[str, torch.nn.Module]:
        """The student's flow connectors, by module name."""
        return find_flows(self.student)

    def parse_losses(self, losses: Dict) -> Tuple[torch.Tensor, Dict]:
        loss, log_vars = super().parse_losses(losses)
        check_finite_losses(log_vars, loss)
        return loss, log_vars
