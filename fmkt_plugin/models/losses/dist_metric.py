"""DIST (Huang et al., NeurIPS 2022) with its epsilon as an argument."""
from mmrazor.models.losses import DISTLoss
from torch import Tensor

from ...registry import register_model
from ...utils.validation import check_number

__all__ = ['DISTMetric']


def _pearson(a: Tensor, b: Tensor, eps: float) -> Tensor:
    """Row-wise Pearson correlation, ``eps`` added to the product of the centred norms."""
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    return (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


@register_model()
class DISTMetric(DISTLoss):
    """MMRazor's ``DISTLoss`` with the epsilon of its correlations as an argument.

    ``loss = loss_weight * tau^2 * (inter * (1 - mean_i rho(p_i, q_i)) + intra * (1 - mean_k
    rho(p_:k, q_:k)))`` with ``p``, ``q`` the softmaxes at temperature ``tau`` and ``rho`` the
    Pearson correlation whose denominator is ``|a - mean a| |b - mean b| + eps``. MMRazor fixes
    ``eps`` at 1e-8 (``eps=1e-8`` here gives ``DISTLoss`` exactly); the FM-KT authors' DIST
    uses 1e-5, which moves the loss by about 2e-3 relative and gradients by up to 10% with small
    batches and many classes.

    Args:
        eps: added to the denominator of every correlation. Defaults to 1e-8 (MMRazor's).
        **kwargs: the arguments of ``DISTLoss`` (``inter_loss_weight``, ``intra_loss_weight``,
            ``tau``, ``loss_weight``, ``teacher_detach``).
    """

    def __init__(self, eps: float = 1e-8, **kwargs) -> None:
        super().__init__(**kwargs)
        self.eps = check_number(eps, 'eps', positive=True, owner='DISTMetric')

    def forward(self, logits_S: Tensor, logits_T: Tensor) -> Tensor:
        if self.teacher_detach:
            logits_T = logits_T.detach()
        y_s = (logits_S / self.tau).softmax(dim=1)
        y_t = (logits_T / self.tau).softmax(dim=1)
        inter = 1 - _pearson(y_s, y_t, self.eps).mean()
        intra = 1 - _pearson(y_s.t(), y_t.t(), self.eps).mean()
        loss = self.tau**2 * (self.inter_loss_weight * inter + self.intra_loss_weight * intra)
        return loss * self.loss_weight

    def extra_repr(self) -> str:
        return f'tau={self.tau}, eps={self.eps:g}'
