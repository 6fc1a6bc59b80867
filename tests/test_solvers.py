import pytest
import torch

from fmkt_plugin.models.meta_encoders import MLPMetaEncoder
from fmkt_plugin.models.schedules import RectifiedFlowSchedule, VPSchedule
from fmkt_plugin.models.solvers import EulerSolver


class _Recorder(torch.nn.Module):
    """Wraps a velocity model and keeps every (x, t, v) it saw."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, x, t):
        v = self.model(x, t)
        if v.requires_grad:
            v.retain_grad()
        self.calls.append((x, t, v))
        return v


@pytest.mark.parametrize('shape', [(3, 4), (3, 4, 2, 2)])
def test_shapes_times_and_updates(shape):
    const = torch.randn(shape)
    rec = _Recorder(lambda x, t: const)
    z_s = torch.randn(shape)
    out = EulerSolver()(rec, z_s, RectifiedFlowSchedule(), 4)
    assert out.estimates.shape == (4, ) + shape and out.transported.shape == shape
    assert [c[1][0].item() for c in rec.calls] == [1.0, 0.75, 0.5, 0.25]
    assert all(c[1].shape == (3, ) for c in rec.calls)
    # x_{k+1} = x_k - v / N, starting from alpha(1) z_s = z_s.
    torch.testing.assert_close(rec.calls[0][0], z_s)
    torch.testing.assert_close(rec.calls[2][0], z_s - 0.5 * const)
    torch.testing.assert_close(out.transported, z_s - const)
    # RF estimate at step k: x_k - t_k v.
    t2 = rec.calls[2][1][0]
    torch.testing.assert_close(out.estimates[2], z_s - 0.5 * const - t2 * const)


def test_x_init_is_used():
    z_s, x0 = torch.randn(2, 3), torch.randn(2, 3)
    out = EulerSolver()(lambda x, t: torch.zeros_like(x), z_s, VPSchedule(), 3, x_init=x0)
    torch.testing.assert_close(out.transported, x0)
    out = EulerSolver()(lambda x, t: torch.zeros_like(x), z_s, RectifiedFlowSchedule(), 3)
    torch.testing.assert_close(out.transported, z_s)


def test_gradients_flow_through_every_step():
    torch.manual_seed(0)
    enc = MLPMetaEncoder(6, time_embed_dim=8, zero_init_out=False)
    rec = _Recorder(enc)
    z_s = torch.randn(4, 6, requires_grad=True)
    n = 5
    out = EulerSolver()(rec, z_s, RectifiedFlowSchedule(), n)
    # Only the last step's estimate is scored: it must depend on every earlier velocity.
    out.estimates[-1].pow(2).sum().backward()
    assert len(rec.calls) == n
    for _, _, v in rec.calls:
        assert v.grad is not None and v.grad.abs().sum() > 0
    assert z_s.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


def test_unroll_is_not_detached():
    """The serial gradient differs from a per-step-detached one."""
    torch.manual_seed(0)
    enc = MLPMetaEncoder(6, time_embed_dim=8, zero_init_out=False)
    z_s = torch.randn(4, 6)
    sch = RectifiedFlowSchedule()
    out = EulerSolver()(enc, z_s, sch, 4)
    full = torch.autograd.grad(out.estimates.pow(2).sum(), enc.out.weight)[0]

    def detached(x, t):
        return enc(x.detach(), t)

    out = EulerSolver()(detached, z_s, sch, 4)
    cut = torch.autograd.grad(out.estimates.pow(2).sum(), enc.out.weight)[0]
    assert (full - cut).abs().max() > 1e-4


@pytest.mark.parametrize('bad', [0, -1, 2.0, True])
def test_bad_num_steps(bad):
    with pytest.raises(ValueError, match='num_steps'):
        EulerSolver()(lambda x, t: x, torch.zeros(1, 2), RectifiedFlowSchedule(), bad)
