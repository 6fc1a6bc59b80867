"""Connector that transports a student representation towards the teacher."""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmrazor.models.architectures.connectors.base_connector import BaseConnector
from torch import Tensor

from ...registry import register_model
from ..builder import build_component
from ..meta_encoders import META_ENCODER_ALIASES, BaseMetaEncoder
from ..schedules import build_schedule
from ..solvers import EulerSolver

__all__ = ['FlowMatchingConnector']


def _check_steps(value, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f'FlowMatchingConnector: {field} must be an int >= 1, got {value!r}')
    return value


@register_model()
class FlowMatchingConnector(BaseConnector):
    """Schedule + meta-encoder + solver + the policy for the number of steps.

    ``forward(feature)`` unrolls the flow from the student representation and returns the
    stacked teacher estimates of all steps, ``(N, B, ...)``; a ``ModuleOutputs`` recorder on
    this module therefore records the per-step predictions. The transported representation
    (the state at t=0) of the last call is kept in ``last_transported`` and the number of steps
    used in ``last_num_steps``.

    Args:
        in_channels: channels of the student representation (``(B, C)`` or ``(B, C, H, W)``).
        schedule: interpolant, a short name (``'rectified'``, ``'vp'``, ``'ve'``) or a config
            dict (see :func:`build_schedule`).
        meta_encoder: config dict of the velocity model; ``type`` is a registered name or a
            short name (``'mlp'``, ``'conv'``, ``'transformer'``); ``in_channels`` is filled in.
            Defaults to ``dict(type='MLPMetaEncoder')``.
        num_steps: Euler steps in training; an int, or a list/tuple of ints from which one is
            drawn uniformly at every training forward.
        test_num_steps: Euler steps in eval mode (default: the largest of ``num_steps``).
        solver: solver config (default ``EulerSolver``).
        init_cfg: mmengine init config.

    Raises:
        ValueError: at build time, for invalid values, naming the field.
    """

    def __init__(self,
                 in_channels: int,
                 schedule: Union[str, dict, None] = 'rectified',
                 meta_encoder: Optional[dict] = None,
                 num_steps: Union[int, Sequence[int]] = 8,
                 test_num_steps: Optional[int] = None,
                 solver: Union[str, dict, None] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(in_channels, int) or isinstance(in_channels, bool) or in_channels < 1:
            raise ValueError(f'FlowMatchingConnector: in_channels must be a positive int, got '
                             f'{in_channels!r}')
        self.in_channels = in_channels

        if isinstance(num_steps, (list, tuple)):
            if len(num_steps) == 0:
                raise ValueError('FlowMatchingConnector: num_steps is an empty set; give an int '
                                 'or a non-empty list of ints')
            choices = tuple(_check_steps(n, 'num_steps') for n in num_steps)
        else:
            choices = (_check_steps(num_steps, 'num_steps'), )
        self.num_steps_choices: Tuple[int, ...] = choices
        self.test_num_steps = (max(choices) if test_num_steps is None else
                               _check_steps(test_num_steps, 'test_num_steps'))

        self.schedule = build_schedule(schedule, field='schedule')

        encoder_cfg = dict(type='MLPMetaEncoder') if meta_encoder is None else meta_encoder
        if isinstance(encoder_cfg, dict) and encoder_cfg.get('in_channels',
                                                              in_channels) != in_channels:
            raise ValueError(f'FlowMatchingConnector: meta_encoder.in_channels '
                             f'({encoder_cfg["in_channels"]}) != in_channels ({in_channels})')
        self.meta_encoder = build_component(
            encoder_cfg, 'meta_encoder', aliases=META_ENCODER_ALIASES, base=BaseMetaEncoder,
            in_channels=in_channels)
        if self.meta_encoder.in_channels != in_channels:
            raise ValueError(f'FlowMatchingConnector: meta_encoder.in_channels '
                             f'({self.meta_encoder.in_channels}) != in_channels ({in_channels})')

        self.solver = build_component(solver or EulerSolver, 'solver')
        self.last_transported: Optional[Tensor] = None
        self.last_num_steps: Optional[int] = None

    def draw_num_steps(self) -> int:
        """Number of steps for the next forward: drawn in training, fixed in eval."""
        if not self.training:
            return self.test_num_steps
        if len(self.num_steps_choices) == 1:
            return self.num_steps_choices[0]
        # torch's generator so that mmengine's seeding makes the draw reproducible.
        idx = int(torch.randint(len(self.num_steps_choices), ()).item())
        return self.num_steps_choices[idx]

    def forward(self, feature: Tensor, num_steps: Optional[int] = None) -> Tensor:
        """Same as :meth:`forward_train` (train/eval differ only in the number of steps)."""
        return self.forward_train(feature, num_steps)

    def forward_train(self, feature: Tensor, num_steps: Optional[int] = None) -> Tensor:
        """Run the flow.

        Args:
            feature: student representation ``(B, C)`` or ``(B, C, H, W)``.
            num_steps: override the step policy for this call.

        Returns:
            Teacher estimates of every step, ``(N, B, ...)``.
        """
        if not isinstance(feature, Tensor):
            raise TypeError(f'FlowMatchingConnector expects a tensor, got {type(feature)}')
        n = self.draw_num_steps() if num_steps is None else _check_steps(num_steps, 'num_steps')
        out = self.solver(self.meta_encoder, feature, self.schedule, n)
        self.last_transported = out.transported
        self.last_num_steps = n
        return out.estimates
