"""Progressive loss of RDR (our reading): partial student features vs moving targets."""
from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...models.builder import build_component
from ...models.schedules import build_schedule
from ...registry import register_model
from ...utils.validation import check_loss_settings, check_number

__all__ = ['RDRLoss', 'SAMPLINGS', 'GUIDE_ACTIVATIONS']

_OWNER = 'RDRLoss'
#: How the partial features get their path times: ``'shuffle'`` (a random permutation of the
#: grid per sample and call) or ``'fixed'`` (``F_k`` always at ``t_k = 1 - k / K``).
SAMPLINGS = ('shuffle', 'fixed')
#: The activation between a partial feature and the student's pooling + classifier.
GUIDE_ACTIVATIONS = ('relu', None)


@register_model()
class RDRLoss(nn.Module):
    """Score K partial student features against targets that move to the teacher.

    RDR (Yao et al., AAAI 2024) has no public code; everything here is *our reading* of its
    abstract and of a public summary that names two ingredients, a shuffle sampling strategy
    and a target-guided diffusion training that uses task information. ``preds`` are the
    partial features ``F_1 .. F_K`` of :class:`RepConvBranches` (``(K, B, ...)``) and
    ``target`` the (projected) teacher feature ``T``.

    Path term. The path starts at the detached base feature ``F_1`` (the student end, t=1)
    and ends at ``T`` (t=0): ``x_t = alpha(t) F_1 + sigma(t) T`` (any interpolant schedule of
    the project). The grid has the K times ``1 - j / K``, j = 1..K.

    - ``sampling='shuffle'`` (default; our form of the shuffle sampling): for every sample
      and every call, a random permutation ``pi`` of 1..K gives feature ``F_k`` the time
      ``1 - pi(k) / K``. Each feature sees every point of the path, the teacher included,
      equally often, so neither the last feature (always the teacher under ``'fixed'``) nor
      the first dominates the transfer; each sample still uses every grid point once.
    - ``sampling='fixed'``: ``F_k`` at ``1 - k / K`` (each branch one step closer, the full
      sum matched with the teacher), our first reading.

    Guide term (our guess at the target-guided training): every partial feature, read by the
    student's own classifier (``guide_act``, global average pooling, then the linear layer
    ``fc_weight``/``fc_bias``, both detached), is scored with the cross-entropy of the
    ground-truth label. Minimising ``-log p(y | F_k)`` moves ``F_k`` along
    ``grad log p(y | F_k)``, the direction in which classifier guidance steers a diffusion
    sample towards its class; here it steers every step of the progressive chain towards the
    training target. The classifier is a fixed probe for this term (detached), so it trains
    the branches and the layers before them, not the head.

    ``loss = loss_weight * mean_k metric(F_k, x_{t_k})
    + guide_weight * mean_k CE(fc(pool(act(F_k))), y)``.

    Args:
        schedule: interpolant of the targets (a short name such as ``'rectified'`` or ``'vp'``,
            or a config dict; see ``build_schedule``).
        metric: ``'mse'`` or any registered loss called as ``metric(pred, target)``.
        loss_weight: weight of the path term.
        sampling: ``'shuffle'`` or ``'fixed'`` (see above).
        guide_weight: weight of the guide term; with a positive weight ``forward`` needs
            ``gt_labels`` and ``fc_weight`` (map them in ``loss_forward_mappings``: a
            ``ModuleInputs`` recorder of ``head.loss_module`` with ``data_idx=1`` and a
            ``Parameter`` recorder of ``head.fc.weight``, ``head.fc.bias``). 0 (the class
            default) turns it off, as a loss needing no extra inputs; the shipped configs set
            it.
        guide_act: ``'relu'`` (the activation that follows the replaced conv + BN in a ResNet
            block or a conv-BN-ReLU stage) or None.

    Raises:
        ValueError: at build time, for invalid values, naming the field.
    """

    def __init__(self,
                 schedule: Union[str, dict] = 'rectified',
                 metric: Union[str, dict] = 'mse',
                 loss_weight: float = 1.0,
                 sampling: str = 'shuffle',
                 guide_weight: float = 0.0,
                 guide_act: Optional[str] = 'relu') -> None:
        super().__init__()
        self.loss_weight = check_number(loss_weight, 'loss_weight', nonnegative=True,
                                        owner=_OWNER)
        self.guide_weight = check_number(guide_weight, 'guide_weight', nonnegative=True,
                                         owner=_OWNER)
        if sampling not in SAMPLINGS:
            raise ValueError(f'{_OWNER}: sampling must be one of {SAMPLINGS}, got {sampling!r}')
        if guide_act not in GUIDE_ACTIVATIONS:
            raise ValueError(f'{_OWNER}: guide_act must be one of {GUIDE_ACTIVATIONS}, got '
                             f'{guide_act!r}')
        self.sampling = sampling
        self.guide_act = guide_act
        self.schedule = build_schedule(schedule, field='schedule')
        self.metric = build_component(metric, 'metric', kind='metric',
                                      base=nn.Module)
        check_loss_settings(self.metric, 'metric', owner=_OWNER)
        self.last_parts: Dict[str, Tensor] = {}

    def sample_times(self, num: int, batch_size: int, device=None,
                     dtype: torch.dtype = torch.float32) -> Tensor:
        """Path time of every partial feature and sample, ``(K, B)``.

        ``'fixed'``: row k holds ``1 - (k + 1) / K``. ``'shuffle'``: column b holds the K
        grid times in a random order (one ``torch.rand`` draw of shape ``(B, K)``, argsorted).
        """
        if self.sampling == 'fixed':
            rank = torch.arange(1, num + 1, device=device).unsqueeze(1).expand(num, batch_size)
        else:
            rank = torch.rand(batch_size, num, device=device).argsort(dim=1).t() + 1
        return 1.0 - rank.to(dtype) / num

    def targets(self, preds: Tensor, target: Tensor,
                times: Optional[Tensor] = None) -> Tensor:
        """The K targets ``(K, B, ...)`` (detached) at ``times`` (default: sampled)."""
        num, batch = preds.shape[0], preds.shape[1]
        if times is None:
            times = self.sample_times(num, batch, target.device, target.dtype)
        t = times.to(target.device, target.dtype).reshape(num, batch,
                                                          *([1] * (target.dim() - 1)))
        coeff = self.schedule.coefficients(t)
        return coeff.alpha * preds[0].detach().unsqueeze(0) + \
            coeff.sigma * target.detach().unsqueeze(0)

    def guide_logits(self, preds: Tensor, fc_weight: Tensor,
                     fc_bias: Optional[Tensor] = None) -> Tensor:
        """Logits ``(K, B, num_classes)`` of the partial features under the detached head."""
        feats = F.relu(preds) if self.guide_act == 'relu' else preds
        pooled = feats.flatten(3).mean(dim=-1) if feats.dim() > 3 else feats
        if fc_weight.dim() != 2 or fc_weight.shape[1] != pooled.shape[-1]:
            raise ValueError(f'{_OWNER}: fc_weight {tuple(fc_weight.shape)} does not read '
                             f'{pooled.shape[-1]}-channel features')
        return F.linear(pooled, fc_weight.detach(),
                        None if fc_bias is None else fc_bias.detach())

    @staticmethod
    def _cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
        if labels.dim() == 2:  # soft labels (mixup, cutmix)
            return -(labels * logits.log_softmax(dim=-1)).sum(dim=-1).mean()
        return F.cross_entropy(logits, labels.long())

    def guide_loss(self, preds: Tensor, gt_labels: Tensor, fc_weight: Tensor,
                   fc_bias: Optional[Tensor] = None) -> Tensor:
        """``mean_k CE(fc(pool(act(F_k))), y)``."""
        logits = self.guide_logits(preds, fc_weight, fc_bias)
        if gt_labels.shape[0] != logits.shape[1]:
            raise ValueError(f'{_OWNER}: {gt_labels.shape[0]} labels for a batch of '
                             f'{logits.shape[1]}')
        return torch.stack([self._cross_entropy(lg, gt_labels) for lg in logits]).mean()

    def forward(self,
                preds: Tensor,
                target: Tensor,
                gt_labels: Optional[Tensor] = None,
                fc_weight: Optional[Tensor] = None,
                fc_bias: Optional[Tensor] = None) -> Tensor:
        """Loss of ``(K, B, ...)`` partial features against a ``(B, ...)`` teacher feature.

        Args:
            preds: the stacked partial features.
            target: the (projected) teacher feature.
            gt_labels: ``(B,)`` class indices or ``(B, num_classes)`` soft labels (guide term).
            fc_weight: the student classifier's weight ``(num_classes, C)`` (guide term).
            fc_bias: its bias (optional).

        Raises:
            ValueError: mismatched shapes, or a guide term without its inputs.
        """
        if preds.dim() < 2 or preds.shape[1:] != target.shape:
            raise ValueError(f'{_OWNER}: preds {tuple(preds.shape)} must be (K, ) + target '
                             f'shape {tuple(target.shape)}')
        goals = self.targets(preds, target)
        path = torch.stack([self.metric(p, g) for p, g in zip(preds, goals)]).mean()
        total = self.loss_weight * path
        parts = dict(path=path)
        if self.guide_weight > 0:
            if gt_labels is None or fc_weight is None:
                raise ValueError(
                    f'{_OWNER}: guide_weight={self.guide_weight} needs gt_labels and fc_weight '
                    '(map a ModuleInputs recorder of head.loss_module with data_idx=1 and a '
                    'Parameter recorder of head.fc.weight), or set guide_weight=0')
            guide = self.guide_loss(preds, gt_labels, fc_weight, fc_bias)
            total = total + self.guide_weight * guide
            parts['guide'] = guide
        self.last_parts = {k: v.detach() for k, v in parts.items()}
        return total

    def parts(self) -> Dict[str, Tensor]:
        """The detached parts of the last call (``path``, and ``guide`` when on)."""
        return dict(self.last_parts)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['last_parts'] = {}
        return state
