"""Detection neck that runs one FM-KT flow per FPN output level."""
import copy
from typing import Dict, Optional, Sequence, Tuple

from mmengine.model import BaseModule
from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_int
from ..connectors import FlowMatchingConnector, build_flow

__all__ = ['FlowFPN']


def _default_flow() -> dict:
    # FPN-level FM-KT: 4 Euler steps, rectified flow, a pointwise meta-encoder (cheap at P2).
    return dict(num_steps=4, schedule='rectified', meta_encoder=dict(type='mlp', num_blocks=1))


@register_model(also=('mmdet', ))
class FlowFPN(BaseModule):
    """An mmdet neck (FPN) whose output levels are transported by FM-KT flows.

    The wrapped neck (``fpn``) computes its multi-level outputs as usual; every level listed in
    ``flow_levels`` then goes through its own :class:`FlowMatchingConnector` and the transported
    map (the flow's state at t=0) replaces that level in the returned tuple, so the detection
    head sees the transported features, in training and at inference. Levels without a flow are
    passed through unchanged.

    Each flow's forward returns a :class:`FlowResult` whose first entry is the stacked per-step
    teacher estimates ``(N, B, C, H, W)``: record them with ``ModuleOutputs`` recorders on
    ``'neck.flows.<level>'`` (e.g. ``'neck.flows.0'`` for the first, finest level), pick them
    with ``data_idx=0`` and score them with ``FMKTLoss`` against
    the teacher's FPN output of the same level (recorder on the teacher's ``'neck'`` with
    ``data_idx=<level>``).

    With the default zero-initialised meta-encoder output layer the initial velocity is 0, so a
    freshly built ``FlowFPN`` returns exactly the outputs of the wrapped neck.

    Args:
        neck: config of the wrapped mmdet neck, e.g. ``dict(type='FPN', in_channels=[256, 512,
            1024, 2048], out_channels=256, num_outs=5)``; built in the ``mmdet`` scope unless it
            names another ``_scope_``.
        flow: ``FlowMatchingConnector`` config shared by all levels (``type`` optional,
            ``in_channels`` filled in). Defaults to 4 Euler steps of rectified flow with a
            one-block MLP meta-encoder.
        flow_levels: output levels that get a flow (indices into the neck's outputs). Defaults
            to all ``num_outs`` levels.
        in_channels: channels of the neck outputs; read from the neck's ``out_channels`` when
            not given.
        num_outs: number of neck outputs; read from the neck's ``num_outs`` when not given.
        init_cfg: mmengine init config of this module (the wrapped neck keeps its own).

    Raises:
        ValueError: at build time, for invalid levels or channel counts, naming the field.
    """

    def __init__(self,
                 neck: dict,
                 flow: Optional[dict] = None,
                 flow_levels: Optional[Sequence[int]] = None,
                 in_channels: Optional[int] = None,
                 num_outs: Optional[int] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(neck, dict) or 'type' not in neck:
            raise ValueError(f'FlowFPN: neck must be a config dict with a "type", got {neck!r}')
        self.fpn = self._build_neck(neck)

        channels = in_channels if in_channels is not None else getattr(
            self.fpn, 'out_channels', None)
        neck_name = type(self.fpn).__name__
        channels = check_int(channels, f'in_channels (or the out_channels of {neck_name})',
                             owner='FlowFPN')
        fpn_channels = getattr(self.fpn, 'out_channels', None)
        if in_channels is not None and isinstance(fpn_channels, int) and \
                channels != fpn_channels:  # it failed only at the first forward, in a conv
            raise ValueError(f'FlowFPN: in_channels={channels}, but the wrapped {neck_name} '
                             f'outputs {fpn_channels} channels (its out_channels); leave '
                             'in_channels out to take them from the neck')
        levels_total = num_outs if num_outs is not None else getattr(self.fpn, 'num_outs', None)
        levels_total = check_int(levels_total, f'num_outs (or the num_outs of {neck_name})',
                                 owner='FlowFPN')
        if flow_levels is None:
            levels = tuple(range(levels_total))
        else:
            levels = tuple(flow_levels)
            bad = [lv for lv in levels
                   if not isinstance(lv, int) or isinstance(lv, bool) or not
                   0 <= lv < levels_total]
            if not levels or bad or len(set(levels)) != len(levels):
                raise ValueError(f'FlowFPN: flow_levels must be distinct ints in '
                                 f'[0, {levels_total}), got {flow_levels!r}')
        self.in_channels = channels
        self.num_outs = levels_total
        self.flow_levels: Tuple[int, ...] = tuple(sorted(levels))

        self.flows = nn.ModuleDict({
            str(level): build_flow(flow, channels, 'FlowFPN', _default_flow())  # one config
            for level in self.flow_levels
        })

    @staticmethod
    def _build_neck(cfg: dict) -> nn.Module:
        from mmdet.registry import MODELS as DET_MODELS
        cfg = copy.deepcopy(dict(cfg))
        cfg.setdefault('_scope_', 'mmdet')
        return DET_MODELS.build(cfg)

    def flow_modules(self) -> Dict[int, FlowMatchingConnector]:
        """The flows by output level."""
        return {int(level): flow for level, flow in self.flows.items()}

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Run the neck, then transport the selected levels.

        Args:
            inputs: backbone features, as the wrapped neck expects them.

        Returns:
            The neck's outputs with every flow level replaced by its transported map.
        """
        outs = list(self.fpn(inputs))
        if len(outs) != self.num_outs:
            raise RuntimeError(f'FlowFPN: the wrapped neck returned {len(outs)} levels, '
                               f'expected num_outs={self.num_outs}')
        for level in self.flow_levels:
            outs[level] = self.flows[str(level)](outs[level]).transported
        return tuple(outs)
