"""DiffKD and RDR (ResNet-34 -> ResNet-18 configs) trained via tools/train.py, as the baselines."""
import copy
import glob
import os.path as osp

import pytest
import torch
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

RIVALS = {
    # both of the authors' branches: feature map (with the auto-encoder) and logits
    'diffkd': ('train/distill.loss_diffkd', 'train/distill.diffkd_diffusion',
               'train/distill.diffkd_ae', 'train/distill.loss_diffkd_logits',
               'train/distill.diffkd_logits_diffusion'),
    # the path term (shuffled times) and the target-guided term, next to KD on the logits
    'rdr': ('train/distill.loss_rdr', 'train/distill.rdr_path', 'train/distill.rdr_guide',
            'train/distill.loss_kl'),
}


@pytest.mark.slow
@pytest.mark.parametrize('method', sorted(RIVALS))
def test_rival_trains_and_validates(method, tiny_imagenet, teacher_ckpts, tmp_path):
    # DiffKD's denoisers are BatchNorm throughout, and BatchNorm over the 2 values of a batch of
    # 2 on a 1x1 map is degenerate (its gradient explodes): the logit branch always works on
    # 1x1 maps, so DiffKD gets batches of 4 (2 iterations of the 8 images), and 64 px (2x2
    # layer4 maps)
    diffkd = method == 'diffkd'
    options = tiny_cls_options(tiny_imagenet, size=64 if diffkd else 32,
                               batch_size=4 if diffkd else 2)
    options['model.teacher_ckpt'] = teacher_ckpts['resnet34_8xb32_in1k']
    cfg = write_child_config(
        tmp_path, config_path(f'baselines/{method}_res34_res18_in1k.py'), options)

    runner = load_tool('train').build_runner([cfg, '--work-dir', str(tmp_path / 'work')])
    runner.model.init_weights()
    student_before = snapshot(runner.model.architecture)
    teacher_before = snapshot(runner.model.teacher)
    runner.train()

    iters = 2 if diffkd else 4
    assert runner.iter == iters
    keys = RIVALS[method] + ('train/student.loss', )
    for key in keys:
        assert len(scalar_history(runner, key)) == iters, key
    assert_trained_stably(runner, keys)
    assert changed_params(student_before, runner.model.architecture) > 0
    assert changed_params(teacher_before, runner.model.teacher) == 0
    assert 'val/accuracy/top1' in runner.message_hub.log_scalars

    if method == 'rdr':
        # the checkpoint's student folds into the plain ResNet-18 with the same outputs
        from mmengine.runner.checkpoint import _load_checkpoint

        from fmkt_plugin.registry import MODELS
        from fmkt_plugin.rivals.rdr import fold_rdr_state
        ckpt = sorted(glob.glob(osp.join(str(tmp_path / 'work'), 'epoch_*.pth')))[-1]
        state = _load_checkpoint(ckpt, map_location='cpu')['state_dict']
        student_state = {k[len('architecture.'):]: v for k, v in state.items()
                         if k.startswith('architecture.')}
        plain = MODELS.build(copy.deepcopy(runner.cfg.model.architecture))
        plain.load_state_dict(fold_rdr_state(runner.cfg.model, student_state), strict=True)
        student = runner.model.student.eval()
        plain.eval()
        x = torch.randn(2, 3, 32, 32)
        with torch.no_grad():
            want, got = student(x, mode='tensor'), plain(x, mode='tensor')
        assert (got - want).abs().max() <= 1e-5 * max(1.0, want.abs().max().item())
        # and the converter exports that plain student (same outputs, plain parameter count)
        from fmkt_plugin.apis.export import export_student
        out = export_student(cfg, ckpt, str(tmp_path / 'student'))
        exported = torch.load(out['checkpoint'], map_location='cpu', weights_only=True)
        assert not any('branches' in k for k in exported['state_dict'])
        assert out['num_params'] == sum(p.numel() for p in plain.parameters())
        deployed = MODELS.build(copy.deepcopy(runner.cfg.model.architecture))
        deployed.load_state_dict(exported['state_dict'], strict=True)
        with torch.no_grad():
            assert torch.allclose(deployed.eval()(x, mode='tensor'), got, atol=1e-6)
