"""tools/to_fmkt.py: a logit-level or FPN-level distillation config, MMRazor's or ours, becomes an
FM-KT config that inherits it; every convertible MMRazor 1.0 config converts and trains a step."""
import os.path as osp
import re

import pytest
from helpers import config_path, flatten, load_tool
from test_mmrazor_configs import CONFIGS, ROOT, _run

from fmkt_plugin.apis.to_fmkt import write_fmkt_config

_NOT_ONE_TEACHER = r"model\.type '\w+' is not a single-teacher distiller"
_NO_LOSS = r'no logit-level or FPN-level distillation loss to convert \('
#: MMRazor configs that cannot become FM-KT, and why (the refusal names it)
NOT_CONVERTIBLE = {
    'mmcls/abloss/abloss_pretrain_backbone_resnet50_resnet18_8xb32_in1k.py':
        _NO_LOSS + r'loss_s4: its student input goes through a connector',
    'mmcls/byot/byot_resnet18_8xb16_cifar100.py': _NOT_ONE_TEACHER,
    'mmcls/crd/crd_neck_r50_r18_8xb16_cifar10.py': _NO_LOSS + 'loss_crd',
    'mmcls/dafl/dafl_logits_resnet34_resnet18_8xb256_cifar10.py': _NOT_ONE_TEACHER,
    'mmcls/deit/deit-base_regnety160_pt-16xb64_in1k.py':
        _NO_LOSS + r"loss_distill: its student input is 'head\.layers\.head_dist'",
    'mmcls/dfad/dfad_logits_resnet34_resnet18_8xb32_cifar10.py': _NOT_ONE_TEACHER,
    'mmcls/factor_transfer/factor-transfer_backbone_resnet50_resnet18_8xb16_cifar10_pretrain.py':
        _NO_LOSS,
    'mmcls/factor_transfer/factor-transfer_backbone_resnet50_resnet18_8xb16_cifar10_train.py':
        _NO_LOSS,
    'mmcls/ofd/ofd_backbone_resnet50_resnet18_8xb16_cifar10.py': _NOT_ONE_TEACHER,
    'mmcls/rkd/rkd_neck_resnet34_resnet18_8xb32_in1k.py':
        _NO_LOSS + r"loss_dw: its student input is 'neck\.gap'",
    'mmcls/zskt/zskt_backbone_logits_resnet34_resnet18_8xb16_cifar10.py': _NOT_ONE_TEACHER,
    'mmdet/fbkd/fbkd_fpn_faster-rcnn_r101_faster-rcnn_r50_1x_coco.py':
        _NO_LOSS + 'loss_s0: its student input goes through a connector',
    'mmdet/mgd/mgd_fpn_retina_x101_retina_r50_2x_coco.py':
        _NO_LOSS + 'loss_mgd_fpn0: its student input goes through a connector',
}
#: converted, but the FM-KT config cannot train here, and why
CONVERTED_REFUSED = {
    # the student's FPN level i is paired with the teacher's level i + 1 (half its size): PKD
    # resizes, FMKTLoss needs the flow's estimates and the target of one shape
    'mmdet/pkd/pkd_fpn_mask-rcnn_swin_retina_r50_2x_coco.py':
        r'FMKTLoss: preds \(8, 2, 256, 16, 16\) must be \(N, \) \+ target shape',
    # the teacher's deformable convolution, as for the original (mmcv-lite)
    'mmdet/pkd/pkd_fpn_reppoints_x101-dcn_reppoints_r50_2x_coco.py':
        r"mmcv op 'deform_conv_forward' is not available",
}


@pytest.mark.slow
@pytest.mark.parametrize('rel', CONFIGS)
def test_mmrazor_config_converts_to_fmkt_and_trains(rel, tmp_path):
    out = str(tmp_path / 'fmkt.py')
    if rel in NOT_CONVERTIBLE:
        with pytest.raises(ValueError, match=NOT_CONVERTIBLE[rel]):
            write_fmkt_config(f'mmrazor::distill/{rel}', out)
        assert not osp.exists(out)
        return
    diff = write_fmkt_config(f'mmrazor::distill/{rel}', out)
    assert any(line.startswith('+') and 'FMKTLoss' in line for line in diff)
    if rel in CONVERTED_REFUSED:
        with pytest.raises(Exception, match=CONVERTED_REFUSED[rel]):
            _run(rel, path=out)
        return
    cfg, log_vars, _ = _run(rel, path=out)
    assert cfg.model.type in ('FMKTDistill', 'FMKTFpnDistill')
    assert any(k.startswith('distill.') for k in log_vars), sorted(log_vars)


def test_the_lists_cover_only_mmrazor_configs():
    assert set(NOT_CONVERTIBLE) | set(CONVERTED_REFUSED) <= set(CONFIGS)
    assert osp.isdir(ROOT)


def test_our_kd_baseline_converts_to_our_fmkt_config_but_for_the_metric(tmp_path):
    """The converted KD config builds the same student, flow head and algorithm as
    configs/fmkt/resnet34_res18_in1k.py; it differs in the metric (the KD config's own KL, tau 1,
    weight 3, against the shipped DIST, weight 2) and in two names (loss and recorder)."""
    from fmkt_plugin.apis import load_config
    out = str(tmp_path / 'kd_fmkt.py')
    write_fmkt_config(config_path('baselines/kd_resnet34_resnet18_in1k.py'), out)
    ours = load_config(out).model.to_dict()
    shipped = load_config(config_path('fmkt/resnet34_res18_in1k.py')).model.to_dict()
    # the names: loss_kl / recorder fc in the conversion, loss_fmkt / steps in the shipped one
    d = ours['distiller']
    d['distill_losses'] = {'loss_fmkt': d['distill_losses'].pop('loss_kl')}
    mapping = d['loss_forward_mappings'].pop('loss_kl')
    mapping['preds']['recorder'] = 'steps'
    d['loss_forward_mappings'] = {'loss_fmkt': mapping}
    d['student_recorders'] = {'steps': d['student_recorders'].pop('fc')}
    a, b = flatten(ours), flatten(shipped)
    differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    assert differ == [
        'distiller.distill_losses.loss_fmkt.loss_weight',
        'distiller.distill_losses.loss_fmkt.metric.inter_loss_weight',
        'distiller.distill_losses.loss_fmkt.metric.intra_loss_weight',
        'distiller.distill_losses.loss_fmkt.metric.loss_weight',
        'distiller.distill_losses.loss_fmkt.metric.type',
    ], differ
    assert (a['distiller.distill_losses.loss_fmkt.metric.type'],
            b['distiller.distill_losses.loss_fmkt.metric.type']) == ('KLDivergence', 'DISTLoss')


@pytest.mark.parametrize('argv, match', [
    (['x.py', '-o', 'out.txt'], r'--out out\.txt: the config must be a \.py file'),
    (['x.py', '-o', 'o.py', '--num-steps', '0'], '--num-steps must be at least 1'),
])
def test_command_line_is_checked(argv, match, capsys):
    with pytest.raises(SystemExit):
        load_tool('to_fmkt').parse_args(argv)
    assert re.search(match, capsys.readouterr().err)


def test_tool_writes_the_config_and_prints_the_diff(tmp_path, capsys):
    out = str(tmp_path / 'dist_fmkt.py')
    diff = load_tool('to_fmkt').main([config_path('baselines/dist_resnet34_resnet18_in1k.py'),
                                      '-o', out, '--num-steps', '4'])
    printed = capsys.readouterr().out
    assert f'wrote {out}' in printed and "+ 'type': 'FMKTDistill'}" in printed
    assert diff and osp.isfile(out)
    from fmkt_plugin.apis import load_config
    head = load_config(out).model.architecture.head
    assert head.type == 'FlowMatchingClsHead' and head.flow.num_steps == 4
    with open(out) as f:  # it inherits the original, by a path relative to itself
        assert osp.relpath(config_path('baselines/dist_resnet34_resnet18_in1k.py'),
                           str(tmp_path)) in f.read()
