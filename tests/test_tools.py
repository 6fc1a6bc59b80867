"""tools/train.py and tools/test.py: argument handling, resume, evaluation; launcher scripts."""
import os.path as osp
import subprocess

import pytest
from helpers import (
    REPO,
    assert_trained_stably,
    config_path,
    load_tool,
    tiny_cls_options,
    write_child_config,
)


@pytest.fixture(scope='module')
def train_tool():
    return load_tool('train')


@pytest.mark.parametrize('flag', ['--local_rank', '--local-rank'])
def test_both_local_rank_spellings(train_tool, flag, monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    args = train_tool.parse_args(['cfg.py', flag, '3'])
    assert args.local_rank == 3
    import os
    assert os.environ['LOCAL_RANK'] == '3'


def test_resume_flag_forms(train_tool):
    assert train_tool.parse_args(['cfg.py', '--resume']).resume == 'auto'
    assert train_tool.parse_args(['cfg.py', '--resume', 'auto']).resume == 'auto'
    assert train_tool.parse_args(['cfg.py', '--resume', 'x.pth']).resume == 'x.pth'
    assert train_tool.parse_args(['cfg.py']).resume is None


def test_runner_config_options(tmp_path):
    from fmkt_plugin.apis import build_runner_config
    cfg = build_runner_config(
        config_path('baselines/kd_resnet34_resnet18_in1k.py'), work_dir=str(tmp_path),
        cfg_options={'model.distiller.distill_losses.loss_kl.tau': 4}, launcher='pytorch',
        amp=True, resume='auto')
    assert cfg.model.distiller.distill_losses.loss_kl.tau == 4
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.launcher == 'pytorch' and cfg.resume is True and cfg.load_from is None
    assert cfg.work_dir == str(tmp_path)
    assert 'fmkt_plugin' in cfg.custom_imports.imports


def test_missing_files_are_named(tmp_path):
    from fmkt_plugin.apis import build_runner_config
    with pytest.raises(FileNotFoundError, match='no_such_config.py'):
        build_runner_config(str(tmp_path / 'no_such_config.py'))
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        build_runner_config(config_path('baselines/kd_resnet34_resnet18_in1k.py'),
                            resume=str(tmp_path / 'missing.pth'))


@pytest.mark.slow
def test_resume_auto_continues_and_test_tool_evaluates(tiny_imagenet, teacher_ckpts, tmp_path):
    """Train one epoch, resume (torch>=2.6 checkpoint loading) for a second, evaluate."""
    options = tiny_cls_options(tiny_imagenet)
    options['model.teacher_ckpt'] = teacher_ckpts['resnet34_8xb32_in1k']
    cfg = write_child_config(
        tmp_path, config_path('baselines/kd_resnet34_resnet18_in1k.py'), options)
    work = str(tmp_path / 'work')
    train = load_tool('train')
    first = train.main([cfg, '--work-dir', work])
    assert first.epoch == 1 and first.iter == 4
    assert_trained_stably(first)
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))

    second = train.main([cfg, '--work-dir', work, '--resume',
                         '--cfg-options', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=2'])
    assert second.epoch == 2 and second.iter == 8, 'did not continue from the checkpoint'
    assert_trained_stably(second)

    metrics = load_tool('test').main([cfg, osp.join(work, 'epoch_2.pth'), '--work-dir', work,
                                      '--out', str(tmp_path / 'metrics.json')])
    assert 0.0 <= metrics['accuracy/top1'] <= 100.0
    assert osp.isfile(tmp_path / 'metrics.json')


@pytest.mark.parametrize('script', ['dist_train.sh', 'dist_test.sh', 'slurm_train.sh',
                                    'slurm_test.sh'])
def test_launcher_scripts_parse_and_check_args(script):
    path = osp.join(REPO, 'tools', script)
    assert subprocess.run(['bash', '-n', path]).returncode == 0
    out = subprocess.run(['bash', path], capture_output=True, text=True)
    assert out.returncode == 2 and 'usage:' in out.stderr


@pytest.mark.slow  # a Python start-up per script
@pytest.mark.parametrize('name', ['train', 'test', 'convert_fmkt_ckpt_to_student'])
def test_tool_scripts_run_the_apis_command(name, capsys):
    """``tools/<name>.py`` is a wrapper: the command line is the apis module's, as a script."""
    import sys
    module = load_tool(name)
    with pytest.raises(SystemExit):
        module.parse_args(['--help'])
    # description and arguments, after the usage lines (wrapped by the program name's length)
    expected = capsys.readouterr().out.split('\n\n', 1)[1]
    script = osp.join(REPO, 'tools', f'{name}.py')
    out = subprocess.run([sys.executable, script, '--help'], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith(f'usage: {name}.py ')
    assert out.stdout.split('\n\n', 1)[1] == expected


def test_dist_train_rejects_bad_gpu_count():
    out = subprocess.run(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), 'cfg.py', 'two'],
                         capture_output=True, text=True)
    assert out.returncode == 2 and 'GPUS must be a positive integer' in out.stderr


def test_auto_scale_lr_flag_scales_by_the_actual_batch(tiny_imagenet, tmp_path):
    """--auto-scale-lr: lr x (total batch / auto_scale_lr.base_batch_size), as mmpretrain's and
    mmdet's train scripts do; without it the ImageNet lr (0.2 for 512) stays as written."""
    options = tiny_cls_options(tiny_imagenet, batch_size=2)
    options['auto_scale_lr.enable'] = False  # the small-run options scale it; here the flag does
    options['model.allow_random_teacher'] = True
    options['model.teacher_ckpt'] = None
    cfg = write_child_config(tmp_path, config_path('fmkt/resnet34_res18_in1k.py'), options)
    train = load_tool('train')
    lrs = {}
    for flag in ([], ['--auto-scale-lr']):
        runner = train.build_runner([cfg, '--work-dir', str(tmp_path / 'work')] + flag)
        wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
        runner.scale_lr(wrapper, runner.auto_scale_lr)
        lrs[bool(flag)] = wrapper.param_groups[0]['lr']
    assert lrs[False] == pytest.approx(0.2)
    assert lrs[True] == pytest.approx(0.2 * 2 / 512)


def test_auto_scale_lr_needs_a_base_batch_size(tmp_path):
    from fmkt_plugin.apis import build_runner_config
    with pytest.raises(ValueError, match='--auto-scale-lr: .*base_batch_size'):
        build_runner_config(config_path('fmkt/resnet34_res18_in1k.py'),
                            cfg_options={'auto_scale_lr': None}, auto_scale_lr=True)


def test_test_tool_refuses_a_checkpoint_of_another_model(tiny_imagenet, teacher_ckpts,
                                                         tmp_path):
    """A teacher checkpoint evaluated with the distillation config: mmengine loads non-strictly
    and reported top-1 0.0 with exit code 0. Now an error naming both files."""
    options = tiny_cls_options(tiny_imagenet)
    options['model.teacher_ckpt'] = teacher_ckpts['resnet34_8xb32_in1k']
    cfg = write_child_config(tmp_path, config_path('fmkt/resnet34_res18_in1k.py'), options)
    ckpt = teacher_ckpts['resnet34_8xb32_in1k']
    with pytest.raises(ValueError) as err:
        load_tool('test').main([cfg, ckpt, '--work-dir', str(tmp_path / 'work')])
    text = str(err.value)
    assert f'checkpoint: {ckpt} does not fit the model of {cfg}' in text
    assert 'missing: architecture.' in text and 'unexpected: backbone.' in text


def test_checkpoint_fit_check_passes_the_right_checkpoint_and_names_shapes(tmp_path):
    import torch

    from fmkt_plugin.apis.checkpoint import check_checkpoint_fits
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.BatchNorm1d(3))
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {f'module.{k}': v for k, v in model.state_dict().items()}}, good)
    check_checkpoint_fits(model, str(good), 'cfg.py')  # 'module.' prefixes are stripped
    other = tmp_path / 'other.pth'
    torch.save({'state_dict': dict(model.state_dict(), **{'0.weight': torch.zeros(4, 2)})},
               other)
    with pytest.raises(ValueError, match=r'other.pth does not fit the model of cfg.py \(with '
                       r'another shape: 0.weight: \(4, 2\) vs \(3, 2\)\)'):
        check_checkpoint_fits(model, str(other), 'cfg.py')
    listed = tmp_path / 'listed.pth'
    torch.save({'state_dict': [1]}, listed)
    with pytest.raises(ValueError, match=r'"state_dict" is a list'):
        check_checkpoint_fits(model, str(listed), 'cfg.py')


def test_version_is_written_once_and_cited_alike():
    import re
    import sys

    import fmkt_plugin
    setup_version = subprocess.run([sys.executable, osp.join(REPO, 'setup.py'), '--version'],
                                   capture_output=True, text=True, cwd=REPO).stdout.split()[-1]
    assert setup_version == fmkt_plugin.__version__
    cff = open(osp.join(REPO, 'CITATION.cff')).read()
    assert re.search(rf'^version: {re.escape(fmkt_plugin.__version__)}$', cff, re.M)
    assert 'Apache License' in open(osp.join(REPO, 'LICENSE')).read()
