"""DiffKD connector and loss."""
import pytest
import torch

from fmkt_plugin.models.connectors import DiffKDConnector
from fmkt_plugin.models.losses import DiffKDLoss
from fmkt_plugin.registry import MODELS


def test_connector_denoises_into_teacher_space_and_trains_everything():
    torch.manual_seed(0)
    conn = MODELS.build(dict(_scope_='mmrazor', type='DiffKDConnector', student_channels=8,
                             teacher_channels=32, ae_channels=16, num_steps=3))
    assert conn.timesteps().tolist() == [2 * 166, 166, 0]  # 3 steps of a 6-step grid
    s, t = torch.randn(4, 8, 5, 5), torch.randn(4, 32, 5, 5)
    out = conn.forward_pair(s, t)
    assert out.denoised.shape == (4, 16, 5, 5)  # the auto-encoder's latent
    assert out.target.shape == (4, 16, 5, 5) and not out.target.requires_grad
    assert out.gamma.shape == (4, ) and torch.all((out.gamma > 0) & (out.gamma < 1))
    (out.denoised.pow(2).mean() + out.diffusion_loss + out.ae_loss).backward()
    for name in ('trans', 'denoiser', 'noise_adapter', 'proj', 'ae'):
        grads = [p.grad for p in getattr(conn, name).parameters() if p.grad is not None]
        assert grads and sum(g.abs().sum() for g in grads) > 0, name
    # as a plain MMRazor connector: student feature in, denoised feature out
    assert conn(s).shape == (4, 16, 5, 5)


def test_connector_vectors_and_bad_inputs():
    conn = DiffKDConnector(10, 10, kernel_size=1, num_steps=2)
    out = conn.forward_pair(torch.randn(3, 10), torch.randn(3, 10))
    assert out.denoised.shape == (3, 10) and out.target.shape == (3, 10) and out.ae_loss is None
    with pytest.raises(ValueError, match='teacher_channels'):
        conn.forward_pair(torch.randn(3, 10), torch.randn(3, 12))
    with pytest.raises(ValueError, match='num_steps'):
        DiffKDConnector(8, 8, num_steps=0)
    with pytest.raises(ValueError, match='denoise_span'):
        DiffKDConnector(8, 8, denoise_span=0)


def test_loss_is_the_weighted_sum_of_its_parts():
    torch.manual_seed(0)
    loss = DiffKDLoss(dict(student_channels=8, teacher_channels=16, ae_channels=8, num_steps=2),
                      loss_weight=2.0, diffusion_weight=0.5, ae_weight=3.0)
    total = loss(torch.randn(2, 8, 4, 4), torch.randn(2, 16, 4, 4))
    p = loss.parts()
    assert set(p) == {'kd', 'diffusion', 'ae', 'gamma'}
    want = 2.0 * p['kd'] + 0.5 * p['diffusion'] + 3.0 * p['ae']
    assert torch.isfinite(total) and torch.allclose(total.detach(), want)
    with pytest.raises(ValueError, match='diffusion_weight'):
        DiffKDLoss(dict(student_channels=8, teacher_channels=8), diffusion_weight=-1)
