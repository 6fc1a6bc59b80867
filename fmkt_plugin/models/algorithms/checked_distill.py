"""The checks every single-teacher distiller of the plugin shares (FM-KT and the rivals)."""
from typing import Dict, List, Mapping, Optional, Tuple

import torch
from mmrazor.models.algorithms import SingleTeacherDistill

from .checks import BatchChecker, check_finite_losses, has_pretrained_init, load_teacher_checkpoint

__all__ = ['CheckedTeacherDistill']


class CheckedTeacherDistill(SingleTeacherDistill):
    """MMRazor's ``SingleTeacherDistill`` with the plugin's safety checks; the base of
    :class:`FMKTDistill`, ``DiffKDDistill`` and ``RDRDistill``, which add only their own.

    - the teacher checkpoint is loaded strictly: a checkpoint of another architecture is an
      error, not a warning;
    - no teacher checkpoint is an error, not a silently random teacher, unless the teacher
      loads its own weights (a ``Pretrained`` ``init_cfg``, or ``teacher=dict(...,
      pretrained=True)``), has no weights at all (e.g. cached logits), or
      ``allow_random_teacher=True`` says it is meant (tests, timing runs);
    - every batch is checked before the data preprocessor (see :class:`BatchChecker`): a
      NaN/inf input is refused before it can reach the BatchNorm statistics, in training and
      in evaluation, and a wrong channel count or a label outside the classes is named;
    - a NaN/inf loss stops training with a message before the optimizer steps;
    - the ``parts()`` of every distillation loss of class :attr:`logged_parts` are logged as
      ``distill.<name>_<part>`` (log only).

    For the exporter (which has a config and a checkpoint, not a built model) the class says
    what the deployed student holds (:meth:`deployable_student_state`) and whether a checkpoint
    of it must hold flow weights (:attr:`export_needs_flow`).

    Args:
        teacher_ckpt: teacher checkpoint path or URL (loaded strictly).
        allow_random_teacher: accept a teacher without trained weights. Defaults to False.
        check_inputs: check every batch before the forward pass. Defaults to True.
        **kwargs: the arguments of ``SingleTeacherDistill``.
    """

    #: the exporter refuses a checkpoint of this algorithm that holds no flow weights (it was
    #: written by another config)
    export_needs_flow = False
    #: the class of the distillation losses whose ``parts()`` :meth:`loss` logs (None: none)
    logged_parts: Optional[type] = None

    @classmethod
    def deployable_student_state(cls, model_cfg: Mapping,
                                 state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The student's weights as the deployed student holds them: as trained here.

        Args:
            model_cfg: the ``model`` section of the config.
            state: the student's state dict (keys without ``architecture.``).
        """
        return state

    def __init__(self, *args, teacher_ckpt: Optional[str] = None,
                 allow_random_teacher: bool = False, check_inputs: bool = True,
                 **kwargs) -> None:
        teacher_cfg = kwargs.get('teacher')
        super().__init__(*args, teacher_ckpt=None, **kwargs)
        if teacher_ckpt:
            load_teacher_checkpoint(self.teacher, teacher_ckpt)
            self.teacher._is_init = True  # keep init_weights() from overwriting it
        self.teacher_ckpt = teacher_ckpt
        self.check_student()
        if not teacher_ckpt and not allow_random_teacher and not self._teacher_has_weights(
                teacher_cfg):
            raise ValueError(
                f'model.teacher_ckpt: {teacher_ckpt!r} gives the teacher no trained weights, so '
                'the student would be distilled from a random teacher. Set teacher_ckpt to a '
                'checkpoint, give the teacher a Pretrained init_cfg, or set '
                'allow_random_teacher=True if a random teacher is meant')
        self.check_inputs = check_inputs
        if check_inputs:
            self.data_preprocessor.register_forward_pre_hook(
                BatchChecker(self.student), with_kwargs=True)

    def check_student(self) -> None:
        """What the method needs of its student and distiller, checked at build time (before
        the teacher checks); raises ``ValueError`` naming the config key. Nothing here."""

    def _teacher_has_weights(self, teacher_cfg) -> bool:
        """Whether the teacher gets trained weights without ``teacher_ckpt`` (or has none)."""
        if isinstance(teacher_cfg, dict) and teacher_cfg.get('pretrained'):
            return True  # built by mmengine's get_model(cfg_path, pretrained=True)
        if has_pretrained_init(self.teacher):
            return True
        # nothing to load (e.g. a teacher serving cached logits from a non-persistent buffer)
        return not self.teacher.state_dict()

    def distill_losses_of(self, kind: type) -> Dict[str, torch.nn.Module]:
        """The distiller's losses of class ``kind``, by name."""
        return {name: m for name, m in self.distiller.distill_losses.items()
                if isinstance(m, kind)}

    def loss(self, batch_inputs: torch.Tensor,
             data_samples: Optional[List] = None) -> Dict[str, torch.Tensor]:
        """``SingleTeacherDistill``'s losses, plus the ``parts()`` of each distillation loss of
        class :attr:`logged_parts` as log-only entries ``distill.<name without "loss_">_<part>``
        (no "loss" in the key: mmengine logs them but does not sum them into the total)."""
        losses = super().loss(batch_inputs, data_samples)
        if self.logged_parts is not None:
            for name, module in self.distill_losses_of(self.logged_parts).items():
                stem = name[len('loss_'):] if name.startswith('loss_') else name
                for part, value in module.parts().items():
                    losses[f'distill.{stem}_{part}'] = value
        return losses

    def parse_losses(self, losses: Dict) -> Tuple[torch.Tensor, Dict]:
        loss, log_vars = super().parse_losses(losses)
        check_finite_losses(log_vars, loss)
        return loss, log_vars
