"""DiffKD as an MMRazor algorithm."""
from typing import Dict

from ...models.algorithms.checked_distill import CheckedTeacherDistill
from ...registry import register_model
from .loss import DiffKDLoss

__all__ = ['DiffKDDistill']


@register_model()
class DiffKDDistill(CheckedTeacherDistill):
    """Single-teacher distillation with DiffKD losses in the ``ConfigurableDistiller``.

    The distiller records the student and teacher features and a :class:`DiffKDLoss` (holding
    the :class:`DiffKDConnector`) denoises the student feature and scores it; other losses
    (e.g. KD on the logits) sit next to it as usual. This class adds, over MMRazor's
    ``SingleTeacherDistill``: a build-time check that the distiller has a ``DiffKDLoss``, the
    checks of ``CheckedTeacherDistill`` (strict teacher checkpoint, finite-loss guard), and log-only
    entries ``distill.<name>_{kd,diffusion,ae,gamma}`` with the parts of each DiffKD loss.

    Args:
        **kwargs: the arguments of ``CheckedTeacherDistill`` and ``SingleTeacherDistill``.
    """

    logged_parts = DiffKDLoss

    def check_student(self) -> None:
        if not self.diffkd_losses():
            raise ValueError('model.distiller.distill_losses: DiffKDDistill needs a DiffKDLoss '
                             '(e.g. loss_diffkd=dict(type="DiffKDLoss", connector=...))')

    def diffkd_losses(self) -> Dict[str, DiffKDLoss]:
        """The distiller's DiffKD losses, by name."""
        return self.distill_losses_of(DiffKDLoss)
