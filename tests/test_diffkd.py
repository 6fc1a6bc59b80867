"""DiffKD connector, loss and algorithm, checked against the authors' formulas.

The reference values are computed here with plain torch ops from the formulas of the authors'
DiffKD (feature branch with the linear auto-encoder, logit branch with KL at tau 1, the
projection 1x1 conv + BN, the DDIM chain over timesteps 400 .. 0, the noise-prediction loss);
only the parameters are read from our modules. A tiny linear noise model stands in for the
denoiser body (covered by test_denoisers.py) so that the whole chain can be written out.
"""
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import build_random_teacher_model, config_path
from torch import nn

from fmkt_plugin.apis.config import load_config
from fmkt_plugin.registry import MODELS
from fmkt_plugin.rivals.diffkd import DiffKDConnector, DiffKDLoss

GRID = [400, 300, 200, 100, 0]  # the authors' 5 steps: the less noisy half of a 10-step grid


class _LinearEps(nn.Module):
    """``eps(x, t) = conv1x1(x) + 1e-3 * t``: a noise model simple enough to write out."""

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x, t):
        return self.conv(x) + 1e-3 * t.to(x.dtype).reshape(-1, 1, 1, 1)


# ---- the reference, in plain torch ops --------------------------------------------------------

def _conv(x, conv, padding=0):
    return F.conv2d(x, conv.weight, conv.bias, padding=padding)


def _bn_train(x, bn):
    """Training-mode BatchNorm: batch statistics (biased variance), affine."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + bn.eps) * bn.weight.reshape(1, -1, 1, 1) + \
        bn.bias.reshape(1, -1, 1, 1)


def _adapter(x, adapter, kernel_size):
    """gamma = softmax(linear(pool(body(x))))[:, 0]."""
    b = adapter.body
    if kernel_size == 3:
        blk = b[0].block
        h = F.relu(_bn_train(_conv(x, blk[0]), blk[1]))
        h = F.relu(_bn_train(_conv(h, blk[3], padding=1), blk[4]))
        h = x + _bn_train(_conv(h, blk[6]), blk[7])
    else:
        h = F.relu(_bn_train(_conv(x, b[0]), b[1]))
        h = _bn_train(_conv(h, b[3]), b[4])
    h = h.mean(dim=(2, 3))
    return F.linear(h, adapter.pred.weight, adapter.pred.bias).softmax(dim=1)[:, 0]


def _alpha_bar():
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def _eps(x, t, model):
    return _conv(x, model.conv) + 1e-3 * t.to(x.dtype).reshape(-1, 1, 1, 1)


def _reference(conn, student, teacher, seed):
    """The authors' DiffKD pass: (denoised, target, diffusion loss, AE loss or None)."""
    ab = _alpha_bar()
    if conn.ae is not None:
        hidden = _bn_train(_conv(teacher, conn.ae.encoder[0]), conn.ae.encoder[1])
        ae_loss = ((_conv(hidden, conn.ae.decoder) - teacher)**2).mean()
        target = hidden
    else:
        target, ae_loss = teacher, None
    x = _conv(student, conn.trans)
    gamma = _adapter(x, conn.noise_adapter, conn.kernel_size)[:, None, None, None]
    torch.manual_seed(seed)
    x = gamma * x + (1 - gamma) * torch.randn(x.shape)
    for t, t_prev in zip(GRID, GRID[1:] + [-1]):
        a_t = ab[t].item()
        a_prev = ab[t_prev].item() if t_prev >= 0 else 1.0
        eps = _eps(x, torch.full((x.shape[0], ), t), conn.denoiser)
        x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
        x = math.sqrt(a_prev) * x0 + math.sqrt(1 - a_prev) * eps
    denoised = _bn_train(_conv(x, conn.proj[0]), conn.proj[1])
    noise = torch.randn(target.shape)
    t = torch.randint(0, 1000, (target.shape[0], ))
    a = ab[t].float().reshape(-1, 1, 1, 1)
    noisy = a.sqrt() * target + (1 - a).sqrt() * noise
    diffusion = ((_eps(noisy, t, conn.denoiser) - noise)**2).mean()
    return denoised, target, diffusion, ae_loss


def _randomise(module):
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.BatchNorm2d, )):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(std=0.3)


# ---- tests ------------------------------------------------------------------------------------

def test_feature_branch_with_autoencoder_matches_the_authors_formulas():
    torch.manual_seed(0)
    conn = DiffKDConnector(6, 8, kernel_size=3, num_steps=5, ae_channels=16,
                           denoiser=dict(type=_LinearEps))
    _randomise(conn)
    assert conn.timesteps().tolist() == GRID
    loss = DiffKDLoss(conn, metric='mse')
    student, teacher = torch.randn(4, 6, 3, 3), torch.randn(4, 8, 3, 3)
    torch.manual_seed(11)
    total = loss(student, teacher)
    parts = loss.parts()

    denoised, target, diffusion, ae_loss = _reference(conn, student, teacher, seed=11)
    kd = ((denoised - target)**2).mean()
    assert torch.allclose(parts['kd'], kd, rtol=1e-4, atol=1e-6)
    torch.manual_seed(11)
    out = conn.forward_pair(student, teacher)
    assert torch.allclose(out.denoised, denoised, atol=1e-4)
    assert torch.allclose(out.target, target, atol=1e-5)
    assert torch.allclose(parts['diffusion'], diffusion, rtol=1e-4, atol=1e-6)
    assert torch.allclose(parts['ae'], ae_loss, rtol=1e-5, atol=1e-7)
    # the authors' total: MSE + diffusion + reconstruction, unit weights
    assert torch.allclose(total.detach(), kd + diffusion + ae_loss, rtol=1e-4, atol=1e-6)
    # the latent is BN-normalised: per-channel batch mean = BN bias, variance = weight^2
    bn = conn.ae.encoder[1]
    assert torch.allclose(target.mean(dim=(0, 2, 3)), bn.bias, atol=1e-5)
    assert torch.allclose(target.var(dim=(0, 2, 3), unbiased=False), bn.weight**2, atol=1e-4)


def test_feature_branch_gradients_go_where_the_authors_send_them():
    torch.manual_seed(0)
    loss = DiffKDLoss(dict(student_channels=6, teacher_channels=8, ae_channels=16,
                           num_steps=2))
    student = torch.randn(4, 6, 3, 3, requires_grad=True)
    loss(student, torch.randn(4, 8, 3, 3)).backward()
    conn = loss.connector
    assert student.grad.abs().sum() > 0
    for name in ('trans', 'denoiser', 'noise_adapter', 'proj', 'ae'):
        grads = [p.grad for p in getattr(conn, name).parameters() if p.grad is not None]
        assert grads and sum(g.abs().sum() for g in grads) > 0, name
    # the KD term reaches neither the auto-encoder nor the teacher (their target is detached):
    # with only the KD term, the AE gets no gradient
    conn.zero_grad()
    out = conn.forward_pair(torch.randn(4, 6, 3, 3), torch.randn(4, 8, 3, 3))
    F.mse_loss(out.denoised, out.target).backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in conn.ae.parameters())


def test_logit_branch_matches_the_authors_formulas():
    torch.manual_seed(1)
    conn = DiffKDConnector(5, 5, kernel_size=1, num_steps=5, denoiser=dict(type=_LinearEps))
    _randomise(conn)
    loss = DiffKDLoss(conn, metric=dict(type='KLDivergence', tau=1, loss_weight=1.0))
    logits_s, logits_t = torch.randn(4, 5) * 3, torch.randn(4, 5) * 3
    torch.manual_seed(5)
    total = loss(logits_s, logits_t)
    parts = loss.parts()
    assert 'ae' not in parts

    denoised, target, diffusion, _ = _reference(conn, logits_s[:, :, None, None],
                                                logits_t[:, :, None, None], seed=5)
    denoised, target = denoised.flatten(1), target.flatten(1)
    p_t = target.softmax(dim=1)
    kl = (p_t * (p_t.log() - denoised.log_softmax(dim=1))).sum() / 4  # tau 1, batch mean
    assert torch.allclose(parts['kd'], kl, rtol=1e-4, atol=1e-6)
    assert torch.allclose(parts['diffusion'], diffusion, rtol=1e-4, atol=1e-6)
    assert torch.allclose(total.detach(), kl + diffusion, rtol=1e-4, atol=1e-6)
    # KL on the *denoised* student logits, not on the raw ones
    raw = (p_t * (p_t.log() - logits_s.log_softmax(dim=1))).sum() / 4
    assert not torch.allclose(parts['kd'], raw, rtol=1e-3)


def test_projection_is_conv_and_batchnorm():
    torch.manual_seed(0)
    conn = DiffKDConnector(4, 8, num_steps=2)
    assert isinstance(conn.proj[0], nn.Conv2d) and isinstance(conn.proj[1], nn.BatchNorm2d)
    keys = set(conn.state_dict())
    assert {'proj.0.weight', 'proj.0.bias', 'proj.1.weight', 'proj.1.running_var'} <= keys
    out = conn(torch.randn(6, 4, 3, 3) * 5 + 2)
    # training mode: the BN normalises every channel of the denoised feature over the batch
    assert torch.allclose(out.mean(dim=(0, 2, 3)), torch.zeros(8), atol=1e-5)
    assert torch.allclose(out.var(dim=(0, 2, 3), unbiased=False), torch.ones(8), atol=1e-3)
    # the first release's projection (conv alone) keeps its old keys
    plain = DiffKDConnector(4, 8, num_steps=2, proj_norm=False)
    assert isinstance(plain.proj, nn.Conv2d)
    assert {'proj.weight', 'proj.bias'} <= set(plain.state_dict())


def test_connector_as_mmrazor_connector_and_vectors():
    conn = MODELS.build(dict(_scope_='mmrazor', type='DiffKDConnector', student_channels=8,
                             teacher_channels=32, ae_channels=16, num_steps=3))
    assert conn.timesteps().tolist() == [2 * 166, 166, 0]  # 3 steps of a 6-step grid
    assert conn(torch.randn(4, 8, 5, 5)).shape == (4, 16, 5, 5)  # the auto-encoder's latent
    vec = DiffKDConnector(10, 10, kernel_size=1, num_steps=2)
    out = vec.forward_pair(torch.randn(3, 10), torch.randn(3, 10))
    assert out.denoised.shape == (3, 10) and out.target.shape == (3, 10) and out.ae_loss is None
    assert out.gamma.shape == (3, ) and torch.all((out.gamma > 0) & (out.gamma < 1))


@pytest.mark.parametrize('kwargs, field', [
    (dict(num_steps=0), 'num_steps'),
    (dict(num_steps=True), 'num_steps'),
    (dict(denoise_span=0), 'denoise_span'),
    (dict(denoise_span=1.5), 'denoise_span'),
    (dict(kernel_size=2), 'kernel_size'),
    (dict(ae_channels=0), 'ae_channels'),
    (dict(student_channels='8'), 'student_channels'),
])
def test_connector_refuses_bad_settings(kwargs, field):
    args = dict(student_channels=8, teacher_channels=8)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f'DiffKDConnector: {field}'):
        DiffKDConnector(**args)


def test_connector_refuses_mismatched_features():
    conn = DiffKDConnector(10, 10, kernel_size=1, num_steps=2)
    with pytest.raises(ValueError, match='teacher_channels'):
        conn.forward_pair(torch.randn(3, 10), torch.randn(3, 12))
    with pytest.raises(ValueError, match='batch or spatial size'):
        conn.forward_pair(torch.randn(3, 10), torch.randn(2, 10))


def test_loss_is_the_weighted_sum_of_its_parts_and_checks_its_weights():
    torch.manual_seed(0)
    loss = DiffKDLoss(dict(student_channels=8, teacher_channels=16, ae_channels=8, num_steps=2),
                      loss_weight=2.0, diffusion_weight=0.5, ae_weight=3.0)
    total = loss(torch.randn(2, 8, 4, 4), torch.randn(2, 16, 4, 4))
    p = loss.parts()
    assert set(p) == {'kd', 'diffusion', 'ae', 'gamma'}
    want = 2.0 * p['kd'] + 0.5 * p['diffusion'] + 3.0 * p['ae']
    assert torch.isfinite(total) and torch.allclose(total.detach(), want)
    conn = dict(student_channels=8, teacher_channels=8)
    with pytest.raises(ValueError, match='diffusion_weight'):
        DiffKDLoss(conn, diffusion_weight=-1)
    with pytest.raises(ValueError, match='ae_weight'):
        DiffKDLoss(conn, ae_weight=float('nan'))
    with pytest.raises(ValueError, match='metric.tau'):
        DiffKDLoss(conn, metric=dict(type='KLDivergence', tau=0))


# ---- the shipped config ----------------------------------------------------------------------

def test_config_is_the_authors_resnet34_resnet18_setup():
    cfg = load_config(config_path('baselines/diffkd_res34_res18_in1k.py'))
    losses = cfg.model.distiller.distill_losses
    assert set(losses) == {'loss_diffkd', 'loss_diffkd_logits'}  # no KD on the raw logits
    feat, logit = losses.loss_diffkd, losses.loss_diffkd_logits
    assert feat.metric == 'mse' and logit.metric.type == 'KLDivergence'
    assert logit.metric.tau == 1 and logit.metric.loss_weight == 1
    for loss in (feat, logit):
        assert loss.loss_weight == loss.diffusion_weight == 1
    assert feat.ae_weight == 1
    fc, lc = feat.connector, logit.connector
    assert (fc.kernel_size, fc.ae_channels, fc.num_steps, fc.proj_norm) == (3, 1024, 5, True)
    assert (lc.kernel_size, lc.ae_channels, lc.num_steps, lc.proj_norm) == (1, None, 5, True)
    assert lc.student_channels == lc.teacher_channels == cfg.model.architecture.head.num_classes
    assert cfg.model.architecture.head.loss.loss_weight == 1.0
    # their recipe: 8 x 32 images at lr 0.1, no weight decay on 1-D parameters
    assert cfg.train_dataloader.batch_size == 32 and cfg.optim_wrapper.optimizer.lr == 0.1
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0.0
    assert cfg.optim_wrapper.paramwise_cfg.bias_decay_mult == 0.0
    assert cfg.auto_scale_lr.base_batch_size == 256


def test_config_model_trains_both_branches():
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.structures import DataSample
    cfg, model = build_random_teacher_model('baselines/diffkd_res34_res18_in1k.py')
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    losses = model.distiller.distill_losses
    watched = {
        'feature denoiser': losses.loss_diffkd.connector.denoiser,
        'feature auto-encoder': losses.loss_diffkd.connector.ae,
        'feature projection BN': losses.loss_diffkd.connector.proj[1],
        'logit denoiser': losses.loss_diffkd_logits.connector.denoiser,
        'logit noise adapter': losses.loss_diffkd_logits.connector.noise_adapter,
        'student': model.student.backbone.layer4,
    }
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in watched.items()}
    teacher = [p.detach().clone() for p in model.teacher.parameters()]
    # 64 px: layer4 maps of 2x2 (at 32 px they would be 1x1, degenerate for the BN layers)
    data = dict(inputs=(torch.rand(4, 3, 64, 64) * 255).to(torch.uint8),
                data_samples=[DataSample().set_gt_label(i) for i in (0, 1, 2, 3)])
    model.train()
    log = model.train_step(data, wrapper)
    for key in ('distill.loss_diffkd', 'distill.loss_diffkd_logits', 'distill.diffkd_kd',
                'distill.diffkd_diffusion', 'distill.diffkd_ae', 'distill.diffkd_logits_kd',
                'distill.diffkd_logits_diffusion', 'student.loss'):
        assert key in log and math.isfinite(float(log[key])), key
    assert 'distill.loss_kl' not in log
    assert 'distill.diffkd_logits_ae' not in log
    for name, module in watched.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[name], module.parameters())), \
            name
    assert all(torch.equal(a, b) for a, b in zip(teacher, model.teacher.parameters()))
