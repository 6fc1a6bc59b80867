"""Progressive loss of RDR (our reading): partial student features vs moving targets."""
from numbers import Real
from typing import Tuple, Union

import torch
from torch import Tensor, nn

from ...registry import register_model
from ..builder import build_component
from ..schedules import build_schedule
from .fmkt_loss import MSEMetric

__all__ = ['RDRLoss', 'path_coefficients']


def path_coefficients(schedule, t: Tensor) -> Tuple[Tensor, Tensor]:
    """``(alpha(t), sigma(t))`` of an interpolant schedule.

    Accepts both forms of the schedule interface: calling the schedule returns a record with
    ``alpha`` and ``sigma``, or the schedule has ``alpha(t)`` / ``sigma(t)`` methods.
    """
    try:
        record = schedule(t)
    except TypeError:
        return schedule.alpha(t), schedule.sigma(t)
    return record.alpha, record.sigma


@register_model()
class RDRLoss(nn.Module):
    """Score K partial student features against targets that move to the teacher.

    RDR (Yao et al., AAAI 2024) has no public code; this is *our reading* of its abstract.
    ``preds`` are the partial features ``F_1 .. F_K`` of :class:`RepConvBranches`
    (``(K, B, ...)``) and ``target`` the (projected) teacher feature ``T``. The path starts at
    the detached base feature ``F_1`` (the student end, t=1) and ends at ``T`` (t=0), as
    an interpolant ``x_t = alpha(t) F_1 + sigma(t) T``; feature ``F_k`` is scored against the
    point ``t_k = 1 - k / K``, so each extra branch takes the student one step closer and the
    full sum ``F_K`` is matched with the teacher:
    ``loss = loss_weight * mean_k metric(F_k, x_{t_k})``.

    Args:
        schedule: interpolant of the targets (a short name such as ``'rectified'`` or ``'vp'``,
            or a config dict; see ``build_schedule``).
        metric: ``'mse'`` or any registered loss called as ``metric(pred, target)``.
        loss_weight: multiplier.
    """

    def __init__(self,
                 schedule: Union[str, dict] = 'rectified',
                 metric: Union[str, dict] = 'mse',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if not isinstance(loss_weight, Real) or isinstance(loss_weight, bool) or loss_weight < 0:
            raise ValueError(f'RDRLoss: loss_weight must be a non-negative number, got '
                             f'{loss_weight!r}')
        self.loss_weight = float(loss_weight)
        self.schedule = build_schedule(schedule, field='schedule')
        self.metric = build_component(metric, 'metric', aliases={'mse': MSEMetric},
                                      base=nn.Module)

    def targets(self, preds: Tensor, target: Tensor) -> Tensor:
        """The K targets ``(K, B, ...)`` (detached)."""
        num = preds.shape[0]
        anchor = preds[0].detach()
        t = torch.arange(num - 1, -1, -1, dtype=torch.float64) / num  # 1 - k/K, k = 1..K
        out = []
        for tk in t.tolist():
            a, s = path_coefficients(self.schedule, torch.tensor(tk, dtype=target.dtype,
                                                                 device=target.device))
            out.append(a * anchor + s * target.detach())
        return torch.stack(out)

    def forward(self, preds: Tensor, target: Tensor) -> Tensor:
        """Loss of ``(K, B, ...)`` partial features against a ``(B, ...)`` teacher feature."""
        if preds.dim() < 2 or preds.shape[1:] != target.shape:
            raise ValueError(f'RDRLoss: preds {tuple(preds.shape)} must be (K, ) + target shape '
                             f'{tuple(target.shape)}')
        goals = self.targets(preds, target)
        losses = [self.metric(p, g) for p, g in zip(preds, goals)]
        return self.loss_weight * torch.stack(losses).mean()
