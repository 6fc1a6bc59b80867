"""Every classification config under configs/fmkt builds and trains/validates on CPU."""
import glob
import os.path as osp

import pytest
from helpers import (
    REPO,
    all_finite,
    changed_params,
    load_tool,
    scalar_history,
    snapshot,
    tiny_cls_options,
    write_child_config,
)

CLS_CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', 'fmkt', '*.py'))
    if p.endswith('_in1k.py'))

TEACHER = {'resnet34': 'resnet34_8xb32_in1k', 'resnet50': 'resnet50_8xb32_in1k'}


def test_all_imagenet_configs_are_collected():
    names = {osp.basename(p) for p in CLS_CONFIGS}
    assert {'resnet50_res18_in1k.py', 'resnet34_res18_in1k.py', 'resnet50_mbv2_in1k.py'} <= names


@pytest.mark.slow
@pytest.mark.parametrize('config', CLS_CONFIGS, ids=osp.basename)
def test_fmkt_config_trains_and_validates(config, tiny_imagenet, teacher_ckpts, tmp_path):
    teacher = TEACHER[osp.basename(config).split('_')[0]]
    options = tiny_cls_options(tiny_imagenet, batch_size=4)
    options['model.teacher_ckpt'] = teacher_ckpts[teacher]
    cfg = write_child_config(tmp_path, config, options)

    runner = load_tool('train').build_runner([cfg, '--work-dir', str(tmp_path / 'work')])
    assert type(runner.model).__name__ == 'FMKTDistill'
    runner.model.init_weights()
    before = snapshot(runner.model.architecture)
    runner.train()

    assert runner.iter == 2
    fmkt = scalar_history(runner, 'train/distill.loss_fmkt')
    ce = scalar_history(runner, 'train/student.loss_ce')
    assert all_finite(fmkt) and all_finite(ce)
    assert changed_params(before, runner.model.architecture) > 0
    flow_params = [n for n in before if '.flow.' in n and n.startswith('head.')]
    assert flow_params and changed_params(
        {n: before[n] for n in flow_params}, runner.model.architecture) > 0
    assert 'val/accuracy/top1' in runner.message_hub.log_scalars
