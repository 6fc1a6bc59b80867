"""RDR (our reading): re-parameterisable branches, the progressive loss (shuffle sampling and the
target-guided term, checked against their formulas), the algorithm, the fold."""
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from helpers import build_random_teacher_model, config_path, random_teacher_config
from torch import nn

from fmkt_plugin.apis.config import load_config
from fmkt_plugin.registry import MODELS
from fmkt_plugin.rivals.rdr import RDRLoss, RepConvBranches, rdr_plain_student_state


def _randomise(rep: RepConvBranches) -> None:
    with torch.no_grad():
        for b in rep.branches:
            b.conv.weight.normal_(std=0.3)
            b.bn.weight.uniform_(0.5, 1.5)
            b.bn.bias.normal_()
            b.bn.running_mean.normal_()
            b.bn.running_var.uniform_(0.5, 2.0)


def test_branches_start_as_the_replaced_conv():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(4, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.weight.uniform_(0.5, 1.5)
    rep = RepConvBranches.from_conv_bn(conv, bn, kernel_sizes=(3, 1, 1))
    x = torch.randn(2, 4, 5, 5)
    conv.eval(), bn.eval(), rep.eval()
    assert torch.allclose(rep(x), bn(conv(x)), atol=1e-6)


def test_fold_equals_the_branch_sum():
    torch.manual_seed(0)
    rep = RepConvBranches(4, 6, kernel_sizes=(3, 1, 3, 1), stride=2)
    _randomise(rep)
    rep.eval()
    x = torch.randn(2, 4, 9, 9)
    weight, bias = rep.fold()
    assert weight.shape == (6, 4, 3, 3)
    folded = F.conv2d(x.double(), weight, bias, stride=2, padding=1)
    assert torch.allclose(rep(x).double(), folded, atol=1e-5)


def test_partials_are_recorded_in_training():
    rep = RepConvBranches(3, 3, kernel_sizes=(3, 1))
    seen = []
    rep.partials.register_forward_hook(lambda m, i, o: seen.append(o))
    rep.train()
    out = rep(torch.randn(2, 3, 4, 4))
    assert seen[0].shape == (2, 2, 3, 4, 4) and torch.allclose(seen[0][-1], out)


def test_bad_branch_configs():
    with pytest.raises(ValueError, match='odd'):
        RepConvBranches(2, 2, kernel_sizes=(3, 2))
    with pytest.raises(ValueError, match='largest'):
        RepConvBranches(2, 2, kernel_sizes=(1, 3))
    with pytest.raises(ValueError, match='bias-free'):
        RepConvBranches.from_conv_bn(nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2))


def test_fixed_sampling_targets_move_to_the_teacher():
    loss = RDRLoss(schedule='rectified', sampling='fixed')
    anchor, teacher = torch.zeros(2, 3), torch.ones(2, 3)
    preds = torch.stack([anchor, anchor, anchor, anchor])
    goals = loss.targets(preds, teacher)
    # t_k = 1 - k/4: the targets are 1/4, 1/2, 3/4 and all of the way to the teacher
    assert [g.mean().item() for g in goals] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert loss(torch.stack([teacher] * 4), teacher).item() == 0.0
    assert loss(preds, teacher).item() > 0
    with pytest.raises(ValueError, match='preds'):
        loss(anchor, teacher)


def test_shuffle_sampling_gives_every_feature_every_time_equally_often():
    torch.manual_seed(0)
    loss = RDRLoss()  # sampling='shuffle' is the default
    num, batch, draws = 4, 8, 500
    grid = torch.tensor([0.75, 0.5, 0.25, 0.0])
    counts = torch.zeros(num, num)  # (feature k, grid point j)
    first = loss.sample_times(num, batch)
    varied = False
    for _ in range(draws):
        t = loss.sample_times(num, batch)
        assert t.shape == (num, batch)
        # per sample, the K features take the K grid times once each
        assert torch.equal(t.sort(dim=0, descending=True).values,
                           grid[:, None].expand(num, batch))
        counts += (t.unsqueeze(-1) == grid).sum(dim=1)
        varied = varied or not torch.equal(t, first)
    assert varied
    # each (feature, time) pair: 1/K of the draws; the binomial sd is about 27 of 1000
    expected = draws * batch / num
    assert (counts - expected).abs().max() < 6 * math.sqrt(expected * (1 - 1 / num))
    # in particular the full sum meets the teacher (t = 0) only a quarter of the time
    assert abs(counts[-1, -1] / (draws * batch) - 0.25) < 0.03
    fixed = RDRLoss(sampling='fixed').sample_times(num, batch)
    assert torch.equal(fixed, grid[:, None].expand(num, batch))


def _hand_rdr(preds, teacher, times, labels, weight, bias, loss_weight, guide_weight):
    """Path term (rectified) + guide term, written out."""
    anchor = preds[0]
    path = []
    for k in range(preds.shape[0]):
        t = times[k].reshape(-1, 1, 1, 1)
        goal = t * anchor + (1 - t) * teacher
        path.append(((preds[k] - goal)**2).mean())
    guide = []
    for k in range(preds.shape[0]):
        logits = preds[k].clamp(min=0).mean(dim=(2, 3)) @ weight.t() + bias
        logp = logits - logits.exp().sum(dim=1, keepdim=True).log()
        guide.append(-logp[torch.arange(len(labels)), labels].mean())
    path, guide = torch.stack(path).mean(), torch.stack(guide).mean()
    return loss_weight * path + guide_weight * guide, path, guide


def test_path_and_guide_terms_match_their_formulas():
    torch.manual_seed(0)
    num, batch, channels, classes = 3, 4, 5, 7
    preds = torch.randn(num, batch, channels, 2, 2, requires_grad=True)
    teacher = torch.randn(batch, channels, 2, 2)
    labels = torch.tensor([0, 3, 6, 3])
    weight = torch.randn(classes, channels, requires_grad=True)
    bias = torch.randn(classes, requires_grad=True)
    loss = RDRLoss(loss_weight=0.7, guide_weight=0.3)
    torch.manual_seed(3)
    times = loss.sample_times(num, batch)
    torch.manual_seed(3)
    total = loss(preds, teacher, gt_labels=labels, fc_weight=weight, fc_bias=bias)
    want, path, guide = _hand_rdr(preds.detach(), teacher, times, labels, weight.detach(),
                                  bias.detach(), 0.7, 0.3)
    assert torch.allclose(total.detach(), want, rtol=1e-5)
    assert torch.allclose(loss.parts()['path'], path, rtol=1e-5)
    assert torch.allclose(loss.parts()['guide'], guide, rtol=1e-5)
    total.backward()
    # the guide trains the features, not the classifier (a fixed probe)
    assert preds.grad.abs().sum() > 0
    assert weight.grad is None and bias.grad is None
    # soft labels (mixup / cutmix) give the same value as their one-hot form
    soft = torch.nn.functional.one_hot(labels, classes).float()
    torch.manual_seed(3)
    again = loss(preds, teacher, gt_labels=soft, fc_weight=weight, fc_bias=bias)
    assert torch.allclose(again.detach(), want, rtol=1e-5)


def test_guide_term_needs_its_inputs_and_settings_are_checked():
    preds, teacher = torch.randn(2, 3, 4, 2, 2), torch.randn(3, 4, 2, 2)
    with pytest.raises(ValueError, match='needs gt_labels and fc_weight'):
        RDRLoss(guide_weight=1.0)(preds, teacher)
    with pytest.raises(ValueError, match='fc_weight'):
        RDRLoss(guide_weight=1.0)(preds, teacher, gt_labels=torch.zeros(3, dtype=torch.long),
                                  fc_weight=torch.randn(10, 5))
    plain = RDRLoss()  # the class default: no guide term, no extra inputs needed
    assert torch.isfinite(plain(preds, teacher)) and set(plain.parts()) == {'path'}
    for kwargs, field in ((dict(sampling='random'), 'sampling'),
                          (dict(guide_weight=-1), 'guide_weight'),
                          (dict(loss_weight=True), 'loss_weight'),
                          (dict(guide_act='gelu'), 'guide_act'),
                          (dict(metric=dict(type='KLDivergence', tau=-1)), 'metric.tau')):
        with pytest.raises(ValueError, match=f'RDRLoss: {field}'):
            RDRLoss(**kwargs)


@pytest.fixture(scope='module')
def rdr_model():
    return build_random_teacher_model('baselines/rdr_res34_res18_in1k.py')


def test_rdr_config_is_our_reading_with_shuffle_and_guide():
    cfg = load_config(config_path('baselines/rdr_res34_res18_in1k.py'))
    loss = cfg.model.distiller.distill_losses.loss_rdr
    assert (loss.sampling, loss.guide_weight, loss.guide_act) == ('shuffle', 1.0, 'relu')
    mapping = cfg.model.distiller.loss_forward_mappings.loss_rdr
    assert set(mapping) == {'preds', 'target', 'gt_labels', 'fc_weight', 'fc_bias'}


def test_rdr_algorithm_grafts_and_trains(rdr_model):
    cfg, model = rdr_model
    reps = model.rep_modules()
    assert list(reps) == ['backbone.layer4.1.conv2']
    assert isinstance(model.student.backbone.layer4[1].bn2, nn.Identity)
    rep = reps['backbone.layer4.1.conv2']
    assert all(b.bn.weight.abs().sum() == 0 for b in rep.branches[1:])  # extra branches at 0
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.structures import DataSample
    data = dict(inputs=(torch.rand(2, 3, 32, 32) * 255).to(torch.uint8),
                data_samples=[DataSample().set_gt_label(i) for i in (0, 1)])
    model.train()
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    assert torch.isfinite(losses['distill.loss_rdr']) and losses['distill.loss_rdr'] > 0
    # at init every partial sum is the plain student's feature, so the guide term (the partial
    # features through ReLU, pooling and the detached head.fc, CE with the labels) is exactly
    # the student's own cross-entropy: labels, classifier and activation are wired right
    assert torch.allclose(losses['distill.rdr_guide'], losses['student.loss'], rtol=1e-5)
    assert losses['distill.rdr_path'] > 0
    losses['distill.loss_rdr'].backward()
    assert rep.branches[1].bn.weight.grad.abs().sum() > 0  # the extra branches learn
    assert model.student.head.fc.weight.grad is None  # the guide does not train the head
    # a real train step of the algorithm built from the config
    model.zero_grad()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = rep.branches[1].bn.weight.detach().clone()
    log = model.train_step(data, wrapper)
    for key in ('distill.loss_rdr', 'distill.rdr_path', 'distill.rdr_guide', 'distill.loss_kl'):
        assert math.isfinite(float(log[key])), key
    assert not torch.equal(before, rep.branches[1].bn.weight)


def test_folded_plain_student_equals_the_rdr_student(rdr_model):
    cfg, _ = rdr_model
    torch.manual_seed(1)
    student = MODELS.build(cfg.model).student  # fresh: no recorded activations to copy
    for rep in (m for m in student.modules() if isinstance(m, RepConvBranches)):
        _randomise(rep)
    student.eval()
    plain = MODELS.build(copy.deepcopy(cfg.model.architecture)).eval()
    plain.load_state_dict(rdr_plain_student_state(student), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want, got = student(x, mode='tensor'), plain(x, mode='tensor')
    assert (got - want).abs().max() <= 1e-5 * max(1.0, want.abs().max().item())
    count = sum(p.numel() for p in plain.parameters())
    assert count == sum(p.numel() for p in MODELS.build(
        copy.deepcopy(cfg.model.architecture)).parameters())
    assert count < sum(p.numel() for p in student.parameters())
    assert [type(m) for m in plain.modules()] == [type(m) for m in MODELS.build(
        copy.deepcopy(cfg.model.architecture)).modules()]


def test_bad_rep_config():
    cfg = random_teacher_config('baselines/rdr_res34_res18_in1k.py')
    cfg.model.rep.conv = 'backbone.layer9.conv'
    with pytest.raises(ValueError, match='model.rep.conv'):
        MODELS.build(cfg.model)
