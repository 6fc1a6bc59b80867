import math

import pytest
import torch
from mmrazor.registry import MODELS

from fmkt_plugin.models.schedules import (
    InterpolantSchedule,
    RectifiedFlowSchedule,
    VESchedule,
    VPSchedule,
    build_schedule,
)
from fmkt_plugin.models.schedules.base import ScheduleOutput
from fmkt_plugin.models.short_names import SHORT_NAMES
from fmkt_plugin.models.solvers import EulerSolver, uniform_time_grid

SCHEDULES = [RectifiedFlowSchedule(), VPSchedule(), VESchedule(), VESchedule(s_min=0.1, s_max=5.0)]
IDS = ['rectified', 'vp', 've', 've-wide']
F64 = dict(dtype=torch.float64)


def _pair(shape=(4, 3, 2, 2), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, **F64), torch.randn(shape, generator=gen, **F64)


def _oracle(schedule, z_s, z_t):
    return lambda x, t: schedule.velocity(z_s, z_t, t)


class _Solved:
    """Euler from ``x_init`` (default ``schedule.init(z_s)``), with the estimate of each step."""

    def __init__(self, model, z_s, schedule, num_steps, x_init=None):
        start = schedule.init(z_s) if x_init is None else x_init
        traj = EulerSolver()(model, start, uniform_time_grid(num_steps))
        self.transported = traj.states[-1]
        self.estimates = torch.stack([
            schedule.teacher_estimate(x, v, float(t))
            for x, v, t in zip(traj.states, traj.velocities, traj.times)
        ])


def test_boundary_values():
    zero, one = torch.tensor(0., **F64), torch.tensor(1., **F64)
    for sch in (RectifiedFlowSchedule(), VPSchedule()):
        assert sch.alpha(one) == pytest.approx(1.0) and sch.sigma(one) == pytest.approx(0.0)
        assert sch.alpha(zero) == pytest.approx(0.0) and sch.sigma(zero) == pytest.approx(1.0)
    ve = VESchedule(s_min=0.02, s_max=3.0)
    assert ve.alpha(zero) == pytest.approx(0.02) and ve.alpha(one) == pytest.approx(3.0)
    assert ve.sigma(zero) == 1.0 and ve.sigma(one) == 1.0


def test_vp_preserves_variance():
    t = torch.linspace(0, 1, 11, **F64)
    sch = VPSchedule()
    torch.testing.assert_close(sch.alpha(t)**2 + sch.sigma(t)**2, torch.ones_like(t))


@pytest.mark.parametrize('sch', SCHEDULES, ids=IDS)
def test_derivatives_match_finite_differences(sch):
    t = torch.linspace(0.02, 0.98, 25, **F64)
    h = 1e-6
    torch.testing.assert_close(sch.d_alpha(t), (sch.alpha(t + h) - sch.alpha(t - h)) / (2 * h),
                               rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(sch.d_sigma(t), (sch.sigma(t + h) - sch.sigma(t - h)) / (2 * h),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('sch', SCHEDULES, ids=IDS)
def test_teacher_estimate_inverts_the_path(sch):
    z_s, z_t = _pair()
    t = torch.tensor([0.05, 0.3, 0.7, 1.0], **F64)
    x_t = sch.interpolate(z_s, z_t, t)
    v = sch.velocity(z_s, z_t, t)
    torch.testing.assert_close(sch.teacher_estimate(x_t, v, t), z_t)
    # A scalar time works as well.
    x_t = sch.interpolate(z_s, z_t, 0.4)
    torch.testing.assert_close(sch.teacher_estimate(x_t, sch.velocity(z_s, z_t, 0.4), 0.4), z_t)


@pytest.mark.parametrize('sch', SCHEDULES, ids=IDS)
def test_time_broadcasts_per_sample(sch):
    for shape in [(3, 5), (3, 5, 2, 4)]:
        z_s, z_t = _pair(shape)
        t = torch.tensor([0.1, 0.5, 0.9], **F64)
        batched = sch.interpolate(z_s, z_t, t)
        for b in range(3):
            single = sch.interpolate(z_s[b:b + 1], z_t[b:b + 1], float(t[b]))
            torch.testing.assert_close(batched[b:b + 1], single)
    with pytest.raises(ValueError, match='time'):
        sch.interpolate(z_s, z_t, torch.rand(2, **F64))


def test_rectified_estimate_is_x_minus_t_v():
    x, v = _pair((2, 3))
    t = torch.tensor([0.25, 0.75], **F64)
    torch.testing.assert_close(RectifiedFlowSchedule().teacher_estimate(x, v, t),
                               x - t[:, None] * v)


@pytest.mark.parametrize('sch', SCHEDULES, ids=IDS)
def test_init_is_alpha_one_times_student(sch):
    z_s, z_t = _pair()
    torch.testing.assert_close(sch.init(z_s), sch.alpha(torch.tensor(1., **F64)) * z_s)
    if not isinstance(sch, VESchedule):  # sigma(1) = 0: the start is exact
        torch.testing.assert_close(sch.init(z_s), sch.interpolate(z_s, z_t, 1.0))


@pytest.mark.parametrize('num_steps', [1, 2, 3, 8])
def test_rectified_oracle_lands_exactly_on_teacher(num_steps):
    sch = RectifiedFlowSchedule()
    z_s, z_t = (z.float() for z in _pair())
    out = _Solved(_oracle(sch, z_s, z_t), z_s, sch, num_steps)
    torch.testing.assert_close(out.transported, z_t, atol=1e-5, rtol=0)
    # The straight path is followed exactly, so every step's estimate is the teacher.
    torch.testing.assert_close(out.estimates, z_t.expand(num_steps, *z_t.shape), atol=1e-5,
                               rtol=0)


@pytest.mark.parametrize('sch', SCHEDULES[1:], ids=IDS[1:])
def test_curved_oracle_error_shrinks_with_steps(sch):
    z_s, z_t = _pair()
    x_init = sch.interpolate(z_s, z_t, 1.0)
    end = sch.interpolate(z_s, z_t, 0.0)  # z_t for VP, s_min * z_s + z_t for VE
    errors = []
    for n in (1, 2, 4, 8, 16):
        out = _Solved(_oracle(sch, z_s, z_t), z_s, sch, n, x_init=x_init)
        errors.append((out.transported - end).abs().max().item())
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.1 * errors[0], errors
    # Euler is first order: doubling N halves the error once N is moderately large.
    assert 0.4 < errors[-1] / errors[-2] < 0.6, errors
    if isinstance(sch, VPSchedule):
        assert (out.transported - z_t).abs().max() < 0.1 * z_t.abs().max()


def test_build_schedule_names_dicts_and_instances():
    assert isinstance(build_schedule(None), RectifiedFlowSchedule)
    assert isinstance(build_schedule('rectified'), RectifiedFlowSchedule)
    assert isinstance(build_schedule('vp'), VPSchedule)
    assert isinstance(build_schedule('VESchedule'), VESchedule)
    ve = build_schedule(dict(type='ve', s_min=0.05, s_max=2.0))
    assert (ve.s_min, ve.s_max) == (0.05, 2.0)
    inst = VPSchedule()
    assert build_schedule(inst) is inst
    assert MODELS.get('VPSchedule') is VPSchedule


@pytest.mark.parametrize('cfg, match', [
    ('cosine-ish', 'schedule.type'),
    (dict(type='nope'), 'schedule.type'),
    (dict(type='ve', s_min=0.5, s_max=0.1), 's_min'),
    (dict(type='ve', s_max=1e300), r'VESchedule: s_max must be .* <= 10000.0, got 1e\+300'),
    (dict(type='vp', bogus=1), 'schedule'),
    (dict(s_min=0.1), 'type'),
    (dict(type='KLDivergence'), 'schedule.type'),  # registered, but not a schedule
])
def test_build_schedule_rejects_bad_config(cfg, match):
    with pytest.raises(ValueError, match=match):
        build_schedule(cfg)


def test_new_schedule_is_one_class():

    class QuadraticSchedule(InterpolantSchedule):
        short_name = 'test-quadratic'

        def coefficients(self, t):
            return ScheduleOutput(alpha=t**2, sigma=1 - t**2, d_alpha=2 * t, d_sigma=-2 * t)

    try:
        sch = build_schedule('test-quadratic')
        z_s, z_t = _pair()
        t = torch.tensor([0.2, 0.4, 0.6, 0.8], **F64)
        x_t, v = sch.interpolate(z_s, z_t, t), sch.velocity(z_s, z_t, t)
        torch.testing.assert_close(sch.teacher_estimate(x_t, v, t), z_t)
        out = _Solved(_oracle(sch, z_s, z_t), z_s, sch, 64)
        torch.testing.assert_close(out.transported, z_t, atol=0.1, rtol=0)
    finally:
        SHORT_NAMES['schedule'].pop('test-quadratic', None)


def test_ve_start_ignores_teacher_term():
    sch = VESchedule(s_min=0.01, s_max=1.0)
    z_s, z_t = _pair()
    torch.testing.assert_close(sch.init(z_s), z_s)
    torch.testing.assert_close(sch.interpolate(z_s, z_t, 1.0) - sch.init(z_s), z_t)
    assert math.isclose(float(sch.d_alpha(torch.tensor(0.)) / sch.alpha(torch.tensor(0.))),
                        math.log(100), rel_tol=1e-6)


@pytest.mark.parametrize('sch', SCHEDULES, ids=IDS)
def test_one_record_per_call(sch):
    z_s, _ = _pair()
    t = torch.tensor([0.1, 0.5, 0.9, 1.0], **F64)
    rec = sch(t, z_s)
    assert isinstance(rec, ScheduleOutput) and all(c.shape == (4, 1, 1, 1) for c in rec)
    flat = sch.coefficients(t)
    for name in ScheduleOutput._fields:
        torch.testing.assert_close(getattr(rec, name).flatten(), getattr(flat, name))
        torch.testing.assert_close(getattr(sch, name)(t), getattr(flat, name))


@pytest.mark.parametrize('sch', SCHEDULES[:2], ids=IDS[:2])
def test_displacement_estimate_is_exact_with_the_oracle(sch):
    z_s, z_t = _pair()
    t = torch.tensor([0.05, 0.3, 0.7, 1.0], **F64)
    v = sch.velocity(z_s, z_t, t)
    torch.testing.assert_close(sch.displacement_estimate(sch(t, z_s), z_s, v), z_t)
    assert sch.supports_displacement()


def test_ve_has_no_displacement_estimate():
    assert not VESchedule().supports_displacement()
