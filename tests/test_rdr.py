"""RDR (our reading): re-parameterisable branches, the progressive loss, the algorithm, the fold."""
import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import config_path
from torch import nn

from fmkt_plugin.apis.config import load_config
from fmkt_plugin.apis.rdr_export import rdr_plain_student_state
from fmkt_plugin.models.losses import RDRLoss
from fmkt_plugin.models.reparam import RepConvBranches
from fmkt_plugin.registry import MODELS


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


def test_rdr_loss_targets_move_to_the_teacher():
    loss = RDRLoss(schedule='rectified')
    anchor, teacher = torch.zeros(2, 3), torch.ones(2, 3)
    preds = torch.stack([anchor, anchor, anchor, anchor])
    goals = loss.targets(preds, teacher)
    # t_k = 1 - k/4: the targets are 1/4, 1/2, 3/4 and all of the way to the teacher
    assert [g.mean().item() for g in goals] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert loss(torch.stack([teacher] * 4), teacher).item() == 0.0
    assert loss(preds, teacher).item() > 0
    with pytest.raises(ValueError, match='preds'):
        loss(anchor, teacher)


@pytest.fixture(scope='module')
def rdr_model():
    cfg = load_config(config_path('baselines/rdr_res34_res18_in1k.py'))
    cfg.model.teacher_ckpt = None
    cfg.model.allow_random_teacher = True
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model


def test_rdr_algorithm_grafts_and_trains(rdr_model):
    cfg, model = rdr_model
    reps = model.rep_modules()
    assert list(reps) == ['backbone.layer4.1.conv2']
    assert isinstance(model.student.backbone.layer4[1].bn2, nn.Identity)
    rep = reps['backbone.layer4.1.conv2']
    assert all(b.bn.weight.abs().sum() == 0 for b in rep.branches[1:])  # extra branches at 0
    from mmpretrain.structures import DataSample
    data = dict(inputs=(torch.rand(2, 3, 32, 32) * 255).to(torch.uint8),
                data_samples=[DataSample().set_gt_label(i) for i in (0, 1)])
    model.train()
    batch = model.data_preprocessor(data, True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    assert torch.isfinite(losses['distill.loss_rdr']) and losses['distill.loss_rdr'] > 0
    losses['distill.loss_rdr'].backward()
    assert rep.branches[1].bn.weight.grad.abs().sum() > 0  # the extra branches learn


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
    cfg = load_config(config_path('baselines/rdr_res34_res18_in1k.py'))
    cfg.model.teacher_ckpt = None
    cfg.model.allow_random_teacher = True
    cfg.model.rep.conv = 'backbone.layer9.conv'
    with pytest.raises(ValueError, match='model.rep.conv'):
        MODELS.build(cfg.model)
