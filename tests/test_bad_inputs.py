"""Bad input fails fast, with a message naming the field or file, and writes nothing half-done."""
import glob
import json
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch
from helpers import (
    REPO,
    assert_trained_stably,
    config_path,
    load_tool,
    tiny_cls_options,
    write_child_config,
)

from fmkt_plugin.registry import MODELS

CONNECTOR = dict(type='FlowMatchingConnector', in_channels=8)


@pytest.mark.parametrize('cfg, match', [
    (dict(CONNECTOR, schedule='nope'), 'schedule.type'),
    (dict(CONNECTOR, meta_encoder=dict(type='NoSuchEncoder')), 'meta_encoder.type'),
    (dict(CONNECTOR, num_steps=0), 'num_steps'),
    (dict(CONNECTOR, num_steps=-3), 'num_steps'),
    (dict(CONNECTOR, num_steps=[]), 'num_steps'),
    (dict(CONNECTOR, test_num_steps=0), 'test_num_steps'),
    (dict(type='FMKTLoss', metric='nope'), 'metric.type'),
    (dict(type='FMKTLoss', dirac_ratio=1.5), 'dirac_ratio'),
    (dict(type='FlowMatchingClsHead', num_classes=10, in_channels=8,
          flow=dict(in_channels=16)), 'in_channels'),
    # negative or non-finite weights and temperatures, inside the metric and the head
    (dict(type='FMKTLoss', metric=dict(type='DISTLoss', loss_weight=-2)),
     r'FMKTLoss: metric.loss_weight must be a non-negative finite number, got -2'),
    (dict(type='FMKTLoss', metric=dict(type='KLDivergence', tau=-4)),
     r'FMKTLoss: metric.tau must be a positive finite number, got -4'),
    (dict(type='FMKTLoss', metric=dict(type='KLDivergence', loss_weight=float('inf'))),
     r'FMKTLoss: metric.loss_weight must be a non-negative finite number, got inf'),
    (dict(type='FMKTLoss', loss_weight=float('nan')),
     r'FMKTLoss: loss_weight must be a non-negative finite number, got nan'),
    (dict(type='FMKTLoss', metric=dict(type='MSEMetric', loss_weight=-1)),
     r'MSEMetric: loss_weight must be a non-negative finite number, got -1'),
    (dict(type='FlowMatchingClsHead', num_classes=10, in_channels=8,
          loss=dict(type='CrossEntropyLoss', loss_weight=-1)),
     r'FlowMatchingClsHead: loss.loss_weight must be a non-negative finite number, got -1'),
    (dict(type='FlowMatchingClsHead', num_classes=10, in_channels=8, ce_weight=float('nan')),
     r'FlowMatchingClsHead: ce_weight must be a non-negative finite number, got nan'),
    (dict(type='FlowMatchingClsHead', num_classes=10, in_channels=8, ce_weight=float('inf')),
     r'FlowMatchingClsHead: ce_weight must be a non-negative finite number, got inf'),
    (dict(type='FlowMatchingClsHead', num_classes=10, in_channels=8, theta=dict(tau=-4)),
     r'FlowMatchingClsHead: theta.tau must be a positive finite number, got -4'),
], ids=['schedule', 'encoder', 'N=0', 'N<0', 'empty-N-set', 'test-N', 'metric', 'dirac',
        'channel-mismatch', 'dist-weight<0', 'kl-tau<0', 'kl-weight-inf', 'fmkt-weight-nan',
        'mse-weight<0', 'head-ce-weight<0', 'head-ce_weight-nan', 'head-ce_weight-inf',
        'theta-tau<0'])
def test_bad_component_config_raises_at_build(cfg, match):
    with pytest.raises(ValueError, match=match):
        # _scope_: build in mmrazor whatever default scope earlier tests left current
        MODELS.build(dict(cfg, _scope_='mmrazor'))


@pytest.mark.parametrize('cfg, match', [
    pytest.param(dict(CONNECTOR, num_steps=10**9), r'num_steps must be an int in \[1, 1024\]',
                 id='N=1e9'),
    pytest.param(dict(CONNECTOR, test_num_steps=10**9),
                 r'test_num_steps must be an int in \[1, 1024\]',
                 id='test-N=1e9'),
    pytest.param(dict(CONNECTOR, num_steps=np.int64(8)), None,
                 id='N=np.int64'),
    pytest.param(dict(CONNECTOR, test_num_steps=np.int64(4)), None,
                 id='test-N=np.int64'),
    pytest.param(dict(CONNECTOR, schedule=dict(type='VESchedule', s_min='0.1')), 's_min',
                 id='ve-s_min-str'),
    pytest.param(dict(CONNECTOR, meta_encoder=dict(type='MLPMetaEncoder', hidden_channels=-4)),
                 'hidden_channels', id='hidden<0'),
    pytest.param(dict(CONNECTOR, solver='VPSchedule'), 'solver',
                 id='schedule-as-solver'),
])
def test_flow_component_bad_values(cfg, match):
    """Flow components: a clear ValueError naming the field, or (match None) accepted."""
    if match is None:  # an integral numpy scalar is a valid step count
        connector = MODELS.build(dict(cfg, _scope_='mmrazor'))
        assert connector.num_steps_choices == (8, )
        assert connector.test_num_steps == int(cfg.get('test_num_steps', 8))
        steps = (*connector.num_steps_choices, connector.test_num_steps)
        assert all(type(n) is int for n in steps)
        return
    with pytest.raises(ValueError, match=match):
        MODELS.build(dict(cfg, _scope_='mmrazor'))


def _fmkt_model_cfg(teacher_ckpt):
    from fmkt_plugin.apis import load_config
    cfg = load_config(config_path('fmkt/resnet34_res18_in1k.py'))
    cfg.model.teacher_ckpt = teacher_ckpt
    return cfg.model


def _build(model_cfg):
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(model_cfg)


def test_missing_teacher_checkpoint_is_named(tmp_path):
    missing = str(tmp_path / 'no_teacher.pth')
    with pytest.raises(FileNotFoundError, match='teacher_ckpt.*no_teacher.pth'):
        _build(_fmkt_model_cfg(missing))


@pytest.mark.slow
def test_teacher_checkpoint_of_another_architecture_is_an_error(teacher_ckpts):
    # a ResNet-50 checkpoint for the ResNet-34 teacher: MMRazor would only warn
    with pytest.raises(RuntimeError, match='does not match the teacher architecture'):
        _build(_fmkt_model_cfg(teacher_ckpts['resnet50_8xb32_in1k']))


@pytest.mark.slow
@pytest.mark.parametrize('method', ['kd', 'dkd', 'dist'])
def test_baseline_teacher_checkpoint_of_another_architecture_is_an_error(method, teacher_ckpts):
    """The baselines are MMRazor's SingleTeacherDistill, which loaded the teacher non-strictly
    (compat Fix 13): a ResNet-50 checkpoint for the ResNet-34 teacher named, not just logged."""
    from fmkt_plugin.apis import load_config
    cfg = load_config(config_path(f'baselines/{method}_resnet34_resnet18_in1k.py'))
    cfg.model.teacher_ckpt = teacher_ckpts['resnet50_8xb32_in1k']
    with pytest.raises(RuntimeError, match=r'teacher_ckpt: .*resnet50_8xb32_in1k\.pth does not '
                       r'match the teacher architecture \(missing or unexpected keys\)'):
        _build(cfg.model)
    cfg.model.teacher_ckpt = teacher_ckpts['resnet34_8xb32_in1k']  # the right one loads
    assert _build(cfg.model).teacher is not None


def test_a_text_file_as_teacher_checkpoint_is_named(tmp_path):
    """torch.load of a text file said only 'KeyError: 101'."""
    text = tmp_path / 'teacher.txt'
    text.write_text('https://example.org/resnet34.pth\n')
    with pytest.raises(ValueError, match=r'teacher_ckpt: .*teacher\.txt is not a PyTorch '
                       r'checkpoint \(neither torch\.save.s zip archive nor a pickle'):
        _build(_fmkt_model_cfg(str(text)))


@pytest.mark.slow
def test_resume_from_another_models_checkpoint_is_named(tiny_imagenet, teacher_ckpts, tmp_path):
    """A KD checkpoint under the FM-KT config failed inside mmengine on the optimizer's parameter
    groups; now the missing keys (the flow head's) are named first."""
    options = tiny_cls_options(tiny_imagenet)
    options['model.teacher_ckpt'] = teacher_ckpts['resnet34_8xb32_in1k']
    kd = write_child_config(tmp_path, config_path('baselines/kd_resnet34_resnet18_in1k.py'),
                            options, name='kd.py')
    fmkt = write_child_config(tmp_path, config_path('fmkt/resnet34_res18_in1k.py'), options,
                              name='fmkt.py')
    train = load_tool('train')
    assert_trained_stably(train.main([kd, '--work-dir', str(tmp_path / 'kd')]))
    ckpt = str(tmp_path / 'kd' / 'epoch_1.pth')
    with pytest.raises(ValueError, match=r'--resume: .*epoch_1\.pth.*missing: '
                       r'architecture\.head\.flow'):
        train.build_runner([fmkt, '--work-dir', str(tmp_path / 'fmkt'), '--resume', ckpt])


def test_logit_distillation_between_heads_of_other_classes_is_named(tiny_imagenet, teacher_ckpts,
                                                                   tmp_path):
    """KD with a 4-class student and a 1000-class teacher failed at the first step with a bare
    size mismatch inside the loss."""
    options = tiny_cls_options(tiny_imagenet)
    options['model.teacher_ckpt'] = teacher_ckpts['resnet34_8xb32_in1k']
    options['model.architecture.head.num_classes'] = 4
    cfg = write_child_config(tmp_path, config_path('baselines/kd_resnet34_resnet18_in1k.py'),
                             options)
    with pytest.raises(ValueError, match=r"model\.architecture\.head\.num_classes=4, but the "
                       r"teacher's head has 1000 classes"):
        load_tool('train').build_runner([cfg, '--work-dir', str(tmp_path / 'w')])


def test_truncated_teacher_checkpoint_is_named(teacher_ckpts, tmp_path):
    data = open(teacher_ckpts['resnet34_8xb32_in1k'], 'rb').read()
    broken = tmp_path / 'truncated.pth'
    broken.write_bytes(data[:len(data) // 3])
    with pytest.raises(RuntimeError, match='teacher_ckpt: cannot load .*truncated.pth'):
        _build(_fmkt_model_cfg(str(broken)))


class _Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_code_executing_teacher_checkpoint_is_refused(tmp_path):
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': _Exploit()}, evil)
    with pytest.raises(RuntimeError, match='teacher_ckpt: cannot load .*evil.pth'):
        _build(_fmkt_model_cfg(str(evil)))


def test_student_without_flow_is_rejected():
    from fmkt_plugin.apis import load_config
    cfg = load_config(config_path('baselines/kd_resnet34_resnet18_in1k.py'))
    cfg.model.type = 'FMKTDistill'
    cfg.model.teacher_ckpt = None
    with pytest.raises(ValueError, match='model.architecture'):
        _build(cfg.model)


def test_non_finite_loss_stops_before_the_optimizer_steps():
    from fmkt_plugin.models.algorithms.checks import check_finite_losses
    with pytest.raises(FloatingPointError, match='distill.loss_fmkt=nan'):
        check_finite_losses({'loss': torch.tensor(1.0),
                             'distill.loss_fmkt': torch.tensor(float('nan'))},
                            torch.tensor(float('nan')))
    check_finite_losses({'loss': torch.tensor(1.0)}, torch.tensor(1.0))  # finite: no error
    # several bad losses (one combined check, then each named), and a non-tensor value
    with pytest.raises(FloatingPointError, match=r'\(loss_a=inf, loss_b=nan\)'):
        check_finite_losses({'loss_a': torch.tensor(float('inf')), 'loss_b': float('nan'),
                             'loss_c': 2.0, 'acc': torch.tensor(float('nan'))},
                            torch.tensor(1.0))
    with pytest.raises(FloatingPointError, match=r'\(loss=inf\)'):  # only the total
        check_finite_losses({'loss_a': torch.tensor(1.0)}, torch.tensor(float('inf')))


@pytest.fixture(scope='module')
def fmkt_model(teacher_ckpts):
    """The shipped ResNet-34 -> ResNet-18 FM-KT model, with a locally written teacher."""
    model = _build(_fmkt_model_cfg(teacher_ckpts['resnet34_8xb32_in1k']))
    model.init_weights()
    return model


def _samples(labels):
    from mmpretrain.structures import DataSample
    return [DataSample().set_gt_label(int(i)) for i in labels]


def test_nan_input_stops_training_and_changes_nothing(fmkt_model):
    """NaN pixels: refused before the forward pass, so no weight and no BatchNorm statistic
    moves (they did: 40 running-stat buffers became NaN with the first bad batch)."""
    from mmengine.optim import OptimWrapper
    model = fmkt_model
    model.train()  # mmrazor's train() returns None
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    inputs = torch.rand(2, 3, 32, 32) * 255
    inputs[1, 0, 3, 4] = float('nan')
    with pytest.raises(FloatingPointError, match=r'inputs: NaN/inf values in sample\(s\) \[1\] .*'
                       'optimizer was not stepped'):
        model.train_step({'inputs': inputs, 'data_samples': _samples([0, 1])}, optim)
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats included


def test_non_finite_image_in_eval_raises(fmkt_model):
    """In evaluation an inf image must not silently get a label (it got label 0)."""
    model = fmkt_model
    model.eval()
    inputs = torch.rand(3, 3, 32, 32) * 255
    inputs[2] = float('inf')
    with pytest.raises(FloatingPointError, match=r'sample\(s\) \[2\] .*refusing to predict'):
        model.val_step({'inputs': inputs, 'data_samples': _samples([0, 1, 2])})
    with pytest.raises(FloatingPointError, match='refusing to predict'):
        model.test_step({'inputs': [img for img in inputs], 'data_samples': _samples([0, 1, 2])})
    preds = model.val_step({'inputs': inputs[:2], 'data_samples': _samples([0, 1])})
    assert len(preds) == 2  # finite images still evaluate


def test_one_channel_batch_is_named(fmkt_model):
    """A 1-channel tensor batch against the 3-channel student (the data preprocessor would
    broadcast it against its 3-channel mean)."""
    from mmengine.optim import OptimWrapper
    optim = OptimWrapper(torch.optim.SGD(fmkt_model.parameters(), lr=0.1))
    fmkt_model.train()
    with pytest.raises(ValueError, match=r"inputs: sample 0 has 1 channels .*first "
                       r"convolution takes 3"):
        fmkt_model.train_step(
            {'inputs': torch.rand(2, 1, 32, 32), 'data_samples': _samples([0, 1])}, optim)


def test_label_outside_num_classes_is_named(fmkt_model):
    from mmengine.optim import OptimWrapper
    optim = OptimWrapper(torch.optim.SGD(fmkt_model.parameters(), lr=0.1))
    fmkt_model.train()
    with pytest.raises(ValueError, match=r'data_samples\[1\]: label 1000 is outside \[0, 1000\) '
                       r'\(model.architecture.head.num_classes = 1000\)'):
        fmkt_model.train_step(
            {'inputs': torch.rand(2, 3, 32, 32), 'data_samples': _samples([3, 1000])}, optim)
    with pytest.raises(ValueError, match='label -1 is outside'):
        fmkt_model.train_step(
            {'inputs': torch.rand(2, 3, 32, 32), 'data_samples': _samples([-1, 2])}, optim)


@pytest.mark.parametrize('ckpt', [None, ''])
def test_random_teacher_is_an_error(ckpt):
    with pytest.raises(ValueError, match=r"model.teacher_ckpt: .* gives the teacher no trained "
                       r"weights.*allow_random_teacher=True"):
        _build(_fmkt_model_cfg(ckpt))


def test_random_teacher_allowed_explicitly_or_by_pretrained_init_cfg(teacher_ckpts):
    cfg = _fmkt_model_cfg(None)
    cfg.allow_random_teacher = True
    assert _build(cfg).teacher_ckpt is None
    # a teacher that loads its own weights (Pretrained init_cfg) needs no teacher_ckpt
    cfg = _fmkt_model_cfg(None)
    cfg.teacher = dict(
        _scope_='mmpretrain', type='ImageClassifier', backbone=dict(type='ResNet', depth=34),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=1000, in_channels=512),
        init_cfg=dict(type='Pretrained', checkpoint=teacher_ckpts['resnet34_8xb32_in1k']))
    model = _build(cfg)
    model.init_weights()
    ref = torch.load(teacher_ckpts['resnet34_8xb32_in1k'])['state_dict']
    assert torch.equal(model.teacher.state_dict()['backbone.conv1.weight'],
                       ref['backbone.conv1.weight'])


def test_teacher_checkpoint_with_a_list_state_dict_is_named(tmp_path):
    bad = tmp_path / 'list_state.pth'
    torch.save({'state_dict': [torch.zeros(1)]}, bad)
    with pytest.raises(ValueError, match=r'teacher_ckpt: .*list_state.pth: "state_dict" is a '
                       'list, expected a dict of tensors'):
        _build(_fmkt_model_cfg(str(bad)))


def test_resume_from_a_file_that_is_no_training_checkpoint_is_named(teacher_ckpts, tmp_path):
    """--resume from an empty file, a teacher checkpoint, an exported student (EOFError and
    KeyError: 'epoch' from mmengine's resume before)."""
    from fmkt_plugin.apis import build_runner_config
    config = config_path('fmkt/resnet34_res18_in1k.py')
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match=r'--resume: .*empty.pth is empty \(0 bytes\)'):
        build_runner_config(config, resume=str(empty))
    with pytest.raises(ValueError, match=r'--resume: .*resnet34_8xb32_in1k.pth is not a '
                       'training checkpoint.*load_from'):
        build_runner_config(config, resume=teacher_ckpts['resnet34_8xb32_in1k'])
    exported = tmp_path / 'student.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)},
                'meta': {'epoch': 2, 'iter': 8, 'fmkt_export': {'mode': 'flow'}}}, exported)
    with pytest.raises(ValueError, match=r'--resume: .*student.pth is an exported student'):
        build_runner_config(config, resume=str(exported))
    listed = tmp_path / 'listed.pth'
    torch.save({'state_dict': [1, 2], 'meta': {'epoch': 1, 'iter': 1}}, listed)
    with pytest.raises(ValueError, match=r'--resume: .*listed.pth: "state_dict" is a list'):
        build_runner_config(config, resume=str(listed))


def test_missing_dataset_path_is_named(tmp_path):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        with pytest.raises(Exception, match='no_such_dataset'):
            DATASETS.build(dict(type='CustomDataset', data_root=str(tmp_path / 'no_such_dataset'),
                                data_prefix='train', pipeline=[]))


def test_empty_dataset_is_an_error(tmp_path):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import DATASETS
    (tmp_path / 'empty' / 'train').mkdir(parents=True)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        with pytest.raises(Exception, match='(?i)empty|no .*(valid|image|file)|found 0'):
            DATASETS.build(dict(type='CustomDataset', data_root=str(tmp_path / 'empty'),
                                data_prefix='train', pipeline=[]))


def test_converter_keeps_existing_output_on_failure(tmp_path):
    out = tmp_path / 'student'
    out.mkdir()
    (out / 'student.pth').write_bytes(b'previous export')
    bad = tmp_path / 'plain.pth'
    torch.save({'state_dict': {'backbone.w': torch.zeros(1)}}, bad)
    with pytest.raises(ValueError, match='not a distillation checkpoint'):
        load_tool('convert_fmkt_ckpt_to_student').main(
            [config_path('fmkt/resnet34_res18_in1k.py'), str(bad), str(out)])
    assert (out / 'student.pth').read_bytes() == b'previous export'


def test_wrong_launcher_is_rejected():
    with pytest.raises(SystemExit):
        load_tool('train').parse_args(['cfg.py', '--launcher', 'mpirun'])


@pytest.mark.parametrize('kwargs, match', [
    (dict(momentum=float('nan')), 'FlowEMAHook: momentum must be a finite number in'),
    (dict(momentum=0), r'FlowEMAHook: momentum must be in \(0, 1\], got 0'),
    (dict(momentum='0.001'), 'FlowEMAHook: momentum'),
    (dict(begin_iter=-1), 'FlowEMAHook: begin_iter must be an int >= 0, got -1'),
    (dict(seed=1.5, type='EpochSeedHook'), 'EpochSeedHook: seed must be an int, got 1.5'),
])
def test_bad_hook_arguments_are_named(kwargs, match):
    from mmengine.registry import HOOKS
    with pytest.raises(ValueError, match=match):
        HOOKS.build(dict(dict(type='FlowEMAHook'), **kwargs))


def _imagenet_copy(tiny_imagenet, tmp_path):
    import shutil
    root = tmp_path / 'imagenet'
    shutil.copytree(tiny_imagenet, root)
    return root


def _fmkt_child(root, teacher_ckpts, tmp_path):
    options = tiny_cls_options(str(root))
    options['model.teacher_ckpt'] = teacher_ckpts['resnet34_8xb32_in1k']
    return write_child_config(tmp_path, config_path('fmkt/resnet34_res18_in1k.py'), options)


def test_a_bad_label_in_an_image_list_is_named_with_file_and_line(tiny_imagenet, teacher_ckpts,
                                                                 tmp_path):
    """mmpretrain said only "invalid literal for int() with base 10: 'abc'"."""
    root = _imagenet_copy(tiny_imagenet, tmp_path)
    with open(root / 'meta' / 'train.txt', 'a') as f:
        f.write('n00000000/extra.JPEG abc\n')
    lines = (root / 'meta' / 'train.txt').read_text().splitlines()
    with pytest.raises(ValueError, match=r"train_dataloader\.dataset\.ann_file: .*meta/train\.txt: "
                       rf"each line must be .*line {len(lines)}: label 'abc'"):
        load_tool('train').build_runner([_fmkt_child(root, teacher_ckpts, tmp_path),
                                         '--work-dir', str(tmp_path / 'w')])


@pytest.mark.slow
def test_a_missing_validation_image_stops_training_before_it_starts(tiny_imagenet, teacher_ckpts,
                                                                   tmp_path):
    """It was found at the first validation, after an epoch had trained."""
    root = _imagenet_copy(tiny_imagenet, tmp_path)
    gone = sorted((root / 'val').rglob('*.JPEG'))[0]
    gone.unlink()
    work = tmp_path / 'w'
    with pytest.raises(FileNotFoundError, match=rf'val_dataloader\.dataset: images not found: '
                       rf'.*{gone.name}'):
        load_tool('train').main([_fmkt_child(root, teacher_ckpts, tmp_path), '--work-dir',
                                 str(work)])
    assert not list(work.rglob('*.pth'))


@pytest.mark.slow
@pytest.mark.parametrize('batch_size, match', [
    (1, 'train_dataloader.batch_size is 1 per GPU: set it to 2 or more'),
    (7, 'train_dataloader.batch_size is 7 per GPU, so this is the short last batch of an epoch '
        r'.*set train_dataloader.drop_last=True'),
])
def test_a_batch_of_one_at_a_batchnorm_layer_is_named(batch_size, match, tiny_imagenet,
                                                      teacher_ckpts, tmp_path):
    """torch said only "Expected more than 1 value per channel when training" from inside the
    backbone. 8 training images: a batch of 1, or 7 then a last batch of 1."""
    options = tiny_cls_options(str(tiny_imagenet), batch_size=batch_size)
    options['model.teacher_ckpt'] = teacher_ckpts['resnet34_8xb32_in1k']
    cfg = write_child_config(tmp_path, config_path('fmkt/resnet34_res18_in1k.py'), options)
    work = tmp_path / 'w'
    with pytest.raises(ValueError, match=r'architecture\.backbone\.\S+ \(BatchNorm2d\) got one '
                       r'value per channel in training \(input \(1, \d+, 1, 1\)\).*' + match):
        load_tool('train').main([cfg, '--work-dir', str(work)])
    assert not list(work.rglob('*.pth'))


def test_batchnorm_guard_leaves_trainable_cases_alone():
    """A batch of one on 2x2 maps trains (BatchNorm averages over pixels), and a BatchNorm layer
    in eval mode (a frozen backbone, the teacher) takes any batch."""
    from fmkt_plugin.apis.batchnorm_guard import guard_batchnorm_batches
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4),
                              torch.nn.Flatten(), torch.nn.BatchNorm1d(4 * 4))
    assert guard_batchnorm_batches(net, batch_size=1) == 2
    net(torch.randn(2, 3, 2, 2))
    net[3].eval()
    net(torch.randn(1, 3, 2, 2))  # the 2x2 maps train; the pooled layer is frozen
    net[3].train()
    with pytest.raises(ValueError, match=r'^3 \(BatchNorm1d\) got one value per channel'):
        net(torch.randn(1, 3, 2, 2))


def test_empty_dataset_folder_stops_training_with_its_name(tiny_imagenet, tmp_path):
    """An ImageNet-layout folder whose annotation file lists nothing: 0 samples, and mmengine
    would run an epoch of zero iterations without complaint."""
    import shutil

    root = tmp_path / 'empty_imagenet'
    shutil.copytree(tiny_imagenet, root)
    (root / 'meta' / 'train.txt').write_text('')
    options = tiny_cls_options(str(root))
    options.update({'model.teacher_ckpt': None, 'model.allow_random_teacher': True})
    cfg = write_child_config(tmp_path, config_path('fmkt/resnet34_res18_in1k.py'), options)
    with pytest.raises(ValueError, match=r'train_dataloader.dataset: the dataset has no '
                       r'samples \(0 items; .*empty_imagenet'):
        load_tool('train').main([cfg, '--work-dir', str(tmp_path / 'work')])
    assert not (tmp_path / 'work' / 'epoch_1.pth').exists()


# ------------------------------------------------------------------------------------------
# The benchmark's command line: checked before any work starts (nothing is written)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize('argv, match', [
    (['--holdout', '70000'], r'--holdout must be an int in \[0, 59999\], got 70000 \(.*60000 '
     'images of the Fashion-MNIST training split'),
    (['--holdout', '-5'], r'--holdout must be an int in \[0, 59999\], got -5'),
    (['--holdout', '59990'], r'--holdout 59990 leaves no training image: '
     'the smoke profile trains on 1024'),
    (['--epochs', '0'], r'--epochs must be an int >= 1, got 0'),
    (['--jobs', '0'], r'--jobs must be an int >= 1, got 0'),
    (['--threads', '0'], r'--threads must be an int >= 1, got 0'),
    (['--seeds', '0', '-1'], r'--seeds must be an int in \[0, 4294967295\], got -1 \(.*numpy'),
    (['--tune', '--seeds', str(2**32)], r'--seeds must be an int in \[0, 4294967295\]'),
], ids=['holdout>=60000', 'holdout<0', 'holdout-takes-the-subset', 'epochs=0', 'jobs=0',
        'threads=0', 'seed<0', 'seed>=2**32'])
def test_benchmark_command_line_is_checked_before_any_work(argv, match, tmp_path, capsys):
    from benchmarks.run import main
    out = tmp_path / 'results'
    with pytest.raises(SystemExit) as info:  # smoke/kd first: a short run if it were not caught
        main(['--profile', 'smoke', '--methods', 'kd', '--device', 'cpu', '--skip-overhead',
              '--out', str(out)] + argv)
    assert info.value.code == 2  # argparse's usage error
    assert re.search(match, capsys.readouterr().err)
    assert not out.exists()  # no folder, no table, no cache: nothing started


# ------------------------------------------------------------------------------------------
# OFM-KT with one step: nothing to distil
# ------------------------------------------------------------------------------------------
def test_ofmkt_with_one_step_is_refused_at_build():
    """One step: the ensemble target is the step itself and loss_fmkt is ~1e-8 throughout."""
    from fmkt_plugin.apis import load_config
    model = load_config(config_path('fmkt/ofmkt_res18_cifar100.py')).model
    model.architecture.head.flow.num_steps = 1
    with pytest.raises(ValueError, match=r'model.architecture.head.flow.num_steps: OFMKT needs '
                       r'at least 2 steps, got 1\. Its teacher is the ensemble .*nothing to '
                       'distil'):
        MODELS.build(model)
    model.architecture.head.flow.num_steps = [1, 2]  # drawn per iteration: N=2 distils
    assert MODELS.build(model).architecture.head.flow.num_steps_choices == (1, 2)


# ------------------------------------------------------------------------------------------
# Seeds: numpy takes [0, 2**32 - 1]
# ------------------------------------------------------------------------------------------
def _tiny_runner_config(tmp_path) -> str:
    """A runner config whose model is never built by these tests (they fail before)."""
    path = tmp_path / 'tiny.py'
    path.write_text(
        "model = dict(type='mmpretrain.ImageClassifier',\n"
        "             backbone=dict(type='mmpretrain.LeNet5', num_classes=2))\n"
        "default_scope = 'mmpretrain'\n")
    return str(path)


@pytest.mark.parametrize('seed', [-1, 2**32, 1.5])
def test_bad_randomness_seed_is_named_before_the_runner_is_built(seed, tmp_path):
    train = load_tool('train')
    with pytest.raises(ValueError, match=r'randomness.seed must be an int in '
                       rf'\[0, 4294967295\], got {re.escape(repr(seed))}'):
        train.build_runner([_tiny_runner_config(tmp_path), '--work-dir', str(tmp_path / 'w'),
                            '--cfg-options', f'randomness.seed={seed}'])


def test_a_work_dir_with_another_runs_checkpoints_is_refused_without_resume(tmp_path):
    """A new run would overwrite them one by one; --overwrite says so explicitly."""
    train = load_tool('train')
    work = tmp_path / 'w'
    work.mkdir()
    (work / 'epoch_3.pth').write_bytes(b'earlier run')
    argv = [_tiny_runner_config(tmp_path), '--work-dir', str(work)]
    with pytest.raises(FileExistsError, match=r'work dir .*w holds checkpoints of an earlier '
                       r'run \(.*epoch_3\.pth\): continue it with --resume, .*--overwrite'):
        train.build_runner(argv)
    assert (work / 'epoch_3.pth').read_bytes() == b'earlier run'
    assert train.build_runner(argv + ['--overwrite']).work_dir == str(work)


def test_a_second_run_on_a_work_dir_in_use_is_refused(tmp_path):
    from fmkt_plugin.apis.train import work_dir_lock
    with work_dir_lock(str(tmp_path)):
        with pytest.raises(RuntimeError, match=r'work dir .* is in use by another training run'):
            with work_dir_lock(str(tmp_path)):
                pass
    with work_dir_lock(str(tmp_path)):  # released with its holder
        pass


@pytest.mark.parametrize('option, match', [
    ({'default_hooks.checkpoint.max_keep_ckpt': 3}, r'default_hooks\.checkpoint\.max_keep_ckpt: '
     r"CheckpointHook takes no argument 'max_keep_ckpt' .*did you mean "
     r'default_hooks\.checkpoint\.max_keep_ckpts\?'),
    ({'train_cfg.max_epoch': 3}, r"train_cfg\.max_epoch: EpochBasedTrainLoop takes no argument"
     r".*did you mean train_cfg\.max_epochs\?"),
    ({'optim_wrapper.clip_gard': None}, r'optim_wrapper\.clip_gard: OptimWrapper takes no '
     r'argument .*did you mean optim_wrapper\.clip_grad\?'),
    ({'val_cfg.fp61': True}, r'val_cfg\.fp61: ValLoop takes no argument'),
    ({'custom_hooks': [dict(type='EpochSeedHook', sed=1)]},
     r"custom_hooks\[0\]\.sed: EpochSeedHook takes no argument 'sed' .*custom_hooks\[0\]\.seed"),
], ids=['checkpoint-hook', 'train-loop', 'optim-wrapper', 'val-loop', 'custom-hook'])
def test_a_misspelt_hook_loop_or_optimizer_key_is_named_before_training(option, match):
    """mmengine built the checkpoint hook's arguments only at its first save: a whole epoch
    trained, then the save raised and no checkpoint existed."""
    from fmkt_plugin.apis import build_runner_config
    with pytest.raises(ValueError, match=match):
        build_runner_config(config_path('fmkt/resnet34_res18_in1k.py'), cfg_options=option)


@pytest.mark.parametrize('config', sorted(
    glob.glob(osp.join(REPO, 'configs', 'fmkt', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'baselines', '*.py'))), ids=osp.basename)
def test_every_shipped_config_passes_the_key_check(config):
    from fmkt_plugin.apis.component_keys import check_component_keys
    from fmkt_plugin.apis.config import load_config
    check_component_keys(load_config(config))


@pytest.mark.parametrize('key', ['max_epochs', 'max_iters'])
def test_zero_length_training_is_named_before_the_runner_is_built(key, tmp_path):
    """Without the check, mmengine's scheduler says 'end should be larger than begin'."""
    train = load_tool('train')
    with pytest.raises(ValueError, match=rf'train_cfg.{key} must be an int >= 1, got 0'):
        train.build_runner([_tiny_runner_config(tmp_path), '--work-dir', str(tmp_path / 'w'),
                            '--cfg-options', f'train_cfg.{key}=0'])
    assert not (tmp_path / 'w').exists()


def test_test_tool_refuses_an_out_file_it_cannot_write_before_evaluating(tmp_path):
    """mmengine.dump picks the format by extension and failed only after the evaluation."""
    test = load_tool('test')
    cfg = _tiny_runner_config(tmp_path)
    with pytest.raises(ValueError, match=r'--out .*m\.txt: .*\.json, \.yaml, \.yml, \.pkl'):
        test.main([cfg, 'missing.pth', '--out', str(tmp_path / 'm.txt')])
    with pytest.raises(FileNotFoundError, match=r'--out .*: the folder .*nowhere does not exist'):
        test.main([cfg, 'missing.pth', '--out', str(tmp_path / 'nowhere' / 'm.json')])


@pytest.mark.parametrize('flag', ['--iters', '--teacher-iters', '--train-scenes'])
def test_detection_benchmark_flags_are_checked_before_any_work(flag, tmp_path, capsys):
    from benchmarks.detection.run import main
    out = tmp_path / 'results'
    with pytest.raises(SystemExit) as info:
        main(['--profile', 'smoke', '--out', str(out), flag, '0'])
    assert info.value.code == 2
    assert re.search(rf'{flag} must be an int >= 1, got 0', capsys.readouterr().err)
    assert not out.exists()


# ------------------------------------------------------------------------------------------
# Teacher checkpoint with NaN weights: named at load time
# ------------------------------------------------------------------------------------------
def test_teacher_checkpoint_with_non_finite_weights_is_named(teacher_ckpts, tmp_path):
    ckpt = torch.load(teacher_ckpts['resnet34_8xb32_in1k'], weights_only=True)
    ckpt['state_dict']['backbone.layer2.0.conv1.weight'][0, 0, 0, 0] = float('nan')
    ckpt['state_dict']['head.fc.bias'][3] = float('inf')
    bad = tmp_path / 'nan_teacher.pth'
    torch.save(ckpt, bad)
    with pytest.raises(ValueError, match=r"teacher_ckpt: the teacher's weights in "
                       r'.*nan_teacher.pth are not finite \(NaN/inf values in '
                       r'backbone.layer2.0.conv1.weight, head.fc.bias\)'):
        _build(_fmkt_model_cfg(str(bad)))


# ------------------------------------------------------------------------------------------
# A refused (code-executing) checkpoint: the same refusal from every loader
# ------------------------------------------------------------------------------------------
_REFUSAL = (r'cannot load {path}: refused by the restricted unpickler \(the global '
            r'(posix|os|nt)\.system, whose module \w+ is blocked\)\. A checkpoint may hold only '
            'tensors')


def _evil_checkpoint(tmp_path) -> str:
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': {'epoch': 1, 'iter': 1},
                'message_hub': {}, 'x': _Exploit()}, path)
    return str(path)


def _assert_refusal(err: BaseException, path: str, field: str = '') -> None:
    text = str(err)
    prefix = re.escape(field + ': ') if field else ''
    assert re.match(prefix + _REFUSAL.format(path=re.escape(path)), text), text
    # no advice to switch the protection off, here or in what the traceback shows under it
    for shown in (err, err.__cause__):
        if shown is not None:
            assert 'weights_only' not in str(shown), str(shown)
    assert err.__cause__ is None or err.__suppress_context__


def test_auto_resume_from_a_refused_checkpoint_names_it(tmp_path):
    """``tools/train.py --resume`` with ``last_checkpoint`` naming a hostile file (torch's bare
    UnpicklingError, no file name, advice to load with weights_only=False, before)."""
    evil = _evil_checkpoint(tmp_path)
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'last_checkpoint').write_text(evil)
    with pytest.raises(RuntimeError) as info:
        load_tool('train').build_runner([_tiny_runner_config(tmp_path), '--work-dir', str(work),
                                         '--resume'])
    field = f'--resume (auto, from {work / "last_checkpoint"})'
    _assert_refusal(info.value, evil, field)


def test_every_loader_gives_the_same_refusal(tmp_path):
    from mmengine.model import BaseModule
    from mmengine.runner.checkpoint import _load_checkpoint

    from fmkt_plugin.apis import build_runner_config, export_student
    from fmkt_plugin.apis.checkpoint import check_checkpoint_fits
    from fmkt_plugin.models.algorithms.checks import load_teacher_checkpoint
    evil = _evil_checkpoint(tmp_path)
    linear = torch.nn.Linear(2, 2)
    cases = [
        ('teacher_ckpt', lambda: load_teacher_checkpoint(linear, evil)),
        ('--resume', lambda: build_runner_config(_tiny_runner_config(tmp_path), resume=evil)),
        ('checkpoint', lambda: check_checkpoint_fits(linear, evil)),  # tools/test.py
        ('checkpoint', lambda: export_student(config_path('fmkt/resnet34_res18_in1k.py'), evil,
                                              str(tmp_path / 'out'))),  # the converter
        ('', lambda: _load_checkpoint(evil, map_location='cpu')),  # load_from, --resume (runner)
        ('', lambda: BaseModule(init_cfg=dict(type='Pretrained', checkpoint=evil)).init_weights()),
    ]
    for field, load in cases:
        with pytest.raises(Exception) as info:
            load()
        _assert_refusal(info.value, evil, field)
    assert not (tmp_path / 'out').exists()


# ------------------------------------------------------------------------------------------
# Detection: COCO-format annotation files checked before the runner is built
# ------------------------------------------------------------------------------------------
DET_CONFIG = 'fmkt/fmkt_retinanet_x101_r50_fpn_2x_coco.py'


@pytest.fixture()
def coco_files(tmp_path):
    """A 2-image training and 1-image validation set in COCO's layout (80 categories)."""
    from fixtures import write_coco_detection
    return write_coco_detection(str(tmp_path / 'coco'), num_images={'train': 2, 'val': 1},
                                image_size=(32, 32), max_objects=2)


def _edit_json(path: str, change) -> None:
    with open(path) as f:
        coco = json.load(f)
    change(coco)
    with open(path, 'w') as f:
        json.dump(coco, f)


def _det_argv(coco, tmp_path):
    root = coco['root'] + '/'
    return [config_path(DET_CONFIG), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
            f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}', f'val_evaluator.ann_file={coco["val"]}',
            # no download if the check did not stop it (the test then fails, offline too)
            'model.teacher_ckpt=None', 'model.allow_random_teacher=True']


def _set_first(key, value):
    def change(coco):
        coco['annotations'][0][key] = value
    return change


def _clear_annotations(coco):
    coco['annotations'] = []


@pytest.mark.parametrize('split, change, match', [
    ('train', _set_first('category_id', 999), r'train_dataloader.dataset.ann_file: '
     r'.*instances_train2017.json: 1 bad annotation field\(s\): annotation id 1: category_id '
     r'999 is not an id of "categories" \(\[1, 2, 3,'),
    ('train', _set_first('image_id', 77), r'train_dataloader.dataset.ann_file: '
     r'.*instances_train2017.json: .*annotation id 1: image_id 77 is not an id of "images"'),
    ('train', _set_first('bbox', [1, 2, 3]), r'instances_train2017.json: .*annotation id 1: '
     r'bbox must be \[x, y, width, height\] \(4 finite numbers\), got \[1, 2, 3\]'),
    ('train', _clear_annotations, r'train_dataloader.dataset.ann_file: '
     r'.*instances_train2017.json has an empty "annotations" list: there is nothing to train on'),
    ('val', _clear_annotations, r'val_dataloader.dataset.ann_file: .*instances_val2017.json has '
     r'an empty "annotations" list: the detections would be scored against empty ground truth'),
], ids=['unknown-category', 'unknown-image', 'short-bbox', 'empty-train', 'empty-val'])
def test_bad_coco_annotations_stop_training_before_the_runner_is_built(coco_files, tmp_path,
                                                                      split, change, match):
    """mmengine's "need at least one array to concatenate" (unknown category, empty training
    set), or an evaluation against empty ground truth that exited 0, before."""
    _edit_json(coco_files[split], change)
    with pytest.raises(ValueError, match=match):
        load_tool('train').build_runner(_det_argv(coco_files, tmp_path))
    assert not (tmp_path / 'work').exists()


def test_coco_annotations_mmdet_drops_are_warned_with_their_ids(coco_files, tmp_path):
    from fmkt_plugin.apis import build_runner_config
    from fmkt_plugin.apis.annotations import check_detection_annotations
    _edit_json(coco_files['train'], _set_first('bbox', [4.0, 4.0, -5.0, 6.0]))
    argv = _det_argv(coco_files, tmp_path)
    cfg = build_runner_config(argv[0], cfg_options=dict(a.split('=', 1) for a in argv[4:]))
    with pytest.warns(UserWarning, match=r'train_dataloader.dataset.ann_file: '
                      r'.*instances_train2017.json: 1 annotation\(s\) will be dropped by mmdet.s '
                      r'CocoDataset: id 1 \(bbox width -5 < 1\)'):
        check_detection_annotations(cfg, ('train', 'val'))


def test_coco_set_without_a_usable_box_is_named(coco_files):
    """Every box degenerate: mmdet would train on background only."""
    from fmkt_plugin.apis.annotations import check_coco_file

    def degenerate(coco):
        for ann in coco['annotations']:
            ann['bbox'][3] = 0.5
    _edit_json(coco_files['train'], degenerate)
    with pytest.warns(UserWarning, match='bbox height 0.5 < 1'):
        with pytest.raises(ValueError, match=r'instances_train2017.json: none of its \d '
                           r'annotation\(s\) is a box mmdet uses .*: there would be no box to '
                           'train on'):
            check_coco_file(coco_files['train'], 'ann_file', training=True)


def test_empty_dataset_check_counts_after_mmdet_filters(coco_files, tmp_path):
    """Every image filtered out (min_size): mmengine fails in numpy while building the dataset;
    the empty-dataset check now counts what is left after the filters and names the dataset."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from fmkt_plugin.apis.config import check_dataset_not_empty
    dataset = dict(type='mmdet.CocoDataset', data_root=coco_files['root'],
                   ann_file='annotations/instances_train2017.json',
                   data_prefix=dict(img='train2017/'), pipeline=[],
                   filter_cfg=dict(filter_empty_gt=True, min_size=1000))
    runner = Runner.from_cfg(Config(dict(
        model=dict(type='mmpretrain.ImageClassifier',
                   backbone=dict(type='mmpretrain.LeNet5', num_classes=2)),
        work_dir=str(tmp_path / 'work'), default_scope='mmpretrain',
        train_dataloader=dict(dataset=dataset, batch_size=1, num_workers=0,
                              sampler=dict(type='DefaultSampler', shuffle=False)),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)))))
    with pytest.raises(ValueError, match=r'train_dataloader.dataset: the dataset has no samples '
                       r'after its filter_cfg \(0 items; .*instances_train2017.json'):
        check_dataset_not_empty(runner, 'train')
