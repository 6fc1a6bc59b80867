import math

import pytest
import torch

from fmkt_plugin.models.meta_encoders import MLPMetaEncoder
from fmkt_plugin.models.schedules import VPSchedule
from fmkt_plugin.models.solvers import (
    EulerSolver,
    HeunSolver,
    ODESolver,
    Trajectory,
    uniform_time_grid,
)
from fmkt_plugin.registry import MODELS

F64 = dict(dtype=torch.float64)


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


def test_uniform_time_grid():
    grid = uniform_time_grid(4)
    assert grid.dtype == torch.float64 and grid.tolist() == [1.0, 0.75, 0.5, 0.25, 0.0]


@pytest.mark.parametrize('shape', [(3, 4), (3, 4, 2, 2)])
def test_euler_trajectory_shapes_times_and_updates(shape):
    const = torch.randn(shape)
    rec = _Recorder(lambda x, t: const)
    x0 = torch.randn(shape)
    traj = EulerSolver()(rec, x0, uniform_time_grid(4))
    assert isinstance(traj, Trajectory) and traj.num_steps == 4
    assert len(traj.states) == 5 and all(s.shape == shape for s in traj.states)
    assert [c[1][0].item() for c in rec.calls] == [1.0, 0.75, 0.5, 0.25]
    assert all(c[1].shape == (3, ) for c in rec.calls)
    # x_{k+1} = x_k - v / N from the given start; the velocities are the model's outputs.
    assert traj.states[0] is x0
    torch.testing.assert_close(traj.states[2], x0 - 0.5 * const)
    torch.testing.assert_close(traj.states[-1], x0 - const)
    assert all(v is const for v in traj.velocities)


def test_solver_follows_any_grid():
    """A non-uniform, increasing grid: the steps follow its spacing."""
    traj = EulerSolver()(lambda x, t: torch.ones_like(x), torch.zeros(2, 1), [0.0, 0.1, 0.4])
    torch.testing.assert_close(traj.states[-1], torch.full((2, 1), 0.4))
    torch.testing.assert_close(traj.times, torch.tensor([0.0, 0.1, 0.4], **F64))


def _vp_oracle_error(solver, num_steps: int) -> float:
    """|x(0) - z_t| for the VP path's velocity, integrated from x(1) = z_s."""
    gen = torch.Generator().manual_seed(0)
    z_s, z_t = torch.randn(8, 5, generator=gen, **F64), torch.randn(8, 5, generator=gen, **F64)
    sch = VPSchedule()
    traj = solver(lambda x, t: sch.velocity(z_s, z_t, t), sch.init(z_s),
                  uniform_time_grid(num_steps))
    return (traj.states[-1] - z_t).abs().max().item()


def test_euler_is_first_order_and_heun_second_order_on_vp():
    """Oracle test on the curved VP path: doubling N halves Euler's error and quarters Heun's."""
    ns = (8, 16, 32, 64)
    euler = [_vp_oracle_error(EulerSolver(), n) for n in ns]
    heun = [_vp_oracle_error(HeunSolver(), n) for n in ns]
    euler_orders = [math.log2(a / b) for a, b in zip(euler, euler[1:])]
    heun_orders = [math.log2(a / b) for a, b in zip(heun, heun[1:])]
    assert all(0.9 < p < 1.1 for p in euler_orders), euler_orders
    assert all(1.9 < p < 2.1 for p in heun_orders), heun_orders
    assert heun[-1] < 1e-3 * euler[-1] * 10  # far more accurate at the same N


def test_heun_step_uses_both_ends():
    calls = []

    def model(x, t):
        calls.append(float(t[0]))
        return torch.full_like(x, float(t[0]))  # v(t) = t: exact integral over [1, 0] is -1/2

    traj = HeunSolver()(model, torch.zeros(1, 1, **F64), uniform_time_grid(2))
    assert calls == [1.0, 0.5, 0.5, 0.0]
    torch.testing.assert_close(traj.states[-1], torch.full((1, 1), -0.5, **F64))
    assert [float(v[0, 0]) for v in traj.velocities] == [1.0, 0.5]  # first stages
    assert HeunSolver.evals_per_step == 2 and EulerSolver.evals_per_step == 1


def test_gradients_flow_through_every_step():
    torch.manual_seed(0)
    enc = MLPMetaEncoder(6, time_embed_dim=8, zero_init_out=False)
    rec = _Recorder(enc)
    z_s = torch.randn(4, 6, requires_grad=True)
    n = 5
    traj = EulerSolver()(rec, z_s, uniform_time_grid(n))
    # Only the end point is scored: it must depend on every velocity.
    traj.states[-1].pow(2).sum().backward()
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
    traj = EulerSolver()(enc, z_s, uniform_time_grid(4))
    full = torch.autograd.grad(torch.stack(traj.velocities).pow(2).sum(), enc.out.weight)[0]

    def detached(x, t):
        return enc(x.detach(), t)

    traj = EulerSolver()(detached, z_s, uniform_time_grid(4))
    cut = torch.autograd.grad(torch.stack(traj.velocities).pow(2).sum(), enc.out.weight)[0]
    assert (full - cut).abs().max() > 1e-4


@pytest.mark.parametrize('bad', [[1.0], [[1.0, 0.0]], [1.0, float('nan')]])
def test_bad_time_grid(bad):
    with pytest.raises(ValueError, match='time_grid'):
        EulerSolver()(lambda x, t: x, torch.zeros(1, 2), bad)


def test_solvers_are_registered():
    for name in ('EulerSolver', 'HeunSolver'):
        assert issubclass(MODELS.get(name), ODESolver)


class _GridModel:
    """A velocity model that binds to the grid: records the times it was bound to."""

    def __init__(self):
        self.bound = []

    def on_time_grid(self, times, like):
        self.bound.append(list(times))
        return lambda x, t: torch.full_like(x, t)


@pytest.mark.parametrize('solver, want', [(EulerSolver(), [1.0, 0.5]),
                                          (HeunSolver(), [1.0, 0.5, 0.0])])
def test_models_with_on_time_grid_are_bound_once_to_the_evaluated_times(solver, want):
    model = _GridModel()
    traj = solver(model, torch.zeros(2, 1, **F64), uniform_time_grid(2))
    assert model.bound == [want]
    # v(t) = t bound to the grid gives the trajectory of the plain callable v(x, t) = t
    plain = solver(lambda x, t: t[:, None].expand_as(x), torch.zeros(2, 1, **F64),
                   uniform_time_grid(2))
    torch.testing.assert_close(traj.states[-1], plain.states[-1])
    assert traj.states[-1].abs().sum() > 0


@pytest.mark.parametrize('solver', [EulerSolver(), HeunSolver()])
def test_encoder_bound_to_the_grid_equals_per_step_calls(solver):
    """The meta-encoder's batched time embedding gives the per-step trajectory and gradients."""
    torch.manual_seed(0)
    enc = MLPMetaEncoder(6, time_embed_dim=8, zero_init_out=False)
    z_s = torch.randn(4, 6, 3, 3)
    results = []
    for model in (enc, _Recorder(enc)):  # the wrapper has no on_time_grid: per-step embedding
        traj = solver(model, z_s, uniform_time_grid(5))
        loss = torch.stack(traj.velocities).pow(2).sum() + traj.states[-1].pow(2).sum()
        results.append((traj.states[-1], torch.autograd.grad(loss, list(enc.parameters()))))
    (end_a, grads_a), (end_b, grads_b) = results
    torch.testing.assert_close(end_a, end_b)
    for a, b in zip(grads_a, grads_b):
        torch.testing.assert_close(a, b)
    assert grads_a[0].abs().sum() > 0  # the time-embedding MLP receives a gradient
