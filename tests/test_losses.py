import pytest
import torch
import torch.nn.functional as F
from mmrazor.models.losses import DISTLoss, DKDLoss, KLDivergence, PKDLoss

from fmkt_plugin.models.connectors import FlowMatchingConnector
from fmkt_plugin.models.losses import FMKTLoss, MSEMetric
from fmkt_plugin.registry import MODELS


def _data(n=3, b=5, c=7, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, b, c, generator=gen), torch.randn(b, c, generator=gen)


def test_mse_is_step_average_times_weight():
    preds, target = _data()
    loss = FMKTLoss('mse', loss_weight=2.5)(preds, target)
    ref = 2.5 * torch.stack([F.mse_loss(p, target) for p in preds]).mean()
    torch.testing.assert_close(loss, ref)
    # Not the same as scoring the ensemble mean (the steps are scored one by one).
    assert not torch.allclose(loss, 2.5 * F.mse_loss(preds.mean(0), target))
    # A single (B, C) prediction counts as one step.
    torch.testing.assert_close(FMKTLoss('mse')(preds[0], target), F.mse_loss(preds[0], target))


@pytest.mark.parametrize('cfg, ref_cls', [
    (dict(type='KLDivergence', tau=2.0), KLDivergence),
    (dict(type='DISTLoss', tau=1.0, inter_loss_weight=1.0, intra_loss_weight=2.0), DISTLoss),
])
def test_registered_metrics(cfg, ref_cls):
    preds, target = _data()
    loss = FMKTLoss(cfg)(preds, target)
    kwargs = {k: v for k, v in cfg.items() if k != 'type'}
    ref = torch.stack([ref_cls(**kwargs)(p, target) for p in preds]).mean()
    torch.testing.assert_close(loss, ref)
    assert torch.isfinite(loss) and loss > 0


def test_dkd_gets_gt_labels():
    preds, target = _data()
    labels = torch.tensor([0, 1, 2, 3, 4])
    fm = FMKTLoss(dict(type='DKDLoss', tau=1.0, beta=2.0))
    assert fm.metric_needs_labels
    loss = fm(preds, target, gt_labels=labels)
    ref = torch.stack([DKDLoss(tau=1.0, beta=2.0)(p, target, labels) for p in preds]).mean()
    torch.testing.assert_close(loss, ref)
    # one-hot / soft scores are reduced to indices
    torch.testing.assert_close(fm(preds, target, gt_labels=F.one_hot(labels, 7).float()), ref)
    with pytest.raises(ValueError, match='gt_labels'):
        fm(preds, target)


def test_pkd_on_feature_maps():
    gen = torch.Generator().manual_seed(0)
    preds, target = torch.randn(2, 3, 4, 5, 5, generator=gen), torch.randn(3, 4, 5, 5,
                                                                           generator=gen)
    loss = FMKTLoss(dict(type='PKDLoss'), loss_weight=6.0)(preds, target)
    ref = 6.0 * (PKDLoss()(preds[0], target) + PKDLoss()(preds[1], target)) / 2
    torch.testing.assert_close(loss, ref)


def test_build_from_registry():
    fm = MODELS.build(dict(_scope_='mmrazor', type='FMKTLoss', metric=dict(type='MSEMetric'),
                           dirac_ratio=0.5))
    assert isinstance(fm.metric, MSEMetric) and fm.dirac_ratio == 0.5


def test_dirac_ratio_pairs():
    target = torch.arange(8.).unsqueeze(1).repeat(1, 3)
    preds = target.unsqueeze(0).repeat(2, 1, 1)
    # All pairs kept: perfect predictions cost nothing.
    assert FMKTLoss('mse', dirac_ratio=1.0)(preds, target) == 0
    torch.manual_seed(0)
    shuffled = FMKTLoss('mse', dirac_ratio=0.0)
    assert shuffled(preds, target) > 0
    shuffled.eval()  # no shuffling outside training
    assert shuffled(preds, target) == 0
    half = FMKTLoss('mse', dirac_ratio=0.5)
    for seed in range(5):
        torch.manual_seed(seed)
        index = half._pairing(8, torch.device('cpu'))
        assert sorted(index.tolist()) == list(range(8))  # a permutation of the batch
        assert (index == torch.arange(8)).sum() >= 4  # at least the kept half stays paired


@pytest.mark.parametrize('kwargs, match', [
    (dict(dirac_ratio=1.5), 'dirac_ratio'),
    (dict(dirac_ratio=-0.1), 'dirac_ratio'),
    (dict(loss_weight=-1.0), 'loss_weight'),
    (dict(metric='nope'), 'metric'),
    (dict(metric=dict(type='VPSchedule')), 'metric'),
    (dict(metric=dict(type='KLDivergence', temperature=4)), 'metric'),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FMKTLoss(**kwargs)


def test_shape_mismatch():
    preds, target = _data()
    with pytest.raises(ValueError, match='preds'):
        FMKTLoss()(preds, target[:, :3])


def test_flow_learns_linear_teacher_map():
    """Train only the meta-encoder: the per-step estimates approach the teacher."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: extra threads only add contention
    try:
        torch.manual_seed(0)
        c, b = 8, 64
        z_s = torch.randn(b, c)
        z_t = z_s @ (torch.randn(c, c) / c**0.5).T
        conn = FlowMatchingConnector(
            in_channels=c, num_steps=4,
            meta_encoder=dict(type='mlp', hidden_channels=32, time_embed_dim=16))
        loss_fn = FMKTLoss('mse')
        opt = torch.optim.Adam(conn.parameters(), lr=1e-2)
        losses = []
        for _ in range(300):
            loss = loss_fn(conn(z_s).estimates, z_t)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.set_num_threads(threads)
    assert losses[-1] < losses[0] / 10, (losses[0], losses[-1])
    # Every step's estimate (not only the average) is close to the teacher.
    conn.eval()
    with torch.no_grad():
        per_step = ((conn(z_s).estimates - z_t)**2).mean(dim=(1, 2))
    assert per_step.max() < losses[0] / 5, per_step


def test_a_whole_flow_result_is_refused_with_a_hint():
    conn = FlowMatchingConnector(4, num_steps=2)
    with pytest.raises(TypeError, match='data_idx=0'):
        FMKTLoss('mse')(conn(torch.randn(3, 4)), torch.randn(3, 4))


@pytest.mark.parametrize('metric', [dict(type='FlowMatchingConnector', in_channels=10),
                                    dict(type='FlowMatchingNeck', in_channels=10)],
                         ids=['connector', 'neck'])
def test_a_component_that_is_no_metric_is_refused_at_build(metric):
    """It built, and failed only at the first forward with a shape or argument error."""
    with pytest.raises(ValueError, match=r'FMKTLoss: metric Flow\w+ is not a loss metric'):
        FMKTLoss(metric=metric)


def test_dirac_count_first_is_the_authors_count_and_leaves_the_rest():
    """'first': the first int((1 - r) B) targets are permuted among themselves; at r = 0.9 and
    B = 16 that is one sample, so nothing moves, where 'random' permutes round-based 2."""
    torch.manual_seed(0)
    first, rand = FMKTLoss('mse', dirac_ratio=0.5, dirac_count='first'), FMKTLoss(
        'mse', dirac_ratio=0.5)
    first.train(), rand.train()
    index = first._pairing(16, torch.device('cpu'))
    assert torch.equal(index[8:], torch.arange(8, 16))
    assert sorted(index[:8].tolist()) == list(range(8))
    authors = FMKTLoss('mse', dirac_ratio=0.9, dirac_count='first').train()
    assert authors._pairing(16, torch.device('cpu')) is None
    ours = FMKTLoss('mse', dirac_ratio=0.9).train()
    moved = sum(int(i != j) for j, i in enumerate(ours._pairing(16, torch.device('cpu'))))
    assert moved in (0, 2)  # 2 chosen; a permutation of 2 may keep them
    assert (16 - round(0.9 * 16), int((1 - 0.9) * 16)) == (2, 1)
    with pytest.raises(ValueError, match="dirac_count must be 'random' or 'first'"):
        FMKTLoss('mse', dirac_count='floor')
    target = torch.randn(16, 4)
    kept = target.clone()
    first(torch.randn(2, 16, 4), target)
    assert torch.equal(target, kept)  # never in place
    # the same draw pairs as the authors' in-place scatter t[:k][randperm(k)] = t[:k].clone()
    torch.manual_seed(5)
    theirs = target.clone()
    theirs[:8][torch.randperm(8)] = theirs[:8].clone()
    torch.manual_seed(5)
    ours = target[first._pairing(16, torch.device('cpu'))]
    assert torch.equal(ours, theirs) and not torch.equal(ours, target)


def test_dist_metric_is_mmrazors_dist_at_its_epsilon_and_takes_the_authors():
    from mmrazor.models.losses import DISTLoss

    from fmkt_plugin.models.losses import DISTMetric
    torch.manual_seed(0)
    s = torch.randn(4, 100, dtype=torch.float64, requires_grad=True)
    t = torch.randn(4, 100, dtype=torch.float64)
    kw = dict(inter_loss_weight=1.0, intra_loss_weight=2.0, tau=2.0, loss_weight=1.5)
    ours = DISTMetric(**kw)(s, t)
    (g_ours, ) = torch.autograd.grad(ours, s)
    theirs = DISTLoss(**kw)(s, t)
    (g_theirs, ) = torch.autograd.grad(theirs, s)
    assert torch.equal(ours, theirs) and torch.equal(g_ours, g_theirs)

    def pearson(a, b, eps):  # the DIST paper's correlation, eps on the product of the norms
        a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)

    p, q = (s / 2).softmax(1), (t / 2).softmax(1)
    want = 1.5 * 4 * ((1 - pearson(p, q, 1e-5).mean()) + 2 * (1 - pearson(p.t(), q.t(), 1e-5)
                                                                 .mean()))
    got = DISTMetric(eps=1e-5, **kw)(s, t)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    assert abs(got.item() - ours.item()) > 1e-6  # the epsilon matters at 4 x 100
    with pytest.raises(ValueError, match='eps'):
        DISTMetric(eps=0)
