"""DDP on CPU: tools/dist_train.sh, 2 processes (gloo) against 1 process with the whole batch."""
import json
import os
import os.path as osp
import socket
import subprocess
import sys

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

TESTS = osp.dirname(osp.abspath(__file__))
BATCH = 8  # total batch: 1 process x 8, or 2 processes x 4
EPOCHS = 2
SIZE = 32


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([REPO, TESTS, env.get('PYTHONPATH', '')])
    env['OMP_NUM_THREADS'] = '1'  # same in both runs (torchrun would set 1 anyway)
    env['PYTHON'] = sys.executable
    env['PORT'] = str(_free_port())
    return env


def _config(tmp_path, data_root, teacher_ckpt, batch_size, probe_dir, name):
    options = tiny_cls_options(data_root, size=SIZE, batch_size=batch_size, epochs=EPOCHS)
    plain = [dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=SIZE, edge='short'),
             dict(type='CenterCrop', crop_size=SIZE), dict(type='PackInputs')]
    options.update({
        'model.teacher_ckpt': teacher_ckpt,
        'train_dataloader.dataset.pipeline': plain,
        # Sample-decomposable metric (KL, 'batchmean') instead of DIST's batch relations.
        'model.distiller.distill_losses.loss_fmkt.metric': dict(
            _delete_=True, type='KLDivergence', tau=1, loss_weight=1.0),
        'model.architecture.head.flow.num_steps': 2,
        'model.architecture.head.flow.test_num_steps': 2,
        # BN with frozen statistics: batch statistics of 4 are not those of 8.
        'model.architecture.backbone.norm_eval': True,
        'randomness': dict(seed=0, deterministic=True),
        'custom_imports': dict(imports=['fmkt_plugin', 'run_probe'], allow_failed_imports=False),
        'custom_hooks': [dict(type='EpochSeedHook'),
                         dict(type='RunProbeHook', out_dir=str(probe_dir))],
    })
    return write_child_config(tmp_path, config_path('fmkt/resnet34_res18_in1k.py'), options,
                              name=name)


def _records(probe_dir, world_size):
    out = []
    for rank in range(world_size):
        with open(osp.join(probe_dir, f'rank{rank}.json')) as f:
            out.append(json.load(f))
    return out


@pytest.mark.slow
def test_ddp_two_processes_match_one_process(teacher_ckpts, tmp_path):
    """2 processes x batch 4 (gloo, torchrun) = 1 process x batch 8, to 1e-5.

    DDP averages the ranks' gradients, so it reproduces the 1-process step exactly when the
    loss of a batch is the mean of per-sample terms and nothing else couples the samples:

    - metric KL divergence with ``batchmean`` (and CE): per-sample means. DIST is not used,
      its intra-class relation is computed across the batch;
    - BatchNorm with frozen statistics (``norm_eval=True`` on the student; the teacher is in
      eval mode anyway): in training mode each rank would normalise with its own 4 samples;
    - no random augmentation and a fixed N (2 steps): both runs do the same work per sample;
    - the same samples per step: 16 images, mmengine's ``DefaultSampler`` shuffles with
      ``seed + epoch`` and gives rank r the positions r, r + 2, ... of that order, so the
      two ranks' first 4 are exactly the 1-process batch of 8.

    Floating-point sums over 4 + 4 instead of 8 samples round differently, hence 1e-5 and not
    bit equality. Each rank records its own losses (``tests/run_probe.py``); the mean of the
    two ranks' losses must equal the 1-process loss at every iteration.
    """
    data, counts = write_imagenet_folder(str(tmp_path / 'data'), num_classes=4,
                                         per_class={'train': 4, 'val': 1}, size=SIZE)
    assert counts == {'train': 16, 'val': 4}
    runs = {}
    for world_size in (1, 2):
        probe = tmp_path / f'probe{world_size}'
        probe.mkdir()
        cfg = _config(tmp_path, data, teacher_ckpts['resnet34_8xb32_in1k'],
                      BATCH // world_size, probe, f'cfg{world_size}.py')
        work = str(tmp_path / f'work{world_size}')
        if world_size == 1:
            cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg, '--work-dir', work]
        else:
            cmd = ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), cfg, '2', '--work-dir', work]
        runs[world_size] = (subprocess.Popen(cmd, env=_env(), cwd=str(tmp_path),
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                             text=True), probe, work)
    for world_size, (proc, _, _) in runs.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f'{world_size} process(es) failed:\n{out[-4000:]}'
        assert_log_trained_stably(runs[world_size][2], world_size=world_size)

    (single, ), (rank0, rank1) = _records(runs[1][1], 1), _records(runs[2][1], 2)
    iters = 16 // BATCH * EPOCHS
    assert rank0['world_size'] == 2 and rank1['rank'] == 1
    assert len(single['losses']) == len(rank0['losses']) == len(rank1['losses']) == iters
    # The ranks saw different halves of the batch, and training moved the loss.
    assert all(abs(a - b) > 1e-4 for a, b in zip(rank0['losses'], rank1['losses']))
    assert abs(single['losses'][-1] - single['losses'][0]) > 1e-3
    mean = [(a + b) / 2 for a, b in zip(rank0['losses'], rank1['losses'])]
    torch.testing.assert_close(torch.tensor(mean, dtype=torch.float64),
                               torch.tensor(single['losses'], dtype=torch.float64),
                               rtol=0, atol=1e-5)

    final = f'epoch_{EPOCHS}.pth'
    one = torch.load(osp.join(runs[1][2], final), map_location='cpu')['state_dict']
    two = torch.load(osp.join(runs[2][2], final), map_location='cpu')['state_dict']
    assert one.keys() == two.keys()
    student = [k for k in one if k.startswith('architecture.')]
    assert any('head.flow.' in k for k in student)
    for key in one:
        if one[key].is_floating_point():
            torch.testing.assert_close(two[key], one[key], rtol=0, atol=1e-5, msg=key)
        else:
            assert torch.equal(two[key], one[key]), key

    # Only rank 0 writes into the work dir: checkpoints, last_checkpoint, config, logs.
    work2 = osp.abspath(runs[2][2])
    assert rank1['written'] == [], rank1['written']
    written = {osp.relpath(p, work2) for p in rank0['written']}
    assert {final, 'last_checkpoint', f'cfg{2}.py'} <= written
    assert not any(name.startswith('epoch_1') for name in written)  # interval = EPOCHS
    checkpoints = sorted(n for n in os.listdir(work2) if n.endswith('.pth'))
    assert checkpoints == [final]
