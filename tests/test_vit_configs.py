"""The DeiT-III-S -> DeiT-T configs (the FM-KT authors' ViT recipe): ViTKD alone and KD train
and validate through tools/train.py on tiny data, and the FM-KT + ViTKD student exports to a
DeiT-T that predicts as it did inside the distillation model (configs/fmkt's generic test
trains that config too)."""
import os.path as osp

import pytest
import torch
from fixtures.smoke import SMOKE_DEIT_SCHEDULE
from helpers import (
    assert_trained_stably,
    changed_params,
    config_path,
    load_tool,
    snapshot,
    tiny_cls_options,
    write_child_config,
)

TEACHER = 'deit3-small-p16_64xb64_in1k'


def _train(name, tiny_imagenet, teacher_ckpts, tmp_path):
    options = tiny_cls_options(tiny_imagenet, batch_size=4)
    options['model.teacher_ckpt'] = teacher_ckpts[TEACHER]
    options['param_scheduler'] = SMOKE_DEIT_SCHEDULE
    cfg = write_child_config(tmp_path, config_path(name), options)
    work = str(tmp_path / 'work')
    runner = load_tool('train').build_runner([cfg, '--work-dir', work])
    runner.model.init_weights()
    before = snapshot(runner.model.architecture)
    teacher_before = snapshot(runner.model.teacher)
    runner.train()
    assert runner.iter == 2
    assert changed_params(before, runner.model.architecture) > 0
    assert changed_params(teacher_before, runner.model.teacher) == 0
    assert 'val/accuracy/top1' in runner.message_hub.log_scalars
    return cfg, osp.join(work, 'epoch_1.pth'), runner


@pytest.mark.slow
@pytest.mark.parametrize('name, loss', [
    ('baselines/vitkd_deit3-small_deit-tiny_in1k.py', 'train/distill.loss_vitkd'),
    ('baselines/vitkd-nkd_deit3-small_deit-tiny_in1k.py', 'train/distill.loss_nkd'),
    ('baselines/kd_deit3-small_deit-tiny_in1k.py', 'train/distill.loss_kl'),
])
def test_deit_baseline_trains_and_validates(name, loss, tiny_imagenet, teacher_ckpts, tmp_path):
    _, _, runner = _train(name, tiny_imagenet, teacher_ckpts, tmp_path)
    assert type(runner.model.architecture.backbone).__name__ == 'VisionTransformer'
    assert type(runner.model.teacher.backbone).__name__ == 'DeiT3'
    assert_trained_stably(runner, [loss, 'train/student.loss'])
    if 'vitkd' in name:  # the mask token and the generation block trained with the student
        vitkd = runner.model.distiller.distill_losses['loss_vitkd']
        assert vitkd.mask_token.abs().sum() > 0


@pytest.mark.slow
def test_deit_fmkt_student_exports_and_predicts_as_trained(tiny_imagenet, teacher_ckpts,
                                                          tmp_path):
    cfg, ckpt, runner = _train('fmkt/deit3-small_deit-tiny_vitkd_in1k.py', tiny_imagenet,
                               teacher_ckpts, tmp_path)
    assert_trained_stably(runner, ['train/distill.loss_fmkt', 'train/distill.loss_vitkd',
                                   'train/student.loss_ce'])
    head = runner.model.architecture.head
    assert type(head).__name__ == 'FlowMatchingClsHead' and head.spatial_expand == 7
    assert head.flow.meta_encoder.time_embed.embed_dim == 192  # DeiT-T's width
    result = load_tool('convert_fmkt_ckpt_to_student').main([cfg, ckpt, str(tmp_path / 'out')])
    assert result['mode'] == 'flow'
    loader = runner.build_dataloader(runner.cfg.test_dataloader)
    batch = next(iter(loader))
    runner.model.eval()
    with torch.no_grad():
        expected = torch.stack([s.pred_score for s in runner.model.test_step(batch)])
    from mmengine.runner import Runner
    student_cfg = load_tool('test').build_runner_config(
        result['config'], work_dir=str(tmp_path / 'eval'), load_from=result['checkpoint'])
    student = Runner.from_cfg(student_cfg)
    student.load_checkpoint(result['checkpoint'])
    assert type(student.model.backbone).__name__ == 'VisionTransformer'
    student.model.eval()
    with torch.no_grad():
        got = torch.stack([s.pred_score for s in student.model.test_step(batch)])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    metrics = load_tool('test').main([result['config'], result['checkpoint'], '--work-dir',
                                      str(tmp_path / 'eval2')])
    trained = runner.val_loop.run()
    assert metrics['accuracy/top1'] == pytest.approx(trained['accuracy/top1'])


@pytest.mark.slow
def test_vit_overhead_row_times_both_shipped_configs():
    """``python -m benchmarks.overhead --vit``: FM-KT + ViTKD over ViTKD alone, one row."""
    from benchmarks.overhead.vit import run_vit_overhead
    out = run_vit_overhead(size=32, batch=2, repeats=1, warmup=1)
    assert set(out['median_s']) == {'fmkt_vitkd', 'vitkd'}
    (row, ) = out['ratios']
    assert row['key'] == 'train_vit_fmkt' and row['ratio'] > 0
    assert out['setting'].startswith('DeiT-III-S -> DeiT-T, 32 px, batch 2')
