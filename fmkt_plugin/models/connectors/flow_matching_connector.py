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


_MASK64 = (1 << 64) - 1


def _mix64(value: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread hash of a 64-bit integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


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

    With several ``num_steps`` choices, the draw of a training forward is a hash of two
    buffers, ``draw_seed`` (drawn from torch's generator when the connector is built, so it
    follows mmengine's seeding) and ``draw_count`` (the number of draws so far). Both are in
    the ``state_dict``: a run resumed from a checkpoint continues the same sequence of N, and
    the draws neither consume nor depend on the global RNG (validation, data loading...).
    DDP copies rank 0's buffers to every rank when it wraps the model, and the counters then
    advance together, so every rank unrolls the same N.

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
        if len(choices) > 1:
            seed = int(torch.randint(2**62, (), dtype=torch.int64).item())
            self.register_buffer('draw_seed', torch.tensor(seed, dtype=torch.int64))
            self.register_buffer('draw_count', torch.zeros((), dtype=torch.int64))
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
        count = int(self.draw_count.item())
        self.draw_count.fill_(count + 1)
        mixed = _mix64(_mix64(int(self.draw_seed.item()) & _MASK64) ^ count)
        return self.num_steps_choices[mixed % len(self.num_steps_choices)]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        # Checkpoints written before the draw buffers existed, or with a fixed N, still load:
        # the sequence of N then starts from this connector's own seed.
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        draw_keys = {prefix + 'draw_seed', prefix + 'draw_count'}
        missing_keys[:] = [k for k in missing_keys if k not in draw_keys]
        unexpected_keys[:] = [k for k in unexpected_keys if k not in draw_keys]

    def __getstate__(self) -> dict:
        # The last call's transported map is an activation (in training, attached to the
        # autograd graph, which cannot be deep-copied): copies and pickles leave it behind.
        state = self.__dict__.copy()
        state['last_transported'] = None
        return state

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
