"""OFM-KT: online FM-KT, no pretrained teacher."""
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmrazor.models.algorithms.base import BaseAlgorithm

from ...registry import MODELS, register_model
from ...utils.validation import check_number
from .checks import BatchChecker, check_finite_losses

__all__ = ['OFMKT']


@register_model()
class OFMKT(BaseAlgorithm):
    """Online FM-KT: the flow's own implicit ensemble is the teacher.

    The student carries a ``FlowMatchingClsHead``. Every step's logits get a label-smoothed
    cross-entropy, and the detached mean of the N step logits is the target every step is
    scored against with ``distill_loss`` (``FMKTLoss`` with any metric):
    ``loss = ce_weight * mean_i CE_ls(o_i, y) + FMKTLoss(o, stopgrad(mean_i o_i))``.
    Validation and test evaluate the ensemble, as for :class:`FMKTDistill`.

    Args:
        architecture: the student config (its head must be a ``FlowMatchingClsHead`` whose
            flow takes at least 2 steps in training: one step is its own ensemble).
        distill_loss: ``FMKTLoss`` config. Defaults to KL divergence (tau = 1).
        label_smoothing: label smoothing of the per-step CE. Defaults to 0.1.
        ce_weight: weight of the per-step CE. Defaults to 1.0.
        check_inputs: check every batch before the forward pass (NaN/inf values, channels,
            labels; see ``BatchChecker``). Defaults to True.
        **kwargs: the arguments of MMRazor's ``BaseAlgorithm`` (``data_preprocessor``, ...).
    """

    #: the exporter refuses a checkpoint of this algorithm that holds no flow weights (it was
    #: written by another config)
    export_needs_flow = True

    @classmethod
    def deployable_student_state(cls, model_cfg: Mapping,
                                 state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The student's weights as the deployed student holds them (asked by the exporter,
        which has the config and a checkpoint, not a built model): as trained, flow included.

        Args:
            model_cfg: the ``model`` section of the config.
            state: the student's state dict (keys without ``architecture.``).
        """
        return state


    def __init__(self,
                 architecture: Union[dict, torch.nn.Module],
                 distill_loss: Optional[dict] = None,
                 label_smoothing: float = 0.1,
                 ce_weight: float = 1.0,
                 check_inputs: bool = True,
                 **kwargs) -> None:
        super().__init__(architecture, **kwargs)
        from ..heads import FlowMatchingClsHead
        head = getattr(self.architecture, 'head', None)
        if not isinstance(head, FlowMatchingClsHead):
            raise ValueError('model.architecture.head: OFMKT needs a FlowMatchingClsHead, got '
                             f'{type(head).__name__}')
        if max(head.flow.num_steps_choices) < 2:
            # the target is the mean of the N step logits: with N=1 it is the one step itself,
            # so loss_fmkt is ~0 at every iteration and only the CE trains
            raise ValueError(
                'model.architecture.head.flow.num_steps: OFMKT needs at least 2 steps, got '
                f'{head.flow.num_steps_choices[0]}. Its teacher is the ensemble of the N step '
                'logits; a one-step ensemble is the step itself, so there would be nothing to '
                'distil (loss_fmkt would be 0 at every iteration)')
        self.label_smoothing = check_number(label_smoothing, 'label_smoothing', min_value=0,
                                            max_value=1, owner='OFMKT')
        if self.label_smoothing == 1:  # every target uniform: nothing left to learn
            raise ValueError('OFMKT: label_smoothing must be in [0, 1), got 1')
        self.ce_weight = check_number(ce_weight, 'ce_weight', nonnegative=True, owner='OFMKT')
        self.distill_loss = MODELS.build(distill_loss or dict(
            type='FMKTLoss', metric=dict(type='KLDivergence', tau=1, loss_weight=1.0)))
        self.check_inputs = check_inputs
        if check_inputs:  # NaN/inf pixels, channels, labels: before BatchNorm sees the batch
            self.data_preprocessor.register_forward_pre_hook(
                BatchChecker(self.architecture), with_kwargs=True)

    @property
    def student(self) -> torch.nn.Module:
        return self.architecture

    def loss(self, batch_inputs: torch.Tensor,
             data_samples: Optional[List] = None) -> Dict[str, torch.Tensor]:
        """Per-step label-smoothed CE plus every step against the detached ensemble."""
        feats = self.architecture.extract_feat(batch_inputs)
        steps = self.architecture.head.step_logits(feats)  # (N, B, K)
        labels = torch.cat([s.gt_label for s in data_samples]).to(steps.device)
        ce = torch.stack([
            F.cross_entropy(step, labels, label_smoothing=self.label_smoothing)
            for step in steps
        ]).mean()
        target = steps.mean(dim=0).detach()
        return {'loss_ce': self.ce_weight * ce, 'loss_fmkt': self.distill_loss(steps, target)}

    def parse_losses(self, losses: Dict) -> Tuple[torch.Tensor, Dict]:
        loss, log_vars = super().parse_losses(losses)
        check_finite_losses(log_vars, loss)
        return loss, log_vars
