"""Normalized KD (Yang et al., ICCV 2023, "From Knowledge Distillation to Self-Knowledge
Distillation: A Unified Approach with Normalized Loss and Customized Soft Labels"): the logit
term ViTKD's authors run next to ViTKD."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_number

__all__ = ['NKDLoss']
_OWNER = 'NKDLoss'


@register_model()
class NKDLoss(nn.Module):
    """NKD on the logits of a student and a teacher.

    With ``p`` the softmax of the student's logits and ``q`` the teacher's, ``y`` the label:

    - target term: ``-q_y * log p_y`` (the teacher's probability of the label, detached,
      weighting the student's log-likelihood of it);
    - non-target term: ``-gamma * T^2 * sum_k q'_k log p'_k`` over the other classes, ``p'``
      and ``q'`` the softmax at temperature ``T`` of the logits with the label's removed (the
      non-target distributions renormalised);

    each averaged over the batch, the sum weighted ``loss_weight``.

    Args:
        tau: temperature ``T`` of the non-target term (the authors' DeiT setting: 1).
        gamma: weight of the non-target term (the authors' DeiT setting: 1).
        loss_weight: weight of the loss.
    """

    def __init__(self, tau: float = 1.0, gamma: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.tau = check_number(tau, 'tau', positive=True, owner=_OWNER)
        self.gamma = check_number(gamma, 'gamma', nonnegative=True, owner=_OWNER)
        self.loss_weight = check_number(loss_weight, 'loss_weight', nonnegative=True,
                                        owner=_OWNER)

    @staticmethod
    def _labels(gt_labels: Tensor, batch: int) -> Tensor:
        """Class indices ``(B,)`` of the labels: indices, or (mixed) scores ``(B, K)`` whose
        largest entry is taken, as the authors do."""
        labels = gt_labels.argmax(dim=1) if gt_labels.dim() > 1 else gt_labels.reshape(-1)
        if labels.numel() != batch:
            raise ValueError(f'{_OWNER}: gt_labels holds {labels.numel()} labels for a batch of '
                             f'{batch} logits')
        return labels.long()

    def forward(self, preds_S: Tensor, preds_T: Tensor, gt_labels: Tensor) -> Tensor:
        """The loss of student logits ``preds_S`` ``(B, K)`` against the teacher's
        ``preds_T`` with labels ``gt_labels`` (``(B,)`` indices or ``(B, K)`` scores)."""
        if preds_S.dim() != 2 or preds_S.shape != preds_T.shape or preds_S.shape[1] < 2:
            raise ValueError(f'{_OWNER}: preds_S and preds_T must be (B, K >= 2) logits of one '
                             f'shape, got {tuple(preds_S.shape)} and {tuple(preds_T.shape)}')
        batch, classes = preds_S.shape
        labels = self._labels(gt_labels, batch).to(preds_S.device)
        preds_T = preds_T.detach()
        index = labels[:, None]
        log_p_y = F.log_softmax(preds_S, dim=1).gather(1, index)
        q_y = F.softmax(preds_T, dim=1).gather(1, index)
        target = -(q_y * log_p_y).mean()
        others = torch.ones_like(preds_S, dtype=torch.bool).scatter_(1, index, False)
        s_non = preds_S[others].reshape(batch, classes - 1) / self.tau
        t_non = preds_T[others].reshape(batch, classes - 1) / self.tau
        cross = (F.softmax(t_non, dim=1) * F.log_softmax(s_non, dim=1)).sum(dim=1).mean()
        return self.loss_weight * (target - self.gamma * self.tau**2 * cross)
