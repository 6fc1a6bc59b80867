"""Connector that transports a student representation towards the teacher."""
import copy
from typing import Dict, NamedTuple, Optional, Sequence, Union

import torch
from mmrazor.models.architectures.connectors.base_connector import BaseConnector
from torch import Tensor, nn

from ...registry import register_model
from ...utils.device import host_to_device
from ...utils.validation import check_int
from ..builder import build_component
from ..meta_encoders import BaseMetaEncoder
from ..schedules import build_schedule
from ..solvers import EulerSolver, ODESolver, Trajectory, uniform_times
from .compile import COMPILE_KEYS, COMPILE_SCOPES, CompiledWrappers, EncoderThrough, compile_args
from .step_policy import MAX_STEPS, StepCountPolicy, check_steps, flow_num_steps

__all__ = [
    'FlowMatchingConnector', 'FlowResult', 'ESTIMATES', 'MAX_STEPS', 'COMPILE_KEYS',
    'COMPILE_SCOPES', 'build_flow', 'find_flows', 'flow_num_steps'
]

#: the ways a step's velocity is read as a teacher estimate (see ``FlowMatchingConnector``).
ESTIMATES = ('interpolant', 'displacement')


class FlowResult(NamedTuple):
    """What a flow returns.

    A ``ModuleOutputs`` recorder on a connector records this pair; pick the estimates for a
    loss with ``data_idx=0`` in ``loss_forward_mappings``.

    Attributes:
        estimates: teacher estimates of every step, ``(N, B, ...)``, the first at t=1.
        transported: the state at t=0 (the transported representation), shape of the input.
    """

    estimates: Tensor
    transported: Tensor


@register_model()
class FlowMatchingConnector(StepCountPolicy, CompiledWrappers, BaseConnector):
    """A flow from the student representation (t=1) to the teacher's (t=0).

    ``forward(feature)`` integrates ``dx/dt = v(x, t)`` (``v``: the meta-encoder) from
    ``x_1 = alpha(1) * feature`` over a uniform grid of N steps and returns a
    :class:`FlowResult`: the teacher estimate of every step, ``(N, B, ...)``, and the state at
    t=0. Step ``k``'s estimate comes from its state ``x_k``, velocity ``v_k`` and the schedule at
    ``t_k``; both ways are exact with the oracle velocity and differ with a learned one:

    - ``'interpolant'``: ``(alpha' x_k - alpha v_k) / (alpha' sigma - alpha sigma')``, the
      teacher point of the path through ``x_k`` with velocity ``v_k`` (``x_k - t_k v_k`` for
      rectified flow);
    - ``'displacement'``: ``(v_k - alpha' z_s) / sigma'`` from the student representation
      ``z_s`` (``z_s - v_k`` for rectified flow, as in the FM-KT authors' code); refused when
      ``sigma'`` vanishes (VE).

    Args:
        in_channels: channels of the representation, ``(B, C)`` or ``(B, C, H, W)``.
        schedule: ``'rectified'`` (default), ``'vp'``, ``'ve'``, a registered name or a config
            dict (:func:`build_schedule`).
        meta_encoder: config of the velocity model; ``type`` a registered or short name
            (``'mlp'``, ``'conv'``, ``'transformer'``, ``'linear'``), ``in_channels`` filled
            in. Default ``dict(type='MLPMetaEncoder')``.
        num_steps: training steps, an int (default 8) or a list of ints, one drawn per
            training forward (reproducibly, resumed with the checkpoint: see
            :mod:`.step_policy`). At most :data:`MAX_STEPS`.
        test_num_steps: eval steps; default the largest of ``num_steps``.
        estimate: ``'interpolant'`` (default) or ``'displacement'``.
        solver: an :class:`ODESolver` config; default ``EulerSolver`` (``HeunSolver``: second
            order, two evaluations per step).
        compile: ``torch.compile`` the flow (default ``False``). ``True`` compiles the
            meta-encoder with ``dynamic=False``; a dict sets ``scope`` (``'encoder'``, default,
            or ``'flow'``: the whole unrolled flow, one graph per N and shape) and
            ``torch.compile``'s ``backend``, ``mode``, ``fullgraph``, ``dynamic``, ``options``.
            Results agree with eager to about 1e-6, not bit for bit; ``state_dict`` keys do
            not change (:mod:`.compile`).
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
                 estimate: str = 'interpolant',
                 solver: Union[str, dict, None] = None,
                 compile: Union[bool, dict] = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.in_channels = check_int(in_channels, 'in_channels', owner='FlowMatchingConnector')
        self.compile_scope, self.compile_args = compile_args(compile)
        self.init_step_policy(num_steps, test_num_steps)

        self.schedule = build_schedule(schedule, field='schedule')
        if estimate not in ESTIMATES:
            raise ValueError(f'FlowMatchingConnector: estimate must be one of {ESTIMATES}, got '
                             f'{estimate!r}')
        if estimate == 'displacement' and not self.schedule.supports_displacement():
            raise ValueError(f'FlowMatchingConnector: estimate="displacement" divides by '
                             f"sigma'(t), which is 0 for {self.schedule!r}; use "
                             f'estimate="interpolant" with this schedule')
        self.estimate = estimate

        encoder_cfg = dict(type='MLPMetaEncoder') if meta_encoder is None else meta_encoder
        if isinstance(encoder_cfg, dict) and encoder_cfg.get('in_channels',
                                                              in_channels) != in_channels:
            raise ValueError(f'FlowMatchingConnector: meta_encoder.in_channels '
                             f'({encoder_cfg["in_channels"]}) != in_channels ({in_channels})')
        self.meta_encoder = build_component(
            encoder_cfg, 'meta_encoder', kind='meta_encoder', base=BaseMetaEncoder,
            in_channels=self.in_channels)
        if self.meta_encoder.in_channels != in_channels:
            raise ValueError(f'FlowMatchingConnector: meta_encoder.in_channels '
                             f'({self.meta_encoder.in_channels}) != in_channels ({in_channels})')
        self.solver = build_component(solver or EulerSolver, 'solver', base=ODESolver)

    # --- the flow ------------------------------------------------------------------------------
    def forward(self, feature: Tensor, num_steps: Optional[int] = None) -> FlowResult:
        """Same as :meth:`forward_train` (train/eval differ only in the number of steps)."""
        return self.forward_train(feature, num_steps)

    def forward_train(self, feature: Tensor, num_steps: Optional[int] = None) -> FlowResult:
        """Run the flow.

        Args:
            feature: student representation ``(B, C)`` or ``(B, C, H, W)``.
            num_steps: the number of steps of this call (default: :meth:`draw_num_steps`).

        Returns:
            :class:`FlowResult` with the ``(N, B, ...)`` estimates and the transported
            representation.
        """
        if not isinstance(feature, Tensor):
            raise TypeError(f'FlowMatchingConnector expects a tensor, got {type(feature)}')
        # drawn outside any compiled graph: the draw advances a buffer
        n = self.draw_num_steps() if num_steps is None else check_steps(num_steps, 'num_steps')
        if self.compile_scope == 'flow':
            return self.compiled('_compiled_flow', self._unrolled)(feature, n)
        return self._unrolled(feature, n)

    def _unrolled(self, feature: Tensor, n: int) -> FlowResult:
        """The flow of ``n`` steps from ``feature`` (what ``scope='flow'`` compiles)."""
        model = self.velocity_model()
        if model is not self.meta_encoder:  # compiled: bind the grid through the wrapper
            model = EncoderThrough(self.meta_encoder, model)
        trajectory = self.solver(model, self.schedule.init(feature), uniform_times(n))
        return FlowResult(self.estimates(feature, trajectory), trajectory.states[-1])

    def velocity_model(self) -> nn.Module:
        """What the solver calls: the meta-encoder, or its ``torch.compile`` wrapper when
        ``compile`` is set with the ``'encoder'`` scope (built once, at the first call)."""
        if self.compile_scope != 'encoder':
            return self.meta_encoder
        return self.compiled('_compiled_encoder', self.meta_encoder)

    def estimates(self, z_s: Tensor, trajectory: Trajectory) -> Tensor:
        """Teacher estimates ``(N, B, ...)`` of a trajectory started from ``z_s``."""
        velocities = torch.stack(trajectory.velocities)
        # one record for all N steps: times (N, 1, ...) broadcast over (N, B, ...)
        times = host_to_device(trajectory.times[:-1], z_s.device, z_s.dtype)
        coeffs = self.schedule.coefficients(times.reshape(-1, *([1] * z_s.dim())))
        if self.estimate == 'displacement':
            return self.schedule.displacement_estimate(coeffs, z_s.unsqueeze(0), velocities)
        states = torch.stack(trajectory.states[:-1])
        return self.schedule.interpolant_estimate(coeffs, states, velocities)


def build_flow(cfg: Optional[dict], in_channels: int, owner: str, default: dict,
               field: str = 'flow') -> FlowMatchingConnector:
    """Build the flow of a head or neck from its config.

    Args:
        cfg: the ``flow`` config of the owner (``type`` optional, ``in_channels`` filled in);
            ``None`` for ``default``.
        in_channels: channels of the representation the flow transports.
        owner: the owning component, named in errors (e.g. ``'FlowMatchingNeck'``).
        default: the config used when ``cfg`` is ``None``.
        field: the config field, named in errors.

    Raises:
        ValueError: a config that sets another ``in_channels``, or any invalid value.
    """
    flow_cfg = dict(copy.deepcopy(default if cfg is None else cfg))
    if flow_cfg.get('in_channels', in_channels) != in_channels:
        raise ValueError(f'{owner}: {field}.in_channels ({flow_cfg["in_channels"]}) != '
                         f'in_channels ({in_channels})')
    flow_cfg.pop('_scope_', None)
    flow_cfg.setdefault('type', FlowMatchingConnector)
    return build_component(flow_cfg, field, base=FlowMatchingConnector, in_channels=in_channels)


def find_flows(module: nn.Module) -> Dict[str, FlowMatchingConnector]:
    """Every :class:`FlowMatchingConnector` inside ``module``, by module name."""
    return {name: m for name, m in module.named_modules() if isinstance(m, FlowMatchingConnector)}
