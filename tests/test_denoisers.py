"""DiffKD's denoiser, noise adapter and linear auto-encoder."""
import pytest
import torch

from fmkt_plugin.registry import MODELS
from fmkt_plugin.rivals.diffkd import DiffKDDenoiser, LinearAutoEncoder, NoiseAdapter


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


def test_autoencoder_latent_is_batch_normalised_and_decoder_is_linear():
    torch.manual_seed(0)
    ae = LinearAutoEncoder(6, 12)
    x = torch.randn(5, 6, 3, 3) * 4 + 1
    hidden, recon = ae(x)
    # training mode: every latent channel has batch mean 0 and variance 1 (BN weight 1, bias 0)
    assert torch.allclose(hidden.mean(dim=(0, 2, 3)), torch.zeros(12), atol=1e-5)
    assert torch.allclose(hidden.var(dim=(0, 2, 3), unbiased=False), torch.ones(12), atol=1e-3)
    want = torch.nn.functional.conv2d(hidden, ae.decoder.weight, ae.decoder.bias)
    assert torch.allclose(recon, want, atol=1e-6)


@pytest.mark.parametrize('build, match', [
    (lambda: DiffKDDenoiser(True), 'DiffKDDenoiser: channels'),
    (lambda: DiffKDDenoiser(8, kernel_size=2), 'DiffKDDenoiser: kernel_size'),
    (lambda: DiffKDDenoiser(8, time_embed_dim=0), 'DiffKDDenoiser: time_embed_dim'),
    (lambda: DiffKDDenoiser(2), 'ResidualBottleneck: reduction'),  # waist of 2 // 4 channels
    (lambda: NoiseAdapter(0), 'NoiseAdapter: channels'),
    (lambda: NoiseAdapter(8, kernel_size='3'), 'NoiseAdapter: kernel_size'),
    (lambda: LinearAutoEncoder(8.0, 4), 'LinearAutoEncoder: channels'),
])
def test_bad_settings_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()
