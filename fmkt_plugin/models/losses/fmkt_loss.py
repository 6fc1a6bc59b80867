"""Per-step distillation loss of FM-KT."""
import inspect
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_loss_settings, check_number
from ..builder import build_component
from ..short_names import add_short_name

__all__ = ['FMKTLoss', 'MSEMetric']


@register_model()
class MSEMetric(nn.Module):
    """Mean squared error ``mean((preds_S - preds_T)^2)``; the teacher side is detached.

    Args:
        loss_weight: multiplier.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = check_number(loss_weight, 'loss_weight', nonnegative=True,
                                        owner='MSEMetric')

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        return self.loss_weight * F.mse_loss(preds_S, preds_T.detach())


add_short_name('metric', 'mse', MSEMetric)



def _check_is_metric(metric: nn.Module) -> None:
    """A metric is a loss called as ``metric(pred, target)``. A connector, neck or model given
    here built fine and failed only at the first forward, with a shape or argument error."""
    from mmrazor.models.architectures.connectors.base_connector import BaseConnector
    params = inspect.signature(metric.forward).parameters.values()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_two = len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
    if isinstance(metric, BaseConnector) or not takes_two:
        raise ValueError(f'FMKTLoss: metric {type(metric).__name__} is not a loss metric (called '
                         'as metric(pred, target)); give one such as KLDivergence, DISTLoss, '
                         "DKDLoss, PKDLoss or 'mse'")

@register_model()
class FMKTLoss(nn.Module):
    """Score every step's teacher estimate with a metric loss and average over the steps.

    ``loss = loss_weight * mean_i metric(preds[i], target)``: the implicit-ensemble objective of
    FM-KT, where ``preds`` are the stacked per-step predictions of a flow (the output of a
    ``FlowMatchingConnector`` or of ``FlowMatchingClsHead.step_head``).

    Args:
        metric: the metric loss, ``'mse'`` or a config dict of any loss registered in MMRazor's
            ``MODELS`` called as ``metric(pred, target)``, e.g. ``dict(type='KLDivergence',
            tau=1)``, ``DISTLoss``, ``PKDLoss`` (feature maps), or ``DKDLoss`` (also gets
            ``gt_labels``).
        loss_weight: multiplier of the step average.
        dirac_ratio: fraction of the batch, in [0, 1], whose targets stay paired with their own
            sample. In training the other samples get targets permuted among themselves
            (1.0, the default, keeps all pairs; eval mode always keeps them).
        dirac_count: which samples are permuted. ``'random'`` (default): a random
            ``B - round(ratio * B)`` of them; ``'first'``: the first ``int((1 - ratio) * B)``,
            the FM-KT authors' count and assignment (at ratio 0.9 and B = 16 that is 1 sample,
            so none moves, where ``'random'`` permutes 2). The caller's target is never changed
            in place (the authors' code permutes the caller's teacher logits in place).

    Raises:
        ValueError: at build time, for an unknown metric or out-of-range values.
    """

    def __init__(self,
                 metric: Union[str, dict] = 'mse',
                 loss_weight: float = 1.0,
                 dirac_ratio: float = 1.0,
                 dirac_count: str = 'random') -> None:
        super().__init__()
        self.loss_weight = check_number(loss_weight, 'loss_weight', nonnegative=True,
                                        owner='FMKTLoss')
        self.dirac_ratio = check_number(dirac_ratio, 'dirac_ratio', min_value=0, max_value=1,
                                        owner='FMKTLoss')
        if dirac_count not in ('random', 'first'):
            raise ValueError(f"FMKTLoss: dirac_count must be 'random' or 'first', got "
                             f'{dirac_count!r}')
        self.dirac_count = dirac_count
        self.metric = build_component(metric, 'metric', kind='metric', base=nn.Module)
        _check_is_metric(self.metric)
        # the metric's own weights and temperature (KL tau, DIST loss_weight, ...)
        check_loss_settings(self.metric, 'metric', owner='FMKTLoss')
        params = inspect.signature(self.metric.forward).parameters
        self.metric_needs_labels = 'gt_labels' in params

    def _pairing(self, batch_size: int, device: torch.device) -> Optional[Tensor]:
        """Target index per sample, or None when all pairs are kept."""
        if not self.training or self.dirac_ratio >= 1.0 or batch_size < 2:
            return None
        if self.dirac_count == 'first':  # the authors': the first int((1 - r) B), permuted
            count = int((1 - self.dirac_ratio) * batch_size)
            index = torch.arange(batch_size, device=device)
            if count >= 2:
                # as the authors write it, target[:count][perm] = target[:count]: target j
                # moves to perm[j], so sample perm[j] reads target j (same draw, same pairs)
                perm = torch.randperm(count, device=device)
                index[perm] = torch.arange(count, device=device)
                return index
            return None
        num_shuffled = batch_size - int(round(self.dirac_ratio * batch_size))
        if num_shuffled < 2:
            return None
        index = torch.arange(batch_size, device=device)
        chosen = torch.randperm(batch_size, device=device)[:num_shuffled]
        index[chosen] = chosen[torch.randperm(num_shuffled, device=device)]
        return index

    def forward(self,
                preds: Tensor,
                target: Tensor,
                gt_labels: Optional[Tensor] = None) -> Tensor:
        """Compute the loss.

        Args:
            preds: per-step predictions ``(N, B, ...)``; a tensor with the shape of ``target``
                counts as a single step.
            target: teacher representation ``(B, ...)``.
            gt_labels: class indices ``(B,)`` (or ``(B, K)`` scores, reduced by argmax), for
                metrics that take them.

        Returns:
            Scalar loss.

        Raises:
            TypeError: ``preds`` is not a tensor, e.g. a flow's whole ``FlowResult`` recorded
                without ``data_idx=0``.
        """
        if not isinstance(preds, Tensor):
            hint = (' (a FlowResult: pick its estimates with data_idx=0 in the '
                    'loss_forward_mappings entry, or pass .estimates)'
                    if isinstance(preds, tuple) else '')
            raise TypeError(f'FMKTLoss: preds must be a tensor (N, B, ...), got '
                            f'{type(preds).__name__}{hint}')
        if preds.shape == target.shape:
            preds = preds.unsqueeze(0)
        if preds.shape[1:] != target.shape:
            raise ValueError(f'FMKTLoss: preds {tuple(preds.shape)} must be (N, ) + target shape '
                             f'{tuple(target.shape)}')
        index = self._pairing(target.shape[0], target.device)
        if index is not None:
            target = target[index]
        kwargs = {}
        if self.metric_needs_labels:
            if gt_labels is None:
                raise ValueError(f'FMKTLoss: metric {type(self.metric).__name__} needs gt_labels')
            if gt_labels.dim() > 1:
                gt_labels = gt_labels.argmax(dim=-1)
            kwargs['gt_labels'] = gt_labels.long()
        losses = [self.metric(pred, target, **kwargs) for pred in preds]
        return self.loss_weight * torch.stack(losses).mean()
