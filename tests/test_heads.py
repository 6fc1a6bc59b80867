import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope
from mmpretrain.models.losses import CrossEntropyLoss as PretrainCE
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmpretrain.structures import DataSample
from mmrazor.models.task_modules import ModuleOutputsRecorder

from fmkt_plugin.models.heads import FlowMatchingClsHead, fold_flow_head
from fmkt_plugin.registry import MODELS as RAZOR_MODELS

K, C, B = 5, 6, 4


def _pbuild(cfg):
    """Build in the mmpretrain scope, whatever scope earlier tests left as default."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return PRETRAIN_MODELS.build(cfg)


def _cfg(**kwargs):
    cfg = dict(type='FlowMatchingClsHead', num_classes=K, in_channels=C,
               flow=dict(num_steps=3, meta_encoder=dict(type='mlp', time_embed_dim=8,
                                                        zero_init_out=False)))
    cfg.update(kwargs)
    return cfg


def _samples(labels=(0, 1, 2, 3)):
    return [DataSample().set_gt_label(label) for label in labels]


def _feats(seed=0):
    return (torch.randn(B, C, generator=torch.Generator().manual_seed(seed)), )


@pytest.mark.parametrize('registry', [PRETRAIN_MODELS, RAZOR_MODELS], ids=['mmpretrain', 'mmrazor'])
@pytest.mark.parametrize('scope', ['mmpretrain', 'mmrazor'])
def test_builds_in_both_registries(registry, scope):
    with DefaultScope.overwrite_default_scope(scope):
        head = registry.build(_cfg())
    assert isinstance(head, FlowMatchingClsHead)
    # mmrazor also registers a (distillation) CrossEntropyLoss: we must get mmpretrain's.
    assert isinstance(head.loss_module, PretrainCE)
    assert head.flow.in_channels == C and head.flow.num_steps_choices == (3, )


def test_forward_is_mean_of_step_logits():
    torch.manual_seed(0)
    head = _pbuild(_cfg())
    feats = _feats()
    steps = head.step_logits(feats)
    assert steps.shape == (3, B, K)
    out = head(feats)
    assert out.shape == (B, K)
    torch.testing.assert_close(out, steps.mean(0))
    assert not torch.allclose(steps[0], steps[-1])  # the steps really differ


def test_loss_entries_and_values():
    torch.manual_seed(0)
    head = _pbuild(_cfg(ce_weight=0.5, cal_acc=True))
    feats, samples = _feats(), _samples()
    losses = head.loss(feats, samples)
    assert set(losses) == {'loss_ce', 'accuracy_top-1'}
    labels = torch.tensor([0, 1, 2, 3])
    steps = head.step_logits(feats)
    ref = 0.5 * torch.stack([F.cross_entropy(s, labels) for s in steps]).mean()
    torch.testing.assert_close(losses['loss_ce'], ref)
    losses['loss_ce'].backward()
    assert head.step_head.fc.weight.grad.abs().sum() > 0
    assert head.flow.meta_encoder.out.weight.grad.abs().sum() > 0


def test_loss_with_soft_targets():
    head = _pbuild(_cfg(loss=dict(type='CrossEntropyLoss', use_soft=True)))
    samples = [DataSample().set_gt_score(torch.softmax(torch.randn(K), 0)) for _ in range(B)]
    losses = head.loss(_feats(), samples)
    assert torch.isfinite(losses['loss_ce'])


def test_predict_is_softmax_of_ensemble():
    torch.manual_seed(0)
    head = _pbuild(_cfg())
    head.eval()
    feats = _feats()
    preds = head.predict(feats)
    with torch.no_grad():
        ref = torch.softmax(head.step_logits(feats).mean(0), dim=1)
    scores = torch.stack([p.pred_score for p in preds])
    torch.testing.assert_close(scores, ref)
    assert [int(p.pred_label) for p in preds] == ref.argmax(1).tolist()


def test_recorder_on_step_head_gets_per_step_logits():
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.head = _pbuild(_cfg())
    recorder = ModuleOutputsRecorder('head.step_head')
    recorder.initialize(model)
    feats = _feats()
    with recorder:
        model.head.loss(feats, _samples())
    record = recorder.get_record_data()
    assert record.shape == (3, B, K)
    torch.testing.assert_close(record, model.head.step_logits(feats))


def test_theta_head():
    torch.manual_seed(0)
    head = _pbuild(_cfg(theta=dict(tau=2.0, kd_weight=3.0)))
    x = torch.randn(B, C, requires_grad=True)
    losses = head.loss((x, ), _samples())
    assert set(losses) == {'loss_ce', 'loss_theta_kd', 'loss_theta_ce'}
    assert all(torch.isfinite(v) for v in losses.values())
    theta_logits = head.theta_fc(x.detach()[None])[0]
    ensemble = head.step_logits((x.detach(), )).mean(0)
    ref_kd = 3.0 * 4.0 * F.kl_div(F.log_softmax(theta_logits / 2, 1),
                                  F.softmax(ensemble / 2, 1), reduction='batchmean')
    torch.testing.assert_close(losses['loss_theta_kd'], ref_kd)
    # The theta losses train only theta_fc: the ensemble is a detached target and the student
    # feature is detached by default.
    (losses['loss_theta_kd'] + losses['loss_theta_ce']).backward()
    assert head.theta_fc.fc.weight.grad.abs().sum() > 0
    assert x.grad is None
    assert all(p.grad is None for p in head.flow.parameters())
    assert head.step_head.fc.weight.grad is None
    # Deployment with theta: eval forward is the plain linear head.
    head = _pbuild(_cfg(theta=dict(use_for_inference=True)))
    head.eval()
    torch.testing.assert_close(head(_feats()), head.theta_fc(_feats()[0][None])[0])
    assert _pbuild(_cfg()).theta_fc is None


@pytest.mark.parametrize('kwargs, match', [
    (dict(flow=dict(in_channels=C + 1)), 'flow.in_channels'),
    (dict(flow=dict(num_steps=0)), 'num_steps'),
    (dict(flow=dict(num_steps=[])), 'num_steps'),
    (dict(flow=dict(schedule='edm')), 'schedule'),
    (dict(flow=dict(meta_encoder=dict(type='unet'))), 'meta_encoder'),
    (dict(flow=dict(type='TeacherProjector')), 'flow'),
    (dict(ce_weight=-1.0), 'ce_weight'),
    (dict(num_classes=0), 'num_classes'),
    (dict(theta=dict(temperature=4)), 'theta'),
    (dict(theta=dict(tau=0.0)), 'theta.tau'),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _pbuild(_cfg(**kwargs))


def test_init_weights_keeps_zero_velocity():
    head = _pbuild(dict(type='FlowMatchingClsHead', num_classes=K, in_channels=C,
                                      init_cfg=dict(type='Normal', layer='Linear', std=1.0)))
    head.init_weights()
    # RF + zero velocity: every step's estimate is the student feature.
    feats = _feats()
    torch.testing.assert_close(head(feats), head.step_head(feats[0][None])[0])
    assert head.step_head.fc.weight.std() < 0.1  # the step head keeps its own small init


def test_inside_image_classifier():
    torch.manual_seed(0)
    model = _pbuild(dict(
        type='ImageClassifier',
        backbone=dict(type='LeNet5'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='FlowMatchingClsHead', num_classes=K, in_channels=120,
                  flow=dict(num_steps=2, meta_encoder=dict(type='mlp', hidden_channels=16)))))
    inputs = torch.randn(2, 1, 32, 32)
    losses = model.loss(inputs, _samples((1, 3)))
    assert torch.isfinite(losses['loss_ce'])
    model.eval()
    preds = model.predict(inputs)
    assert preds[0].pred_score.shape == (K, )


@pytest.mark.parametrize('schedule', ['rectified', 'vp', 've'])
def test_affine_flow_folds_into_one_linear_layer(schedule):
    torch.manual_seed(0)
    head = _pbuild(_cfg(flow=dict(num_steps=4, test_num_steps=5, schedule=schedule,
                                  meta_encoder=dict(type='linear', time_embed_dim=8,
                                                    zero_init_out=False))))
    head.loss(_feats(), _samples())  # a training forward first: the head holds activations
    head.eval()
    weight, bias = fold_flow_head(head)
    assert weight.shape == (K, C) and bias.shape == (K, )
    x = torch.randn(32, C) * 2
    with torch.no_grad():
        torch.testing.assert_close(x @ weight.t() + bias, head((x, )), atol=1e-5, rtol=0)
        # other N: another linear layer, still exact
        w3, b3 = fold_flow_head(head, num_steps=3)
        torch.testing.assert_close(x @ w3.t() + b3,
                                   head.step_head(head.flow(x, num_steps=3).estimates).mean(0),
                                   atol=1e-5, rtol=0)
    assert not torch.allclose(w3, weight)


def test_non_affine_flow_is_not_folded():
    head = _pbuild(_cfg())  # MLP meta-encoder (ReLU, LayerNorm)
    with pytest.raises(ValueError, match='MLPMetaEncoder is not affine'):
        fold_flow_head(head)
    # a class that claims affinity but is not: the numerical check refuses it
    head.flow.meta_encoder.affine = True
    with pytest.raises(ValueError, match='not affine in its input'):
        fold_flow_head(head)
