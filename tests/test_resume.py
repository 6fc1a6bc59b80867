"""A run killed (SIGKILL) in the middle of an epoch and resumed ends bit-identical to one that
was never interrupted."""
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch
from fixtures import write_imagenet_folder
from helpers import (
    REPO,
    assert_log_trained_stably,
    config_path,
    tiny_cls_options,
    write_child_config,
)
from mmengine.config import Config

TESTS = osp.dirname(osp.abspath(__file__))
CONFIG = config_path('fmkt/resnet34_res18_in1k.py')
EPOCHS = 3
ITERS_PER_EPOCH = 4  # 16 images, batch 4


def _env() -> dict:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([REPO, TESTS, env.get('PYTHONPATH', '')])
    env['OMP_NUM_THREADS'] = '1'  # the same kernels (and summation order) in every run
    return env


def _train(cfg: str, work: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg, '--work-dir', work, *extra],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, what: str) -> None:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, f'{what} failed:\n{out[-4000:]}'


def _assert_identical(a, b, where: str) -> int:
    """torch.equal on every tensor of two nested checkpoint structures; returns the count."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
        return 1
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        return sum(_assert_identical(a[k], b[k], f'{where}.{k}') for k in a)
    if isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        return sum(_assert_identical(x, y, f'{where}[{i}]') for i, (x, y) in enumerate(zip(a, b)))
    assert a == b, where
    return 0


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bit_exact(teacher_ckpts, tmp_path):
    """Kill during epoch 2 of 3 (epoch_1.pth exists), ``--resume``, compare with a clean run.

    The config is the shipped logit-level FM-KT config with what makes every epoch random:
    random N (``num_steps=(1, 2, 4)``), ``RandomResizedCrop`` + ``RandomFlip`` run in the
    main process (``num_workers=0``, numpy's global generator), a shuffled sampler, BN in
    training mode and validation between the checkpoint and epoch 2. mmengine does not store
    generator states in checkpoints, so this only holds because the connector's draw of N is
    a function of buffers saved in the checkpoint and ``EpochSeedHook`` (enabled by the
    shipped config) reseeds the global generators from (seed, epoch) at every epoch.

    The interrupted run pauses after iteration 2 of epoch 2 (``tests/run_probe.py``) so the
    kill lands at a known point; it is then killed with SIGKILL, with no chance to clean up.
    """
    data, counts = write_imagenet_folder(str(tmp_path / 'data'), num_classes=4,
                                         per_class={'train': 4, 'val': 1}, size=40)
    assert counts['train'] == ITERS_PER_EPOCH * 4
    options = tiny_cls_options(data, size=32, batch_size=4, epochs=EPOCHS)
    options.update({
        'model.teacher_ckpt': teacher_ckpts['resnet34_8xb32_in1k'],
        'model.architecture.head.flow.num_steps': (1, 2, 4),
        'train_cfg.val_interval': 1,
        'default_hooks.checkpoint.interval': 1,
        'randomness': dict(seed=0, deterministic=True),
    })
    shipped_hooks = [dict(h) for h in Config.fromfile(CONFIG).get('custom_hooks', [])]
    assert any(h['type'] == 'EpochSeedHook' for h in shipped_hooks)
    cfg = write_child_config(tmp_path, CONFIG, options, name='fmkt.py')
    # The same config plus a probe that stops after iteration 2 of epoch 2 until killed.
    probe = tmp_path / 'probe'
    probe.mkdir()
    options.update({
        'custom_imports': dict(imports=['fmkt_plugin', 'run_probe'], allow_failed_imports=False),
        'custom_hooks': shipped_hooks + [
            dict(type='RunProbeHook', out_dir=str(probe), pause_at=(2, 2))],
    })
    cfg_pause = write_child_config(tmp_path, CONFIG, options, name='fmkt_pause.py')

    clean_dir, resumed_dir = str(tmp_path / 'clean'), str(tmp_path / 'resumed')
    clean = _train(cfg, clean_dir)
    victim = _train(cfg_pause, resumed_dir)
    deadline = time.monotonic() + 600
    while not (probe / 'paused').exists():
        assert victim.poll() is None, f'run ended before the kill:\n{victim.stdout.read()[-4000:]}'
        assert time.monotonic() < deadline, 'the run never reached epoch 2'
        time.sleep(0.5)
    assert osp.isfile(osp.join(resumed_dir, 'epoch_1.pth'))
    assert not osp.exists(osp.join(resumed_dir, 'epoch_2.pth'))
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL

    resumed = _train(cfg, resumed_dir, '--resume')
    _finish(clean, 'uninterrupted run')
    _finish(resumed, 'resumed run')
    assert_log_trained_stably(clean_dir)
    assert_log_trained_stably(resumed_dir)  # both logs: the killed run's and the resumed one's

    for epoch in (2, EPOCHS):
        name = f'epoch_{epoch}.pth'
        a = torch.load(osp.join(clean_dir, name), map_location='cpu')
        b = torch.load(osp.join(resumed_dir, name), map_location='cpu')
        assert a['meta']['epoch'] == b['meta']['epoch'] == epoch
        assert a['meta']['iter'] == b['meta']['iter'] == epoch * ITERS_PER_EPOCH
        flow_keys = [k for k in a['state_dict'] if '.head.flow.' in k]
        assert any(k.endswith('draw_count') for k in flow_keys)
        assert _assert_identical(a['state_dict'], b['state_dict'], 'state_dict') == len(
            a['state_dict'])
        assert _assert_identical(a['optimizer'], b['optimizer'], 'optimizer') > 0
        assert a['param_schedulers'] == b['param_schedulers']
