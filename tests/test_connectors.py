import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmrazor.models.architectures.connectors.base_connector import BaseConnector
from torch.utils._python_dispatch import TorchDispatchMode

from fmkt_plugin.models.connectors import (
    FlowMatchingConnector,
    FlowResult,
    TeacherProjector,
    find_flows,
    flow_num_steps,
)
from fmkt_plugin.models.meta_encoders import (
    ConvMetaEncoder,
    MLPMetaEncoder,
    TransformerMetaEncoder,
)
from fmkt_plugin.models.schedules import RectifiedFlowSchedule, VESchedule, VPSchedule
from fmkt_plugin.registry import MODELS

SMALL = dict(type='MLPMetaEncoder', time_embed_dim=8)


def _conn(**kwargs):
    kwargs.setdefault('meta_encoder', SMALL)
    return FlowMatchingConnector(in_channels=kwargs.pop('in_channels', 6), **kwargs)


def test_build_from_registry_and_forward():
    conn = MODELS.build(dict(_scope_='mmrazor', type='FlowMatchingConnector', in_channels=6,
                             num_steps=3, schedule='vp', meta_encoder=SMALL))
    assert isinstance(conn, BaseConnector) and isinstance(conn.schedule, VPSchedule)
    assert isinstance(conn.meta_encoder, MLPMetaEncoder) and conn.meta_encoder.in_channels == 6
    for shape in [(4, 6), (4, 6, 3, 3)]:
        x = torch.randn(shape)
        out = conn(x)
        assert isinstance(out, FlowResult) and out.estimates.shape == (3, ) + shape
        assert out.transported.shape == shape


def _reference(encoder, x, schedule, n, displacement=False):
    """The flow written out step by step: Euler from alpha(1) x, one estimate per step."""
    state = schedule.alpha(torch.ones(())) * x
    estimates = []
    for i in range(n, 0, -1):
        t = torch.full((x.shape[0], ), i / n)
        v = encoder(state, t)
        tb = t.reshape(-1, *([1] * (x.dim() - 1)))
        if displacement:
            estimates.append((v - schedule.d_alpha(tb) * x) / schedule.d_sigma(tb))
        else:
            estimates.append(schedule.teacher_estimate(state, v, t))
        state = state - v / n
    return torch.stack(estimates), state


@pytest.mark.parametrize('schedule, cfg', [
    (VESchedule(0.05, 1.0), dict(type='ve', s_min=0.05, s_max=1.0)),
    (VPSchedule(), 'vp'),
    (RectifiedFlowSchedule(), 'rectified'),
])
def test_forward_equals_the_written_out_flow(schedule, cfg):
    torch.manual_seed(0)
    conn = _conn(num_steps=4, schedule=cfg,
                 meta_encoder=dict(type='mlp', time_embed_dim=8, zero_init_out=False))
    x = torch.randn(3, 6)
    out = conn(x)
    want_est, want_end = _reference(conn.meta_encoder, x, schedule, 4)
    torch.testing.assert_close(out.estimates, want_est)
    torch.testing.assert_close(out.transported, want_end)


@pytest.mark.parametrize('encoder', ['mlp', 'conv', 'transformer'])
@pytest.mark.parametrize('schedule, cfg', [(VPSchedule(), 'vp'),
                                           (RectifiedFlowSchedule(), 'rectified')])
def test_flow_on_vit_tokens_keeps_the_connector_contract(encoder, schedule, cfg):
    """A token-level flow: (B, L, C) tokens of a ViT in, an estimate per step and the
    transported tokens out, of the input's shape, as the written-out flow gives them; the
    gradient reaches the student's tokens."""
    torch.manual_seed(0)
    conn = _conn(num_steps=3, schedule=cfg,
                 meta_encoder=dict(type=encoder, time_embed_dim=8, zero_init_out=False))
    x = torch.randn(2, 17, 6, requires_grad=True)
    out = conn(x)
    assert out.estimates.shape == (3, 2, 17, 6) and out.transported.shape == x.shape
    want_est, want_end = _reference(conn.meta_encoder, x, schedule, 3)
    torch.testing.assert_close(out.estimates, want_est)
    torch.testing.assert_close(out.transported, want_end)
    out.estimates.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


@pytest.mark.parametrize('cfg', ['vp', 'rectified'])
def test_displacement_estimate(cfg):
    torch.manual_seed(0)
    conn = _conn(num_steps=4, schedule=cfg, estimate='displacement',
                 meta_encoder=dict(type='mlp', time_embed_dim=8, zero_init_out=False))
    x = torch.randn(3, 6, 2, 2)
    out = conn(x)
    want_est, want_end = _reference(conn.meta_encoder, x, conn.schedule, 4, displacement=True)
    torch.testing.assert_close(out.estimates, want_est)
    torch.testing.assert_close(out.transported, want_end)
    if cfg == 'rectified':  # the authors' form: z_s - v at every step
        velocities = torch.stack(conn.solver(conn.meta_encoder, x, [1, .75, .5, .25, 0]).velocities)
        torch.testing.assert_close(out.estimates, x - velocities)
    # the two estimates differ with a learned (non-oracle) velocity
    interp = _conn(num_steps=4, schedule=cfg, meta_encoder=conn.meta_encoder)
    assert (interp(x).estimates - out.estimates).abs().max() > 1e-3


def test_displacement_is_refused_where_sigma_prime_vanishes():
    with pytest.raises(ValueError, match="estimate=\"displacement\".*sigma'"):
        _conn(schedule='ve', estimate='displacement')
    with pytest.raises(ValueError, match='estimate must be one of'):
        _conn(estimate='authors')


def test_heun_solver_option():
    torch.manual_seed(0)
    conn = _conn(num_steps=3, solver=dict(type='HeunSolver'),
                 meta_encoder=dict(type='mlp', time_embed_dim=8, zero_init_out=False))
    calls = []
    conn.meta_encoder.register_forward_hook(lambda *a: calls.append(1))
    out = conn(torch.randn(2, 6))
    assert out.estimates.shape == (3, 2, 6) and len(calls) == 6  # two evaluations per step


def test_random_num_steps_vary_and_eval_uses_test_steps():
    conn = _conn(num_steps=[1, 2, 4])
    assert conn.test_num_steps == 4
    torch.manual_seed(0)
    seen = set()
    for _ in range(8):
        seen.add(conn(torch.randn(2, 6)).estimates.shape[0])
    assert len(seen) > 1
    assert {conn.draw_num_steps() for _ in range(60)} == {1, 2, 4}
    conn.eval()
    assert {conn(torch.randn(2, 6)).estimates.shape[0] for _ in range(5)} == {4}


def test_test_steps_independent_of_training_steps():
    conn = _conn(num_steps=2, test_num_steps=5)
    assert conn(torch.randn(2, 6)).estimates.shape[0] == 2
    conn.eval()
    assert conn(torch.randn(2, 6)).estimates.shape[0] == 5
    assert conn(torch.randn(2, 6), num_steps=7).estimates.shape[0] == 7


def test_flow_num_steps_context_sets_and_restores_n():
    model = torch.nn.Sequential(_conn(num_steps=(1, 2), test_num_steps=5), _conn(num_steps=3))
    assert sorted(find_flows(model)) == ['0', '1']
    model.eval()
    with flow_num_steps(model, 4):
        assert [f(torch.randn(2, 6)).estimates.shape[0] for f in model] == [4, 4]
    assert [f(torch.randn(2, 6)).estimates.shape[0] for f in model] == [5, 3]
    with flow_num_steps(model, None):  # no change
        assert model[0](torch.randn(2, 6)).estimates.shape[0] == 5
    with pytest.raises(ValueError, match='num_steps'):
        with flow_num_steps(model, 0):
            pass
    with pytest.raises(ValueError, match='no FM-KT flow'):
        with flow_num_steps(torch.nn.Linear(2, 2), 4):
            pass


def test_draws_are_reproducible_under_seed():

    def draws():
        torch.manual_seed(123)
        conn = _conn(num_steps=(1, 2, 4, 8, 16))
        return [conn.draw_num_steps() for _ in range(20)]

    assert draws() == draws()


def test_draws_continue_after_state_dict_round_trip():
    """A resumed run continues the same sequence of N, whatever the global RNG did."""
    torch.manual_seed(0)
    conn = _conn(num_steps=(1, 2, 4, 8))
    first = [conn.draw_num_steps() for _ in range(10)]
    saved = {k: v.clone() for k, v in conn.state_dict().items()}
    expected = [conn.draw_num_steps() for _ in range(30)]
    assert len(set(first + expected)) > 2

    torch.manual_seed(1)  # another initial seed: the fresh connector draws another sequence
    resumed = _conn(num_steps=(1, 2, 4, 8))
    assert [resumed.draw_num_steps() for _ in range(30)] != expected
    resumed.load_state_dict(saved, strict=True)
    torch.rand(100)  # e.g. validation or data loading in between
    assert [resumed.draw_num_steps() for _ in range(30)] == expected
    assert int(resumed.draw_count) == 40


def test_draws_leave_the_global_rng_alone():
    conn = _conn(num_steps=[1, 2, 4])
    state = torch.get_rng_state()
    for _ in range(5):
        conn(torch.zeros(2, 6))
    assert torch.equal(torch.get_rng_state(), state)
    assert int(conn.draw_count) == 5
    conn(torch.zeros(2, 6), num_steps=3)  # explicit N and eval mode do not draw
    conn.eval()
    conn(torch.zeros(2, 6))
    assert int(conn.draw_count) == 5


def test_draw_buffers_only_with_random_n_and_checkpoints_load_both_ways():
    fixed, random_n = _conn(num_steps=4), _conn(num_steps=(2, 4))
    assert not any(k.startswith('draw_') for k in fixed.state_dict())
    assert {'draw_seed', 'draw_count'} <= set(random_n.state_dict())
    # A checkpoint without the buffers (older, or fixed N) loads strictly, and the other way.
    seed = int(random_n.draw_seed)
    random_n.load_state_dict(fixed.state_dict(), strict=True)
    assert int(random_n.draw_seed) == seed
    fixed.load_state_dict(random_n.state_dict(), strict=True)


@pytest.mark.parametrize('cfg, cls', [
    ('mlp', MLPMetaEncoder),
    (dict(type='conv', variant='mobile'), ConvMetaEncoder),
    (dict(type='ConvMetaEncoder', variant='residual'), ConvMetaEncoder),
    (dict(type='transformer', num_heads=2, head_dim=4, window_size=2), TransformerMetaEncoder),
])
def test_meta_encoder_names(cfg, cls):
    conn = FlowMatchingConnector(in_channels=6, meta_encoder=cfg, num_steps=2)
    assert type(conn.meta_encoder) is cls
    assert conn(torch.randn(2, 6, 3, 3)).estimates.shape == (2, 2, 6, 3, 3)


def test_gradients_reach_encoder_and_student_through_all_steps():
    torch.manual_seed(0)
    conn = _conn(num_steps=4, meta_encoder=dict(type='mlp', time_embed_dim=8,
                                                  zero_init_out=False))
    x = torch.randn(3, 6, requires_grad=True)
    est = conn(x).estimates
    est.pow(2).mean().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in conn.parameters())


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_steps=0), 'num_steps'),
    (dict(num_steps=-3), 'num_steps'),
    (dict(num_steps=[]), 'num_steps'),
    (dict(num_steps=[2, 0]), 'num_steps'),
    (dict(num_steps=2.5), 'num_steps'),
    (dict(num_steps='8'), 'num_steps'),
    (dict(num_steps=True), 'num_steps'),
    (dict(test_num_steps=0), 'test_num_steps'),
    (dict(schedule='cosine'), 'schedule'),
    (dict(schedule=dict(type='Nope')), 'schedule'),
    (dict(meta_encoder=dict(type='unet')), 'meta_encoder'),
    (dict(meta_encoder=dict(type='KLDivergence')), 'meta_encoder'),
    (dict(meta_encoder=dict(type='mlp', in_channels=5)), 'meta_encoder.in_channels'),
    (dict(meta_encoder=dict(type='mlp', depth=3)), 'meta_encoder'),
    (dict(in_channels=0), 'in_channels'),
    (dict(num_steps=10**9), 'num_steps must be an int in \\[1, 1024\\]'),
    (dict(test_num_steps=2048), 'test_num_steps'),
    (dict(solver='VPSchedule'), 'solver'),
    (dict(solver=dict(type='EulerSolver', order=2)), 'solver'),
])
def test_bad_config_raises_at_build(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _conn(**kwargs)


def test_integral_numbers_are_accepted():
    conn = _conn(num_steps=np.int64(4), test_num_steps=np.int32(2), in_channels=np.int64(6))
    assert conn.num_steps_choices == (4, ) and conn.test_num_steps == 2
    assert type(conn.test_num_steps) is int


def test_zero_init_makes_rectified_estimates_equal_student():
    conn = _conn(num_steps=3)
    x = torch.randn(2, 6)
    out = conn(x)
    torch.testing.assert_close(out.estimates, x.expand(3, 2, 6))
    torch.testing.assert_close(out.transported, x)


def test_teacher_projector_maths_and_shapes():
    torch.manual_seed(0)
    proj = MODELS.build(dict(_scope_='mmrazor', type='TeacherProjector', in_channels=5,
                             out_channels=3, stride=2))
    feat = torch.randn(4, 5, 8, 8)
    out = proj(feat)
    assert out.shape == (4, 3, 4, 4)
    # Training mode: per-channel batch statistics, then a strided 1x1 conv.
    mean = feat.mean(dim=(0, 2, 3), keepdim=True)
    var = feat.var(dim=(0, 2, 3), keepdim=True, unbiased=False)
    ref = F.conv2d((feat - mean) / torch.sqrt(var + proj.bn.eps), proj.conv.weight,
                   proj.conv.bias, stride=2)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    assert proj(torch.randn(4, 5)).shape == (4, 3)
    with pytest.raises(ValueError, match='stride'):
        TeacherProjector(5, 3, stride=0)


def test_a_connector_keeps_no_activation():
    """Everything a forward makes is returned: a trained connector copies and pickles."""
    import copy
    import pickle
    conn = FlowMatchingConnector(4, meta_encoder=dict(type='mlp', zero_init_out=False),
                                 num_steps=2)
    x = torch.randn(3, 4, requires_grad=True)
    out = conn(x)
    assert out.transported.grad_fn is not None  # a graph-attached activation, returned
    twin = copy.deepcopy(conn)
    assert not any(isinstance(v, torch.Tensor) and v.grad_fn is not None
                   for v in vars(conn).values())
    torch.testing.assert_close(twin(x).estimates, conn(x).estimates)
    torch.testing.assert_close(pickle.loads(pickle.dumps(conn))(x).estimates, out.estimates)


@pytest.mark.parametrize('value, error, match', [
    ('yes', TypeError, 'compile must be a bool or a dict'),
    (dict(bakend='inductor'), ValueError, r"unknown key\(s\) \['bakend'\]"),
    (dict(scope='loss'), ValueError, r"compile.scope must be one of \('encoder', 'flow'\)"),
])
def test_compile_switch_rejects_bad_values(value, error, match):
    with pytest.raises(error, match=match):
        _conn(compile=value)


def _compiled_pair(compile_cfg):
    torch.manual_seed(0)
    encoder = dict(SMALL, zero_init_out=False)  # a non-zero velocity, so the flow moves
    eager = _conn(meta_encoder=encoder, num_steps=(1, 2, 4))
    compiled = _conn(meta_encoder=encoder, num_steps=(1, 2, 4), compile=compile_cfg)
    compiled.load_state_dict(eager.state_dict())
    return eager, compiled


def _flow_and_grads(conn, x, n):
    out = conn(x, n)
    loss = out.estimates.square().sum() + out.transported.sum()
    return [out.estimates, out.transported] + list(
        torch.autograd.grad(loss, [x] + list(conn.parameters())))


def test_compiled_flow_equals_eager_and_keeps_the_module_tree():
    # aot_eager traces the meta-encoder through dynamo and AOTAutograd but runs eager kernels,
    # so every value and gradient must match bit for bit
    import copy
    import pickle
    eager, compiled = _compiled_pair(dict(backend='aot_eager'))
    x = torch.randn(3, 6, 2, 2, requires_grad=True)
    for n in (1, 2, 4):
        for a, b in zip(_flow_and_grads(eager, x, n), _flow_and_grads(compiled, x, n)):
            assert torch.equal(a, b)
    wrapper = compiled.velocity_model()
    assert wrapper is not compiled.meta_encoder and wrapper._orig_mod is compiled.meta_encoder
    assert eager.velocity_model() is eager.meta_encoder
    # the wrapper is not a submodule: same state_dict keys and parameters as the eager flow
    assert list(compiled.state_dict()) == list(eager.state_dict())
    assert len(list(compiled.parameters())) == len(list(eager.parameters()))
    # copies (EMA, DDP) and pickles drop the wrapper and compile their own, around their own
    # meta-encoder
    for clone in (copy.deepcopy(compiled), pickle.loads(pickle.dumps(compiled))):
        assert '_compiled_encoder' not in clone.__dict__
        assert torch.equal(clone(x, 2).estimates, eager(x, 2).estimates)
        assert clone.velocity_model()._orig_mod is clone.meta_encoder


@pytest.mark.slow
def test_inductor_compiled_flow_matches_eager_on_cpu():
    # the default backend generates fused C++ kernels: equal up to float rounding
    eager, compiled = _compiled_pair(True)
    x = torch.randn(3, 6, 2, 2, requires_grad=True)
    for n in (1, 4):
        for a, b in zip(_flow_and_grads(eager, x, n), _flow_and_grads(compiled, x, n)):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_compiled_flow_runs_through_the_compiled_wrapper():
    """The steps evaluate the compiled graph (the grid binding does not fall back to the eager
    encoder: the backend would never be called), and no float time enters the graph (one
    graph for all N steps, not one per time)."""
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    conn = _conn(num_steps=4, compile=dict(backend=counting_backend))
    x = torch.randn(3, 6, 2, 2, requires_grad=True)
    conn(x).estimates.sum().backward()
    assert len(graphs) == 1  # compiled once, reused by the 4 steps (no per-time recompile)
    conn(x)
    assert len(graphs) == 1 and x.grad is not None


@pytest.mark.parametrize('encoder', ['mlp', 'conv'])
@pytest.mark.parametrize('solver', ['EulerSolver', 'HeunSolver'])
def test_flow_with_batched_time_embeddings_equals_per_step_flow(encoder, solver):
    """The connector embeds the N times once; estimates, end point and gradients are those of
    the flow that embeds a (B,) time at every step."""
    torch.manual_seed(0)
    conn = _conn(num_steps=4, solver=dict(type=solver),
                 meta_encoder=dict(type=encoder, time_embed_dim=8, zero_init_out=False))
    x = torch.randn(3, 6, 4, 4)
    calls = []
    conn.meta_encoder.time_embed.register_forward_hook(lambda *a: calls.append(1))
    out = conn(x)
    assert len(calls) == 1  # one batched call for all steps
    per_step = conn.solver(lambda s, t: conn.meta_encoder(s, t), conn.schedule.init(x),
                           [1.0, 0.75, 0.5, 0.25, 0.0])
    assert len(calls) == 1 + 4 * conn.solver.evals_per_step
    want_est = conn.estimates(x, per_step)
    torch.testing.assert_close(out.estimates, want_est)
    torch.testing.assert_close(out.transported, per_step.states[-1])
    params = list(conn.parameters())
    got = torch.autograd.grad(out.estimates.pow(2).sum(), params)
    want = torch.autograd.grad(want_est.pow(2).sum(), params)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)


class _DeviceTraffic(TorchDispatchMode):
    """Counts what crosses between the host and a device: copies of CPU tensors to another
    device, and reads of device values on the host (``item``, ``bool``, ``tolist``)."""

    def __init__(self):
        super().__init__()
        self.to_device, self.reads = 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func.overloadpacket.__name__
        if name in ('_to_copy', 'copy_'):
            src = args[1] if name == 'copy_' else args[0]
            dst = args[0].device if name == 'copy_' else kwargs.get('device', src.device)
            if src.device.type == 'cpu' and torch.device(dst).type != 'cpu':
                self.to_device += 1
        if name == '_local_scalar_dense' and args[0].device.type != 'cpu':
            self.reads += 1
        return func(*args, **kwargs)


@pytest.mark.parametrize('shape', [(4, 6), (2, 6, 3, 3)])
@pytest.mark.parametrize('solver', ['EulerSolver', 'HeunSolver'])
def test_flow_never_reads_the_device_and_copies_to_it_a_fixed_number_of_times(shape, solver):
    """On an accelerator every read of a device value stalls the host, and so does a plain
    host-to-device copy; the meta device shows both without one. A training forward and
    backward reads nothing, and its host-to-device copies (the time grid, queued without a
    stall on CUDA by host_to_device) do not grow with N."""
    copies = {}
    for n in (2, 8):
        conn = _conn(num_steps=(n, n + 1), solver=dict(type=solver)).to('meta')
        x = torch.empty(shape, device='meta', requires_grad=True)
        with _DeviceTraffic() as traffic:
            out = conn(x)
            (out.estimates.square().mean() + out.transported.mean()).backward()
        assert traffic.reads == 0
        assert x.grad is not None and x.grad.device.type == 'meta'
        copies[n] = traffic.to_device
    assert copies[2] == copies[8] <= 2, copies


def test_flow_scope_compiles_the_whole_unrolled_flow_exactly():
    """compile.scope='flow' traces time embeddings, the N steps and the estimates as one graph
    per N (fullgraph=True fails on any break); aot_eager runs eager kernels, so values and
    gradients are bit-identical; the draw of N stays outside the graph."""
    import copy
    graphs = []

    def counting_aot_eager(gm, example_inputs):
        graphs.append(gm)
        from torch._dynamo.backends.registry import lookup_backend
        return lookup_backend('aot_eager')(gm, example_inputs)

    torch._dynamo.reset()
    eager, compiled = _compiled_pair(dict(scope='flow', backend=counting_aot_eager,
                                          fullgraph=True))
    assert compiled.compile_scope == 'flow'
    assert compiled.velocity_model() is compiled.meta_encoder  # no per-step wrapper
    for shape in ((3, 6), (3, 6, 2, 2)):
        x = torch.randn(shape, requires_grad=True)
        for n in (1, 4, 1):
            for a, b in zip(_flow_and_grads(eager, x, n), _flow_and_grads(compiled, x, n)):
                assert torch.equal(a, b)
    assert len(graphs) == 4  # one per (N, shape): the repeated N=1 reuses its graph
    # training draws advance in step: the draw is not traced
    eager.train(), compiled.train()
    x = torch.randn(3, 6)
    for _ in range(3):
        assert compiled(x).estimates.shape[0] == eager(x).estimates.shape[0]
    assert int(compiled.draw_count) == int(eager.draw_count) == 3
    assert list(compiled.state_dict()) == list(eager.state_dict())
    clone = copy.deepcopy(compiled)
    assert '_compiled_flow' not in clone.__dict__
    assert torch.equal(clone(x, 2).estimates, eager(x, 2).estimates)


@pytest.mark.slow
def test_inductor_compiled_whole_flow_matches_eager_on_cpu():
    eager, compiled = _compiled_pair(dict(scope='flow'))
    x = torch.randn(3, 6, requires_grad=True)
    for a, b in zip(_flow_and_grads(eager, x, 4), _flow_and_grads(compiled, x, 4)):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


def test_step_count_policy_is_usable_by_any_module():
    """The step-count policy stands apart from the flow: a plain module gets the draws, the
    draw buffers in its own state_dict and ``flow_num_steps``."""
    from fmkt_plugin.models.connectors import StepCountPolicy

    class Stepper(StepCountPolicy):

        def __init__(self, num_steps, test_num_steps=None):
            super().__init__()
            self.init_step_policy(num_steps, test_num_steps, owner='Stepper')

    torch.manual_seed(3)
    stepper = Stepper([1, 3])
    assert list(stepper.state_dict()) == ['draw_seed', 'draw_count']
    assert {stepper.draw_num_steps() for _ in range(40)} == {1, 3}
    assert stepper.eval().draw_num_steps() == 3
    with flow_num_steps(stepper, 2):
        assert stepper.draw_num_steps() == 2
    assert stepper.draw_num_steps() == 3
    fixed = Stepper(2, test_num_steps=5)
    assert list(fixed.state_dict()) == [] and fixed.test_num_steps == 5
    fixed.load_state_dict(stepper.state_dict())  # draw buffers of a random-N module: ignored
    with pytest.raises(ValueError, match=r'Stepper: num_steps must be an int in \[1, 1024\]'):
        Stepper([2, 0])
    with pytest.raises(ValueError, match='Stepper: num_steps is an empty set'):
        Stepper([])


def test_compile_args_and_encoder_through():
    from fmkt_plugin.models.connectors.compile import EncoderThrough, compile_args

    assert compile_args(False) == (None, None)
    assert compile_args(True) == ('encoder', dict(dynamic=False))
    assert compile_args(dict(scope='flow', mode='reduce-overhead')) == (
        'flow', dict(dynamic=False, mode='reduce-overhead'))
    with pytest.raises(ValueError, match="Owner: compile has unknown key"):
        compile_args(dict(bogus=1), owner='Owner')

    encoder = MLPMetaEncoder(in_channels=4, time_embed_dim=8)
    calls = []

    def call(x, t, **kwargs):
        calls.append(t)
        return encoder(x, t, **kwargs)

    through = EncoderThrough(encoder, call)
    x = torch.randn(2, 4)
    assert torch.equal(through.on_time_grid([1.0, 0.5], x)(x, 0.5),
                       encoder.on_time_grid([1.0, 0.5], x)(x, 0.5))
    assert calls == [None]  # the bound grid's evaluation went through ``call``
