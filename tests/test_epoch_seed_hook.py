"""EpochSeedHook: an epoch's randomness depends on (seed, epoch) only, so resuming is exact."""
import glob
import os.path as osp
import random

import numpy as np
import pytest
import torch
from helpers import config_path
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from fmkt_plugin.engine import EpochSeedHook, epoch_seed


class _RandomData(torch.utils.data.Dataset):
    """Each item is drawn from numpy's and python's global generators, as augmentations do."""

    def __len__(self):
        return 4

    def __getitem__(self, index):
        return dict(inputs=torch.tensor([np.random.rand(), random.random()],
                                        dtype=torch.float32))


class _Recorder(BaseModel):
    """Keeps every input it sees plus one draw from torch's generator per step."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(2, 1)
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='loss'):
        noise = torch.rand(())
        self.seen.append(torch.cat([inputs.flatten(), noise.reshape(1)]).tolist())
        return dict(loss=(self.lin(inputs) * noise).mean())


_RUNS = iter(range(10**6))


def _runner(work_dir, epochs, hooks, resume=False, **loader):
    return Runner(
        model=_Recorder(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=_RandomData(), sampler=dict(type='DefaultSampler', shuffle=True),
            batch_size=2, collate_fn=dict(type='default_collate'),
            **dict(dict(num_workers=0), **loader)),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=hooks,
        randomness=dict(seed=0),
        resume=resume,
        load_from=osp.join(str(work_dir), 'epoch_1.pth') if resume else None,
        default_scope=None,  # leave the registry scope of later tests alone
        experiment_name=f'epoch_seed_hook_{next(_RUNS)}')


def _resume_matches(tmp_path, hooks) -> bool:
    """Epochs 2-3 of a 3-epoch run vs. the same epochs resumed from epoch_1.pth."""
    clean = _runner(tmp_path / 'clean', 3, hooks)
    clean.train()
    _runner(tmp_path / 'resumed', 1, hooks).train()
    resumed = _runner(tmp_path / 'resumed', 3, hooks, resume=True)
    resumed.train()
    assert len(clean.model.seen) == 6 and len(resumed.model.seen) == 4
    return clean.model.seen[2:] == resumed.model.seen


def test_resume_repeats_the_epochs_with_the_hook(tmp_path):
    assert _resume_matches(tmp_path, [dict(type='EpochSeedHook')])


def test_resume_differs_without_the_hook(tmp_path):
    """mmengine keeps no generator state in checkpoints: the problem the hook exists for."""
    assert not _resume_matches(tmp_path, [])


def test_epoch_seed_values():
    seeds = {epoch_seed(s, e) for s in range(4) for e in range(4)}
    assert len(seeds) == 16  # no (s, e) / (e, s) or s + e collisions
    assert epoch_seed(0, 1) == epoch_seed(0, 1) != epoch_seed(0, 1, rank=1)
    assert all(0 <= s < 2**32 for s in seeds)


def test_hook_is_registered_and_checks_its_argument():
    hook = HOOKS.build(dict(type='EpochSeedHook', seed=3))
    assert isinstance(hook, EpochSeedHook) and hook.seed == 3
    with pytest.raises(ValueError, match='seed'):
        EpochSeedHook(seed='3')


def test_every_shipped_config_enables_it():
    """Baselines too: FM-KT and the methods it is compared with resume alike, exactly."""
    configs = sorted(glob.glob(config_path('fmkt/*.py')) + glob.glob(config_path('baselines/*.py')))
    assert len(configs) >= 20
    for path in configs:
        cfg = Config.fromfile(path)
        hooks = cfg.get('custom_hooks', [])
        assert [h['type'] for h in hooks].count('EpochSeedHook') == 1, path
        # and no persistent workers (mmdet's COCO base turns them on): see the next test
        loader = cfg.train_dataloader
        assert not loader.get('persistent_workers', False) or loader.num_workers == 0, path


def test_run_log_names_the_setting_that_breaks_an_exact_resume(tmp_path):
    """A config with persistent workers: the run log says that this setting makes a resume
    inexact, and how to change it."""
    runner = _runner(tmp_path, 1, [EpochSeedHook()], num_workers=1, persistent_workers=True)
    runner.train()
    logs = glob.glob(osp.join(str(tmp_path), '*', '*.log'))
    text = open(logs[0]).read()
    assert 'train_dataloader.persistent_workers=True (num_workers=1)' in text
    assert 'persistent_workers=False (or num_workers=0) for an exact resume' in text
    quiet = _runner(tmp_path / 'quiet', 1, [EpochSeedHook()])
    quiet.train()
    text = open(glob.glob(osp.join(str(tmp_path / 'quiet'), '*', '*.log'))[0]).read()
    assert 'persistent_workers' not in text
