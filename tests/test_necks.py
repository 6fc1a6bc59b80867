import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmpretrain.structures import DataSample
from mmrazor.models.task_modules import ModuleOutputsRecorder

from fmkt_plugin.models.connectors import TeacherProjector, flow_num_steps
from fmkt_plugin.models.losses import FMKTLoss
from fmkt_plugin.models.necks import FlowMatchingNeck
from fmkt_plugin.registry import MODELS as RAZOR_MODELS

C = 6
FLOW = dict(num_steps=[1, 2, 4], meta_encoder=dict(type='conv', variant='mobile',
                                                   time_embed_dim=8, zero_init_out=False))


def _pbuild(cfg):
    """Build in the mmpretrain scope, whatever scope earlier tests left as default."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return PRETRAIN_MODELS.build(cfg)


def test_builds_in_both_registries_with_default_flow():
    for registry, scope in ((PRETRAIN_MODELS, 'mmpretrain'), (RAZOR_MODELS, 'mmrazor')):
        with DefaultScope.overwrite_default_scope(scope):
            neck = registry.build(dict(type='FlowMatchingNeck', in_channels=C))
        assert isinstance(neck, FlowMatchingNeck)
        assert neck.flow.num_steps_choices == (1, 2, 4, 8, 16)


def test_tuple_in_tuple_out_last_replaced():
    torch.manual_seed(0)
    neck = FlowMatchingNeck(C, flow=FLOW)
    early, last = torch.randn(2, 3, 8, 8), torch.randn(2, C, 4, 4)
    with flow_num_steps(neck, 2):
        outs = neck((early, last))
        want = neck.flow(last).transported
    assert isinstance(outs, tuple) and len(outs) == 2
    assert outs[0] is early
    assert outs[1].shape == last.shape
    torch.testing.assert_close(outs[1], want)
    assert not torch.allclose(outs[1], last)
    assert isinstance(neck(last), tuple)


def test_pooling_replaces_global_average_pooling():
    torch.manual_seed(0)
    neck = FlowMatchingNeck(C, flow=FLOW, with_pool=True)
    neck.eval()
    early, last = torch.randn(2, 3, 8, 8), torch.randn(2, C, 4, 4)
    outs = neck((early, last))
    assert outs[0].shape == (2, 3) and outs[1].shape == (2, C)
    torch.testing.assert_close(outs[1], neck.flow(last).transported.mean(dim=(2, 3)))
    torch.testing.assert_close(outs[0], early.mean(dim=(2, 3)))


def test_recorder_on_flow_and_feature_loss():
    torch.manual_seed(0)
    model = torch.nn.Module()
    model.neck = FlowMatchingNeck(C, flow=FLOW)
    recorder = ModuleOutputsRecorder('neck.flow')
    recorder.initialize(model)
    x = torch.randn(2, C, 4, 4, requires_grad=True)
    with recorder:
        model.neck((x, ))
    steps = recorder.get_record_data(data_idx=0)  # (estimates, transported): the estimates
    assert steps.shape[0] in (1, 2, 4) and steps.shape[1:] == (2, C, 4, 4)
    # Feature-level target: projection of a larger teacher map.
    proj = TeacherProjector(in_channels=10, out_channels=C, stride=2)
    loss = FMKTLoss(dict(type='PKDLoss'))(steps, proj(torch.randn(2, 10, 8, 8)))
    loss.backward()
    assert torch.isfinite(loss) and x.grad.abs().sum() > 0
    assert proj.conv.weight.grad.abs().sum() > 0


def test_bad_config():
    with pytest.raises(ValueError, match='flow.in_channels'):
        FlowMatchingNeck(C, flow=dict(in_channels=C + 2))
    with pytest.raises(ValueError, match='num_steps'):
        FlowMatchingNeck(C, flow=dict(num_steps=[0, 1]))


def test_inside_image_classifier():
    torch.manual_seed(0)
    model = _pbuild(dict(
        type='ImageClassifier',
        backbone=dict(type='LeNet5'),
        neck=dict(type='FlowMatchingNeck', in_channels=120, with_pool=True,
                  flow=dict(num_steps=2, meta_encoder=dict(type='mlp', hidden_channels=16))),
        head=dict(type='LinearClsHead', num_classes=3, in_channels=120)))
    inputs = torch.randn(2, 1, 40, 40)  # LeNet5 gives a 3x3 map at 40 px
    assert model.extract_feat(inputs)[0].shape == (2, 120)
    losses = model.loss(inputs, [DataSample().set_gt_label(i) for i in (0, 2)])
    assert torch.isfinite(losses['loss'])
