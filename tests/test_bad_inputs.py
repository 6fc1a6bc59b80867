"""Bad input fails fast, with a message naming the field or file, and writes nothing half-done."""
import os

import numpy as np
import pytest
import torch
from helpers import config_path, load_tool

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


def test_empty_dataset_folder_stops_training_with_its_name(tiny_imagenet, tmp_path):
    """An ImageNet-layout folder whose annotation file lists nothing: 0 samples, and mmengine
    would run an epoch of zero iterations without complaint."""
    import shutil

    from helpers import tiny_cls_options, write_child_config
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
