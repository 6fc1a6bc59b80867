"""DDIM schedule (linear betas, eps prediction) and the DDIM sampler."""
import pytest
import torch

from fmkt_plugin.rivals.diffkd import DDIMSchedule, DDIMSolver


def test_schedule_values():
    sched = DDIMSchedule()
    ab = sched.alphas_cumprod
    assert ab.shape == (1000, )
    assert torch.all(ab[1:] < ab[:-1])  # noise grows with t
    assert ab[0].item() == pytest.approx(1 - 1e-4)
    # the DDPM linear schedule ends at alpha_bar ~ 4e-5 (almost pure noise)
    assert 3e-5 < ab[-1].item() < 5e-5
    assert sched.alpha_bar(-1).item() == 1.0  # the clean end
    c = sched(torch.tensor([0, 500, 999]))
    assert torch.allclose(c.alpha**2 + c.sigma**2, torch.ones(3, dtype=torch.float64))


def test_add_noise_and_predict_x0_invert():
    sched = DDIMSchedule()
    x0, eps = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    t = torch.tensor([0, 400, 999])
    xt = sched.add_noise(x0, eps, t)
    assert torch.allclose(sched.predict_x0(xt, eps, t), x0, atol=1e-3)  # t=999: 1/sqrt(4e-5)
    assert torch.allclose(sched.predict_x0(xt[:2], eps[:2], t[:2]), x0[:2], atol=1e-5)


def test_timestep_grid_of_diffkd():
    # 5 steps over the less noisy half of a 10-step grid of 1000 timesteps
    assert DDIMSchedule().timesteps(5, stride=100).tolist() == [400, 300, 200, 100, 0]
    assert DDIMSchedule().timesteps(4).tolist() == [750, 500, 250, 0]
    with pytest.raises(ValueError, match='stride'):
        DDIMSchedule().timesteps(5, stride=300)


@pytest.mark.parametrize('grid', [[400, 300, 200, 100, 0], [999, 500, 10], [0]])
def test_ddim_with_the_true_eps_recovers_x0(grid):
    torch.manual_seed(0)
    sched, solver = DDIMSchedule(), DDIMSolver()
    x0, eps = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 3, 4, 4,
                                                                     dtype=torch.float64)
    x_start = sched.add_noise(x0, eps, grid[0])

    def oracle(x, t):  # the noise that x holds at timestep t, given the true x0
        c = sched(t, like=x)
        return (x - c.alpha * x0) / c.sigma

    out = solver(oracle, x_start, sched, grid)
    assert torch.allclose(out.sample, x0, atol=1e-10)
    assert out.trajectory.shape == (len(grid) + 1, ) + x0.shape
    assert out.x0_estimates.shape == (len(grid), ) + x0.shape
    # every state of the trajectory lies on the forward process of (x0, eps)
    for state, t in zip(out.trajectory[1:-1], grid[1:]):
        assert torch.allclose(state, sched.add_noise(x0, eps, t), atol=1e-10)


def test_ddim_with_a_wrong_model_misses_x0():
    sched = DDIMSchedule()
    x0, eps = torch.randn(2, 3), torch.randn(2, 3)
    out = DDIMSolver()(lambda x, t: torch.zeros_like(x), sched.add_noise(x0, eps, 400), sched,
                       [400, 200, 0])
    assert (out.sample - x0).abs().max() > 0.1


def test_ddim_gradients_reach_model_and_start():
    sched = DDIMSchedule()
    model = torch.nn.Linear(4, 4)
    x = torch.randn(2, 4, requires_grad=True)
    out = DDIMSolver()(lambda h, t: model(h), x, sched, [300, 100, 0])
    out.sample.pow(2).sum().backward()
    assert x.grad.abs().sum() > 0 and model.weight.grad.abs().sum() > 0


def test_bad_inputs():
    with pytest.raises(ValueError, match='num_train_timesteps'):
        DDIMSchedule(num_train_timesteps=1)
    with pytest.raises(ValueError, match='beta_start'):
        DDIMSchedule(beta_start=0.5, beta_end=0.1)
    sched = DDIMSchedule(num_train_timesteps=100)
    with pytest.raises(ValueError, match='timesteps must lie'):
        sched.alpha_bar(torch.tensor([100]))
    with pytest.raises(ValueError, match='integers'):
        sched.alpha_bar(torch.tensor([0.5]))
    with pytest.raises(ValueError, match='strictly decreasing'):
        DDIMSolver()(lambda x, t: x, torch.zeros(1, 2), sched, [10, 20])
