"""Neck that transports the last backbone feature map (feature-level FM-KT)."""
from typing import Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_int
from ..connectors import build_flow

__all__ = ['FlowMatchingNeck']


@register_model(also=('mmpretrain', ))
class FlowMatchingNeck(BaseModule):
    """Flow on the last feature map; the transported map replaces it downstream.

    Tuple in, tuple out (mmpretrain's neck convention). With ``with_pool`` every output is
    global-average-pooled to ``(B, C)``, so the neck can take the place of
    ``GlobalAveragePooling``. The per-step teacher estimates ``(N, B, C, H, W)`` are the first
    entry of the submodule ``flow``'s output (a :class:`FlowResult`): record ``'neck.flow'`` with
    a ``ModuleOutputs`` recorder, pick it with ``data_idx=0`` and score it with ``FMKTLoss``
    (PKD/MSE) against ``TeacherProjector(teacher feature)``.

    Args:
        in_channels: channels of the last feature map.
        flow: ``FlowMatchingConnector`` config (``type`` optional, ``in_channels`` filled in).
            Defaults to ``dict(num_steps=(1, 2, 4, 8, 16))`` (one drawn per training step).
        with_pool: global average pooling after the flow.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 in_channels: int,
                 flow: Optional[dict] = None,
                 with_pool: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = check_int(in_channels, 'in_channels', owner='FlowMatchingNeck')
        self.in_channels = in_channels
        self.flow = build_flow(flow, in_channels, 'FlowMatchingNeck',
                               dict(num_steps=(1, 2, 4, 8, 16)))
        self.with_pool = with_pool
        self.pool = nn.AdaptiveAvgPool2d(1) if with_pool else None

    def forward(self, inputs: Union[Tensor, Sequence[Tensor]]) -> Tuple[Tensor, ...]:
        """Transport the last feature.

        Args:
            inputs: a tensor or a tuple of backbone features; the last is ``(B, C, H, W)``.

        Returns:
            The tuple with the last feature replaced by the transported map (pooled to
            ``(B, C)`` with ``with_pool``, like all other entries).
        """
        feats = (inputs, ) if isinstance(inputs, Tensor) else tuple(inputs)
        outs = feats[:-1] + (self.flow(feats[-1]).transported, )
        if self.pool is not None:
            outs = tuple(self.pool(x).flatten(1) if x.dim() == 4 else x for x in outs)
        return outs
