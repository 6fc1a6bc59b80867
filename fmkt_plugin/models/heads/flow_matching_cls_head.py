"""Classification head that reaches the teacher's logits through a flow (logit-level FM-KT)."""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.evaluation.metrics import Accuracy
from mmpretrain.models.heads import ClsHead
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_int, check_loss_settings, check_number
from ..builder import build_component
from ..connectors import build_flow
from .fold import fold_flow_head, plain_student_state
from .step_classifier import StepClassifier

__all__ = ['FlowMatchingClsHead']

_THETA_DEFAULTS = dict(tau=1.0, kd_weight=1.0, ce_weight=1.0, detach_feature=True,
                       use_for_inference=False, metric=None)


def _non_negative(value, field: str) -> float:
    return check_number(value, field, nonnegative=True, owner='FlowMatchingClsHead')


@register_model(also=('mmpretrain', ))
class FlowMatchingClsHead(ClsHead):
    """Replaces ``LinearClsHead``: flow on the pre-logit feature + per-step linear classifier.

    The flow (a :class:`FlowMatchingConnector`) transports the student's pooled feature; every
    step's teacher estimate goes through :attr:`step_head` (a shared linear layer), giving
    ``(N, B, num_classes)`` logits. ``forward`` returns their mean, the implicit ensemble, so
    validation and ``predict`` evaluate the ensemble. For distillation, record
    ``'head.step_head'`` with a ``ModuleOutputs`` recorder and score it with ``FMKTLoss``
    against the teacher's logits.

    Args:
        num_classes: number of classes.
        in_channels: channels of the pre-logit feature.
        flow: ``FlowMatchingConnector`` config (``type`` optional); ``in_channels`` is filled
            in. Defaults to ``dict(num_steps=8)``.
        ce_weight: weight of the cross-entropy, averaged over the steps.
        loss: classification loss config, as mmpretrain heads (built in the mmpretrain scope
            unless it names another).
        theta: FM-KT^Theta: ``True`` or a dict with ``tau``, ``kd_weight``, ``ce_weight``,
            ``detach_feature`` (default True: the extra head does not train the backbone),
            ``use_for_inference`` (default False: eval-mode ``forward`` returns its logits
            instead of the ensemble) and ``metric`` (default None: KD at ``tau``; else a
            metric config, e.g. the flow's ``DISTMetric``, called as ``metric(theta_logits,
            ensemble)``). Adds ``theta_fc``, a plain linear head on the student feature
            trained with that metric towards the detached ensemble plus CE. Off by default.
            The FM-KT authors' ``second_kd`` is ``theta=dict(metric=<the flow's metric>,
            kd_weight=w, ce_weight=w, detach_feature=False, use_for_inference=True)``.
        spatial_expand: run the flow on the pooled ``(B, C)`` feature expanded to an
            ``S x S`` map (each step's estimate average-pooled before the step head), as the
            FM-KT authors' DeiT head does with S = 7. It changes nothing for position-wise
            meta-encoders (MLP, linear); a 3x3 conv encoder then sees zero padding at the
            border instead of only its centre tap. Default None: the vector itself.
        topk: top-k for training accuracy.
        cal_acc: compute training accuracy of the ensemble.
        init_cfg: mmengine init config. Submodules initialise themselves (normal(0.01) linear
            layers, zero output layer of the meta-encoder); their ``init_weights`` reapply that
            after any ``init_cfg`` given here.

    Raises:
        ValueError: at build time, for invalid values, naming the field.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 flow: Optional[dict] = None,
                 ce_weight: float = 1.0,
                 loss: Union[dict, nn.Module] = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 theta: Union[bool, dict, None] = None,
                 topk: Union[int, Tuple[int]] = (1, ),
                 cal_acc: bool = False,
                 spatial_expand: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        num_classes = check_int(num_classes, 'num_classes', owner='FlowMatchingClsHead')
        if spatial_expand is not None:
            spatial_expand = check_int(spatial_expand, 'spatial_expand',
                                       owner='FlowMatchingClsHead')
        in_channels = check_int(in_channels, 'in_channels', owner='FlowMatchingClsHead')
        if isinstance(loss, dict):
            loss = dict(loss)
            # mmrazor registers its own (distillation) CrossEntropyLoss: pin the mmpretrain one.
            if '.' not in str(loss.get('type', '')):
                loss.setdefault('_scope_', 'mmpretrain')
        super().__init__(loss=loss, topk=topk, cal_acc=cal_acc, init_cfg=init_cfg)
        # a negative loss_weight of the CE trains away from the labels: refuse it here
        check_loss_settings(self.loss_module, 'loss', owner='FlowMatchingClsHead')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.ce_weight = _non_negative(ce_weight, 'ce_weight')

        self.flow = build_flow(flow, in_channels, 'FlowMatchingClsHead', dict(num_steps=8))
        self.step_head = StepClassifier(in_channels, num_classes)

        self.spatial_expand = spatial_expand
        self.theta_cfg = self._parse_theta(theta)
        self.theta_fc = StepClassifier(in_channels, num_classes) if self.theta_cfg else None
        self.theta_metric = None
        if self.theta_cfg and self.theta_cfg['metric'] is not None:
            self.theta_metric = build_component(self.theta_cfg['metric'], 'theta.metric',
                                                kind='metric', base=nn.Module)

    @staticmethod
    def _parse_theta(theta: Union[bool, dict, None]) -> Optional[dict]:
        if theta is None or theta is False:
            return None
        cfg = dict(_THETA_DEFAULTS)
        if theta is not True:
            if not isinstance(theta, dict):
                raise ValueError(f'FlowMatchingClsHead: theta must be a bool or dict, got '
                                 f'{theta!r}')
            unknown = set(theta) - set(_THETA_DEFAULTS)
            if unknown:
                raise ValueError(f'FlowMatchingClsHead: unknown theta keys {sorted(unknown)} '
                                 f'(known: {sorted(_THETA_DEFAULTS)})')
            cfg.update(theta)
        for key in ('kd_weight', 'ce_weight'):
            cfg[key] = _non_negative(cfg[key], f'theta.{key}')
        cfg['tau'] = check_number(cfg['tau'], 'theta.tau', positive=True,
                                  owner='FlowMatchingClsHead')
        return cfg

    def pre_logits(self, feats: Tuple[Tensor]) -> Tensor:
        """The feature of the last stage (as mmpretrain's linear heads)."""
        return feats[-1]

    def flow_input(self, pre: Tensor) -> Tensor:
        """What the flow transports: the pre-logit feature, or with ``spatial_expand`` a
        pooled ``(B, C)`` feature expanded to ``(B, C, S, S)``."""
        if self.spatial_expand and pre.dim() == 2:
            size = self.spatial_expand
            return pre[:, :, None, None].expand(-1, -1, size, size)
        return pre

    def step_logits(self, feats: Tuple[Tensor], num_steps: Optional[int] = None) -> Tensor:
        """Per-step logits ``(N, B, num_classes)``.

        Args:
            feats: features from the neck/backbone; the last is used.
            num_steps: steps of this call (default: the flow's policy).
        """
        flow_in = self.flow_input(self.pre_logits(feats))
        return self.step_head(self.flow(flow_in, num_steps).estimates)

    def _theta_logits(self, pre: Tensor) -> Tensor:
        if self.theta_cfg['detach_feature']:
            pre = pre.detach()
        return self.theta_fc(pre.unsqueeze(0))[0]

    def forward(self, feats: Tuple[Tensor]) -> Tensor:
        """Ensemble logits ``(B, num_classes)``: the mean of the step logits.

        In eval mode with ``theta.use_for_inference`` the FM-KT^Theta head's logits instead.
        """
        if self.theta_cfg and self.theta_cfg['use_for_inference'] and not self.training:
            return self._theta_logits(self.pre_logits(feats))
        return self.step_logits(feats).mean(dim=0)

    def loss(self, feats: Tuple[Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        """Losses: ``loss_ce`` (step-averaged CE) and, with theta, ``loss_theta_kd/ce``.

        Args:
            feats: features from the neck/backbone; the last is used.
            data_samples: annotations (``gt_label`` or ``gt_score``).
            **kwargs: forwarded to the classification loss.
        """
        pre = self.pre_logits(feats)
        logits = self.step_head(self.flow(self.flow_input(pre)).estimates)
        if 'gt_score' in data_samples[0]:
            target = torch.stack([s.gt_score for s in data_samples])
        else:
            target = torch.cat([s.gt_label for s in data_samples])
        batch = logits.shape[1]
        # One call per step keeps (B, K) inputs for the loss module (and for recorders on it).
        ce = torch.stack([
            self.loss_module(step, target, avg_factor=batch, **kwargs) for step in logits
        ]).mean()
        losses = {'loss_ce': self.ce_weight * ce}
        ensemble = logits.mean(dim=0)
        if self.theta_cfg:
            tau = self.theta_cfg['tau']
            theta_logits = self._theta_logits(pre)
            if self.theta_metric is not None:
                kd = self.theta_metric(theta_logits, ensemble.detach())
            else:
                kd = F.kl_div(F.log_softmax(theta_logits / tau, dim=1),
                              F.softmax(ensemble.detach() / tau, dim=1),
                              reduction='batchmean') * tau**2
            losses['loss_theta_kd'] = self.theta_cfg['kd_weight'] * kd
            losses['loss_theta_ce'] = self.theta_cfg['ce_weight'] * self.loss_module(
                theta_logits, target, avg_factor=batch, **kwargs)
        if self.cal_acc:
            if target.dim() != 1:
                raise ValueError('FlowMatchingClsHead: cal_acc needs hard labels (no mixup)')
            acc = Accuracy.calculate(ensemble, target, topk=self.topk)
            losses.update({f'accuracy_top-{k}': a for k, a in zip(self.topk, acc)})
        return losses

    def theta_export(self, student: nn.Module, head_cfg: dict) -> dict:
        """The FM-KT^Theta student: ``student`` (whose head this is) with a plain linear head.

        With an affine meta-encoder the flow folds into that linear head and gives the N-step
        ensemble's logits exactly (mode ``'theta-fold'``); otherwise the head carries the
        trained ``theta_fc`` weights (mode ``'theta'``).

        Args:
            student: the student classifier holding this head.
            head_cfg: this head's config (``num_classes``, ``in_channels``, ``loss``, ``topk``).

        Returns:
            dict with ``state`` (the plain student's state dict), ``head`` (its
            ``LinearClsHead`` config), ``neck`` (the neck it needs where the student has none:
            the flow may act on the feature map and pool each step, the linear head takes pooled
            features) and ``mode``.
        """
        if getattr(self.flow.meta_encoder, 'affine', False):
            state, mode = plain_student_state(student, *fold_flow_head(self)), 'theta-fold'
        elif self.theta_fc is not None:
            fc = self.theta_fc.fc
            state = plain_student_state(student, fc.weight.detach(), fc.bias.detach())
            mode = 'theta'
        else:
            raise ValueError(
                'the flow head can neither be folded (its meta_encoder '
                f'{type(self.flow.meta_encoder).__name__} is not affine; use '
                'meta_encoder=dict(type="LinearMetaEncoder")) nor has a trained theta_fc '
                '(model.architecture.head.theta=True)')
        head = dict(type='LinearClsHead', num_classes=head_cfg['num_classes'],
                    in_channels=head_cfg['in_channels'],
                    loss=head_cfg.get('loss', dict(type='CrossEntropyLoss', loss_weight=1.0)),
                    topk=head_cfg.get('topk', (1, )))
        return dict(state=state, head=head, neck=dict(type='GlobalAveragePooling'), mode=mode)
