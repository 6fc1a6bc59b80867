import pytest
import torch
import torch.nn.functional as F
from mmrazor.models.architectures.connectors.base_connector import BaseConnector

from fmkt_plugin.models.connectors import FlowMatchingConnector, TeacherProjector
from fmkt_plugin.models.meta_encoders import (
    ConvMetaEncoder,
    MLPMetaEncoder,
    TransformerMetaEncoder,
)
from fmkt_plugin.models.schedules import VESchedule, VPSchedule
from fmkt_plugin.models.solvers import EulerSolver
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
        est = conn(x)
        assert est.shape == (3, ) + shape
        assert conn.last_num_steps == 3 and conn.last_transported.shape == shape


def test_forward_equals_solver():
    torch.manual_seed(0)
    conn = _conn(num_steps=4, schedule=dict(type='ve', s_min=0.05, s_max=1.0),
                 meta_encoder=dict(type='mlp', time_embed_dim=8, zero_init_out=False))
    x = torch.randn(3, 6)
    est = conn(x)
    ref = EulerSolver()(conn.meta_encoder, x, VESchedule(0.05, 1.0), 4)
    torch.testing.assert_close(est, ref.estimates)
    torch.testing.assert_close(conn.last_transported, ref.transported)


def test_random_num_steps_vary_and_eval_uses_test_steps():
    conn = _conn(num_steps=[1, 2, 4])
    assert conn.test_num_steps == 4
    torch.manual_seed(0)
    seen = set()
    for _ in range(8):
        est = conn(torch.randn(2, 6))
        assert est.shape[0] == conn.last_num_steps
        seen.add(conn.last_num_steps)
    assert len(seen) > 1
    assert {conn.draw_num_steps() for _ in range(60)} == {1, 2, 4}
    conn.eval()
    assert {conn(torch.randn(2, 6)).shape[0] for _ in range(5)} == {4}


def test_test_steps_independent_of_training_steps():
    conn = _conn(num_steps=2, test_num_steps=5)
    assert conn(torch.randn(2, 6)).shape[0] == 2
    conn.eval()
    assert conn(torch.randn(2, 6)).shape[0] == 5
    assert conn(torch.randn(2, 6), num_steps=7).shape[0] == 7


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
    assert conn(torch.randn(2, 6, 3, 3)).shape == (2, 2, 6, 3, 3)


def test_gradients_reach_encoder_and_student_through_all_steps():
    torch.manual_seed(0)
    conn = _conn(num_steps=4, meta_encoder=dict(type='mlp', time_embed_dim=8,
                                                  zero_init_out=False))
    x = torch.randn(3, 6, requires_grad=True)
    est = conn(x)
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
])
def test_bad_config_raises_at_build(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _conn(**kwargs)


def test_zero_init_makes_rectified_estimates_equal_student():
    conn = _conn(num_steps=3)
    x = torch.randn(2, 6)
    torch.testing.assert_close(conn(x), x.expand(3, 2, 6))
    torch.testing.assert_close(conn.last_transported, x)


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


def test_copy_after_training_forward_leaves_the_activation_behind():
    import copy
    import pickle
    conn = FlowMatchingConnector(4, meta_encoder=dict(type='mlp', zero_init_out=False),
                                 num_steps=2)
    x = torch.randn(3, 4, requires_grad=True)
    conn(x)
    assert conn.last_transported.grad_fn is not None  # a graph-attached activation
    twin = copy.deepcopy(conn)
    assert twin.last_transported is None and conn.last_transported is not None
    assert pickle.loads(pickle.dumps(conn)).last_transported is None
    torch.testing.assert_close(twin(x), conn(x))
