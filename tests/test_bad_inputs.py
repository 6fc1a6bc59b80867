"""Bad input fails fast, with a message naming the field or file, and writes nothing half-done."""
import os

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
], ids=['schedule', 'encoder', 'N=0', 'N<0', 'empty-N-set', 'test-N', 'metric', 'dirac',
        'channel-mismatch'])
def test_bad_component_config_raises_at_build(cfg, match):
    with pytest.raises(ValueError, match=match):
        # _scope_: build in mmrazor whatever default scope earlier tests left current
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


def test_nan_input_stops_training_without_stepping(teacher_ckpts):
    from mmengine.optim import OptimWrapper
    from mmpretrain.structures import DataSample
    model = _build(_fmkt_model_cfg(teacher_ckpts['resnet34_8xb32_in1k']))
    model.init_weights()
    before = {k: v.clone() for k, v in model.architecture.state_dict().items()}
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    inputs = torch.full((2, 3, 32, 32), float('nan'))
    samples = [DataSample().set_gt_label(i) for i in range(2)]
    with pytest.raises(FloatingPointError, match='optimizer was not stepped'):
        model.train_step({'inputs': inputs, 'data_samples': samples}, optim)
    after = model.architecture.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point()
               and 'running' not in k and 'num_batches' not in k)


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
