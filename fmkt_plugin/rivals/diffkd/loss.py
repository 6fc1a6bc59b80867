"""Distillation loss of DiffKD: denoised student vs teacher, plus the auxiliary losses."""
from typing import Dict, Optional, Union

from torch import Tensor, nn

from ...models.builder import build_component
from ...registry import register_model
from ...utils.validation import check_loss_settings, check_number
from .connector import DiffKDConnector

__all__ = ['DiffKDLoss']


@register_model()
class DiffKDLoss(nn.Module):
    """``loss_weight * metric(denoised S, T) + diffusion_weight * L_diff + ae_weight * L_ae``.

    Holds a :class:`DiffKDConnector`, so that the MMRazor ``ConfigurableDistiller`` only has to
    pass the raw student and teacher features (``preds_S``, ``preds_T``): the connector needs
    both (the student's to denoise, the teacher's to train the denoiser and auto-encoder).
    The parts of the last call are kept, detached, in :attr:`last_parts` for logging.

    The authors run two of these: one on the last feature map (``metric='mse'``, kernel 3,
    auto-encoder) and one on the logits (``metric=dict(type='KLDivergence', tau=1)``,
    kernel 1, no auto-encoder), every weight 1.

    Args:
        connector: :class:`DiffKDConnector` config.
        metric: distance between the denoised student feature and the target: ``'mse'`` (as
            DiffKD for features) or any registered loss called as ``metric(pred, target)``,
            e.g. ``dict(type='KLDivergence', tau=1)`` for denoised logits.
        loss_weight: weight of the metric term.
        diffusion_weight: weight of the noise-prediction loss.
        ae_weight: weight of the auto-encoder's reconstruction loss.

    Raises:
        ValueError: at build time, for an unknown metric or a negative or non-finite weight
            (the metric's own weights and temperature included).
    """

    def __init__(self,
                 connector: Union[dict, DiffKDConnector],
                 metric: Union[str, dict] = 'mse',
                 loss_weight: float = 1.0,
                 diffusion_weight: float = 1.0,
                 ae_weight: float = 1.0) -> None:
        super().__init__()
        if isinstance(connector, dict):
            connector = dict(connector)
            connector.setdefault('type', DiffKDConnector)
        self.connector = build_component(connector, 'connector', base=DiffKDConnector)
        self.metric = build_component(metric, 'metric', kind='metric',
                                      base=nn.Module)
        check_loss_settings(self.metric, 'metric', owner='DiffKDLoss')
        self.loss_weight, self.diffusion_weight, self.ae_weight = (
            check_number(value, name, nonnegative=True, owner='DiffKDLoss')
            for name, value in (('loss_weight', loss_weight),
                                ('diffusion_weight', diffusion_weight), ('ae_weight', ae_weight)))
        self.last_parts: Dict[str, Tensor] = {}

    def forward(self, preds_S: Tensor, preds_T: Tensor) -> Tensor:
        """Total DiffKD loss of a student feature and a teacher feature."""
        out = self.connector.forward_pair(preds_S, preds_T)
        kd = self.metric(out.denoised, out.target)
        total = self.loss_weight * kd + self.diffusion_weight * out.diffusion_loss
        parts = dict(kd=kd, diffusion=out.diffusion_loss, gamma=out.gamma.mean())
        if out.ae_loss is not None:
            total = total + self.ae_weight * out.ae_loss
            parts['ae'] = out.ae_loss
        self.last_parts = {k: v.detach() for k, v in parts.items()}
        return total

    def parts(self) -> Dict[str, Optional[Tensor]]:
        """The detached parts of the last call (``kd``, ``diffusion``, ``gamma``, ``ae``)."""
        return dict(self.last_parts)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['last_parts'] = {}
        return state
