"""Baseline distillation (MMRazor KD/DKD/DIST, ResNet-34 -> ResNet-18) via tools/train.py."""
import pytest
from helpers import (
    assert_trained_stably,
    changed_params,
    config_path,
    load_tool,
    scalar_history,
    snapshot,
    tiny_cls_options,
    write_child_config,
)

BASELINES = {
    'kd': 'train/distill.loss_kl',
    'dkd': 'train/distill.loss_dkd',
    'dist': 'train/distill.loss_dist',
}


@pytest.mark.slow
@pytest.mark.parametrize('method', sorted(BASELINES))
def test_baseline_trains_and_validates(method, tiny_imagenet, teacher_ckpts, tmp_path):
    options = tiny_cls_options(tiny_imagenet)
    options['model.teacher_ckpt'] = teacher_ckpts['resnet34_8xb32_in1k']
    cfg = write_child_config(
        tmp_path, config_path(f'baselines/{method}_resnet34_resnet18_in1k.py'), options)

    runner = load_tool('train').build_runner([cfg, '--work-dir', str(tmp_path / 'work')])
    runner.model.init_weights()
    student_before = snapshot(runner.model.architecture)
    teacher_before = snapshot(runner.model.teacher)
    runner.train()

    assert runner.iter == 4  # 8 images, batch 2, one epoch
    distill = scalar_history(runner, BASELINES[method])
    student_ce = scalar_history(runner, 'train/student.loss')
    assert len(distill) == 4 and len(student_ce) == 4
    assert_trained_stably(runner, (BASELINES[method], 'train/student.loss'))
    assert changed_params(student_before, runner.model.architecture) > 0
    assert changed_params(teacher_before, runner.model.teacher) == 0
    # one validation ran and produced the accuracy metric
    assert 'val/accuracy/top1' in runner.message_hub.log_scalars
