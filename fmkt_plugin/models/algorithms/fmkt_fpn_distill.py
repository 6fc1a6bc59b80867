"""FPN-level FM-KT for detection, as an MMRazor algorithm."""
from mmrazor.models.algorithms import FpnTeacherDistill

from ...registry import register_model
from .fmkt_distill import FMKTDistill

__all__ = ['FMKTFpnDistill']


@register_model()
class FMKTFpnDistill(FpnTeacherDistill, FMKTDistill):
    """Detection distillation whose student neck carries FM-KT flows (``FlowFPN``).

    The training step is MMRazor's ``FpnTeacherDistill``: the teacher detector runs only its
    backbone and neck (``extract_feat``, no head, no loss), and the ``ConfigurableDistiller``
    scores the student's recorded per-level flow estimates (``'neck.flows.<level>'``) against
    the teacher's FPN outputs with ``FMKTLoss``. Construction and loss parsing are those of
    :class:`FMKTDistill`:

    - the student must contain at least one ``FlowMatchingConnector`` (``require_flow``);
    - ``teacher_ckpt`` is loaded strictly (a checkpoint of another architecture is an error);
    - no ``teacher_ckpt`` is an error unless the teacher loads its own weights or
      ``allow_random_teacher=True``;
    - every batch is checked before the data preprocessor (NaN/inf values, channels, labels);
    - a NaN/inf loss raises before the optimizer steps.

    Validation and test evaluate the student detector with its transported FPN features.

    Args:
        teacher_ckpt: teacher checkpoint path or URL (loaded strictly).
        require_flow: whether the student must contain a flow. Defaults to True.
        allow_random_teacher: accept a teacher without trained weights. Defaults to False.
        check_inputs: check every batch before the forward pass. Defaults to True.
        **kwargs: the arguments of ``FpnTeacherDistill`` / ``SingleTeacherDistill``.
    """
