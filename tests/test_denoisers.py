"""DiffKD's denoiser, noise adapter and linear auto-encoder."""
import pytest
import torch

from fmkt_plugin.models.denoisers import DiffKDDenoiser, LinearAutoEncoder, NoiseAdapter
from fmkt_plugin.registry import MODELS


def test_denoiser_shapes_and_time_dependence():
    torch.manual_seed(0)
    model = MODELS.build(dict(_scope_='mmrazor', type='DiffKDDenoiser', channels=16)).eval()
    x = torch.randn(2, 16, 5, 5)
    a, b = model(x, torch.tensor([10, 10])), model(x, torch.tensor([900, 900]))
    assert a.shape == x.shape
    assert (a - b).abs().max() > 1e-4  # the timestep matters
    vec = DiffKDDenoiser(8, kernel_size=1).eval()
    assert vec(torch.randn(3, 8), 5).shape == (3, 8)
    with pytest.raises(ValueError, match='expected'):
        model(torch.randn(2, 8, 5, 5), 3)
    with pytest.raises(ValueError, match='kernel_size'):
        DiffKDDenoiser(8, kernel_size=5)


def test_noise_adapter_is_a_per_sample_weight():
    torch.manual_seed(0)
    adapter = NoiseAdapter(16)
    x = torch.randn(4, 16, 5, 5) * torch.tensor([0.1, 1.0, 3.0, 10.0])[:, None, None, None]
    gamma = adapter(x)
    assert gamma.shape == (4, )
    assert torch.all((gamma > 0) & (gamma < 1))
    assert gamma.std() > 0  # adaptive: differs between samples
    gamma.sum().backward()
    assert adapter.pred.weight.grad.abs().sum() > 0
    assert NoiseAdapter(8, kernel_size=1)(torch.randn(3, 8)).shape == (3, )


def test_linear_autoencoder():
    ae = LinearAutoEncoder(16, 4)
    hidden, recon = ae(torch.randn(2, 16, 3, 3))
    assert hidden.shape == (2, 4, 3, 3) and recon.shape == (2, 16, 3, 3)
    with pytest.raises(ValueError, match='latent_channels'):
        LinearAutoEncoder(16, 0)
