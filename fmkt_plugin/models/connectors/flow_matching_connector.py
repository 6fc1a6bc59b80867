"""Connector that transports a student representation towards the teacher."""
import contextlib
import copy
from typing import Dict, Iterator, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from mmrazor.models.architectures.connectors.base_connector import BaseConnector
from torch import Tensor, nn

from ...registry import register_model
from ...utils.device import host_to_device
from ...utils.validation import check_int
from ..builder import build_component
from ..meta_encoders import META_ENCODER_ALIASES, BaseMetaEncoder
from ..schedules import build_schedule
from ..solvers import EulerSolver, ODESolver, Trajectory, uniform_times

__all__ = [
    'FlowMatchingConnector', 'FlowResult', 'ESTIMATES', 'MAX_STEPS', 'COMPILE_KEYS',
    'COMPILE_SCOPES', 'build_flow', 'find_flows', 'flow_num_steps'
]

#: the ways a step's velocity is read as a teacher estimate (see ``FlowMatchingConnector``).
ESTIMATES = ('interpolant', 'displacement')
#: the largest accepted step count (a typo such as 10**9 would otherwise hang in the unroll).
MAX_STEPS = 1024
#: the keys a ``compile`` dict may set: ``scope`` and ``torch.compile`` arguments.
COMPILE_KEYS = ('scope', 'backend', 'mode', 'fullgraph', 'dynamic', 'options')
#: what ``compile`` compiles: the meta-encoder (one graph evaluated per step) or the whole flow.
COMPILE_SCOPES = ('encoder', 'flow')

_MASK64 = (1 << 64) - 1


def _mix64(value: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread hash of a 64-bit integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _check_steps(value, field: str) -> int:
    return check_int(value, field, min_value=1, max_value=MAX_STEPS,
                     owner='FlowMatchingConnector')


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
class FlowMatchingConnector(BaseConnector):
    """Schedule + meta-encoder + solver + the policy for the number of steps.

    ``forward(feature)`` integrates the flow from the student representation (t=1) to t=0 on a
    uniform grid of N steps and returns a :class:`FlowResult`: the teacher estimate of every
    step, ``(N, B, ...)``, and the transported representation.

    The estimate of step ``k`` comes from the state ``x_k``, the predicted velocity ``v_k`` and
    the schedule's record at ``t_k`` (``estimate``):

    - ``'interpolant'`` (default): ``(alpha' x_k - alpha v_k) / (alpha' sigma - alpha sigma')``,
      the teacher point of the path through ``x_k`` with velocity ``v_k`` (``x_k - t_k v_k``
      for rectified flow);
    - ``'displacement'``: ``(v_k - alpha' z_s) / sigma'`` from the *original* student
      representation ``z_s`` (``z_s - v_k`` for rectified flow: the velocity read as the whole
      student-to-teacher displacement, as in the FM-KT authors' code). Refused for a schedule
      whose ``sigma'`` vanishes (VE).

    Both are exact with the oracle velocity; they differ with a learned one.

    With several ``num_steps`` choices, the draw of a training forward is a hash of two
    buffers, ``draw_seed`` (drawn from torch's generator when the connector is built, so it
    follows mmengine's seeding) and ``draw_count`` (the number of draws so far). Both are in
    the ``state_dict``: a run resumed from a checkpoint continues the same sequence of N, and
    the draws neither consume nor depend on the global RNG. The buffers are read once (after
    a build or a load) and then mirrored on the host, so a draw never waits for an
    accelerator. DDP copies rank 0's buffers to every rank when it wraps the model, before the
    first draw, so every rank unrolls the same N.

    Args:
        in_channels: channels of the student representation (``(B, C)`` or ``(B, C, H, W)``).
        schedule: interpolant, a short name (``'rectified'``, ``'vp'``, ``'ve'``), a
            registered name or a config dict (see :func:`build_schedule`).
        meta_encoder: config dict of the velocity model; ``type`` is a registered name or a
            short name (``'mlp'``, ``'conv'``, ``'transformer'``, ``'linear'``);
            ``in_channels`` is filled in. Defaults to ``dict(type='MLPMetaEncoder')``.
        num_steps: steps in training; an int, or a list/tuple of ints from which one is drawn
            uniformly at every training forward. At most :data:`MAX_STEPS`.
        test_num_steps: steps in eval mode (default: the largest of ``num_steps``).
        estimate: ``'interpolant'`` or ``'displacement'`` (see above).
        solver: an :class:`ODESolver` config (default ``EulerSolver``; ``HeunSolver`` is
            second order at two velocity evaluations per step).
        compile: run through ``torch.compile``, which fuses small ops into fewer kernels
            (the N steps are serial, so their small ops add up). ``True`` compiles the
            meta-encoder with static shapes (``dynamic=False``: one graph per input shape;
            torch's automatic dynamic shapes failed in inductor on a 2-D logit flow beside a
            4-D feature flow); a dict sets ``scope`` and ``torch.compile`` arguments
            (``backend``, ``mode``, ``fullgraph``, ``dynamic``, ``options``). ``scope``:
            ``'encoder'`` (default) compiles the meta-encoder, evaluated once per step;
            ``'flow'`` compiles the whole unrolled flow (time embeddings, the N steps and the
            estimates: one graph per N and shape, forward and backward each one launch of a
            CUDA graph with ``mode='reduce-overhead'``). Off by default: compiled kernels
            round differently from eager ones (results agree to ~1e-6, not bit for bit), and
            compiling costs time at the first steps of each N and shape. The compiled
            wrapper is built at the first forward and kept outside the module tree, so
            ``state_dict`` keys, checkpoints and exports do not change.
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
        self.compile_scope, self.compile_args = _compile_args(compile)

        if isinstance(num_steps, (list, tuple)):
            if len(num_steps) == 0:
                raise ValueError('FlowMatchingConnector: num_steps is an empty set; give an int '
                                 'or a non-empty list of ints')
            choices = tuple(_check_steps(n, 'num_steps') for n in num_steps)
        else:
            choices = (_check_steps(num_steps, 'num_steps'), )
        self.num_steps_choices: Tuple[int, ...] = choices
        self._draw_state: Optional[Tuple[int, int]] = None  # host mirror of (seed, count)
        if len(choices) > 1:
            seed = int(torch.randint(2**62, (), dtype=torch.int64))
            self.register_buffer('draw_seed', torch.tensor(seed, dtype=torch.int64))
            self.register_buffer('draw_count', torch.zeros((), dtype=torch.int64))
            self._draw_state = (seed, 0)
        self.test_num_steps = (max(choices) if test_num_steps is None else
                               _check_steps(test_num_steps, 'test_num_steps'))
        self._steps_override: Optional[int] = None

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
            encoder_cfg, 'meta_encoder', aliases=META_ENCODER_ALIASES, base=BaseMetaEncoder,
            in_channels=self.in_channels)
        if self.meta_encoder.in_channels != in_channels:
            raise ValueError(f'FlowMatchingConnector: meta_encoder.in_channels '
                             f'({self.meta_encoder.in_channels}) != in_channels ({in_channels})')
        self.solver = build_component(solver or EulerSolver, 'solver', base=ODESolver)

    # --- the number of steps -----------------------------------------------------------------
    def draw_num_steps(self) -> int:
        """Number of steps for the next forward: the override of :func:`flow_num_steps` if one
        is active, else drawn in training and ``test_num_steps`` in eval."""
        if self._steps_override is not None:
            return self._steps_override
        if not self.training:
            return self.test_num_steps
        if len(self.num_steps_choices) == 1:
            return self.num_steps_choices[0]
        if self._draw_state is None:  # after a load: read the buffers once
            self._draw_state = (int(self.draw_seed), int(self.draw_count))
        seed, count = self._draw_state
        self._draw_state = (seed, count + 1)
        self.draw_count.fill_(count + 1)  # an asynchronous write, never a read
        mixed = _mix64(_mix64(seed & _MASK64) ^ count)
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
        if len(self.num_steps_choices) > 1:
            self._draw_state = None  # the buffers may have changed: re-read at the next draw

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
        n = self.draw_num_steps() if num_steps is None else _check_steps(num_steps, 'num_steps')
        if self.compile_scope == 'flow':
            return self._compiled('_compiled_flow', self._unrolled)(feature, n)
        return self._unrolled(feature, n)

    def _unrolled(self, feature: Tensor, n: int) -> FlowResult:
        """The flow of ``n`` steps from ``feature`` (what ``scope='flow'`` compiles)."""
        model = self.velocity_model()
        if model is not self.meta_encoder:  # compiled: bind the grid through the wrapper
            model = _EncoderThrough(self.meta_encoder, model)
        trajectory = self.solver(model, self.schedule.init(feature), uniform_times(n))
        return FlowResult(self.estimates(feature, trajectory), trajectory.states[-1])

    def velocity_model(self) -> nn.Module:
        """What the solver calls: the meta-encoder, or its ``torch.compile`` wrapper when
        ``compile`` is set with the ``'encoder'`` scope (built once, at the first call)."""
        if self.compile_scope != 'encoder':
            return self.meta_encoder
        return self._compiled('_compiled_encoder', self.meta_encoder)

    def _compiled(self, key: str, target):
        """``torch.compile(target)``, built once and kept with its target in
        ``__dict__[key]``: a plain attribute, not a submodule, so the state_dict keeps its
        keys. Rebuilt when the target changed (e.g. a meta-encoder replaced after the first
        call)."""
        built_for, compiled = self.__dict__.get(key, (None, None))
        if compiled is None or built_for != target:
            compiled = torch.compile(target, **self.compile_args)
            self.__dict__[key] = (target, compiled)
        return compiled

    def __getstate__(self) -> dict:
        # deepcopy (EMA copies, DDP) and pickling drop the compiled wrappers; the copy compiles
        # its own at its first forward
        state = dict(super().__getstate__())
        for key in _COMPILED_KEYS:
            state.pop(key, None)
        return state

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


class _EncoderThrough:
    """A meta-encoder as the solver sees it, evaluated through ``call`` (its compiled
    wrapper): attribute access on a ``torch.compile`` wrapper reaches the original module, so
    the wrapper's own ``on_time_grid`` would evaluate the eager encoder."""

    def __init__(self, encoder: BaseMetaEncoder, call: nn.Module) -> None:
        self.encoder, self.call = encoder, call

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        return self.call(x, t)

    def on_time_grid(self, times: Sequence[float], like: Tensor):
        return self.encoder.on_time_grid(times, like, call=self.call)


_COMPILED_KEYS = ('_compiled_encoder', '_compiled_flow')


def _compile_args(value: Union[bool, dict]) -> Tuple[Optional[str], Optional[dict]]:
    """The scope and the ``torch.compile`` keyword arguments of the ``compile`` field
    (``(None, None)``: off)."""
    if isinstance(value, bool):
        return ('encoder', dict(dynamic=False)) if value else (None, None)
    if not isinstance(value, dict):
        raise TypeError(f'FlowMatchingConnector: compile must be a bool or a dict of '
                        f'torch.compile arguments, got {type(value).__name__} {value!r}')
    unknown = sorted(set(value) - set(COMPILE_KEYS))
    if unknown:
        raise ValueError(f'FlowMatchingConnector: compile has unknown key(s) {unknown}; '
                         f'keys allowed here: {list(COMPILE_KEYS)}')
    args = dict(dict(dynamic=False), **value)
    scope = args.pop('scope', 'encoder')
    if scope not in COMPILE_SCOPES:
        raise ValueError(f'FlowMatchingConnector: compile.scope must be one of '
                         f'{COMPILE_SCOPES}, got {scope!r}')
    return scope, args


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


@contextlib.contextmanager
def flow_num_steps(module: nn.Module, num_steps: Optional[int]) -> Iterator[None]:
    """Run every flow inside ``module`` with ``num_steps`` steps for the duration of a block.

    For evaluating one trained model at several N (``with flow_num_steps(model, 4): ...``); the
    configured step policy is back in force after the block. ``None`` changes nothing.

    Raises:
        ValueError: ``num_steps`` is not an int in ``[1, MAX_STEPS]``, or ``module`` has no
            flow.
    """
    if num_steps is None:
        yield
        return
    n = _check_steps(num_steps, 'num_steps')
    flows = list(find_flows(module).values())
    if not flows:
        raise ValueError(f'flow_num_steps: {type(module).__name__} has no FM-KT flow '
                         f'(FlowMatchingConnector)')
    saved = [f._steps_override for f in flows]
    for f in flows:
        f._steps_override = n
    try:
        yield
    finally:
        for f, old in zip(flows, saved):
            f._steps_override = old
