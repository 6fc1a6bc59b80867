"""Shared helpers for the test-suite: small-run config overrides, tool loading, weight snapshots."""
import importlib.util
import math
import os.path as osp
from typing import Dict

import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(name: str):
    """Import ``tools/<name>.py`` as a module (the tools are scripts, not a package)."""
    path = osp.join(REPO, 'tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'fmkt_tools_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_path(rel: str) -> str:
    return osp.join(REPO, 'configs', rel)


def tiny_cls_options(data_root: str, size: int = 32, batch_size: int = 2,
                     epochs: int = 1, replace_dataset: bool = False) -> Dict:
    """cfg-options that turn an ImageNet config into a CPU smoke run on a tiny folder.

    With ``replace_dataset`` the config's dataset (e.g. CIFAR-100) is replaced by a
    ``CustomDataset`` on the same ImageNet-format folder; model and recipe stay as shipped.
    """
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', scale=size),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs'),
    ]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='ResizeEdge', scale=size, edge='short'),
        dict(type='CenterCrop', crop_size=size),
        dict(type='PackInputs'),
    ]
    loader = dict(batch_size=batch_size, num_workers=0, persistent_workers=False)
    opts = {
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': epochs,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': epochs,
        'randomness': dict(seed=0, deterministic=False),
        'env_cfg.dist_cfg.backend': 'gloo',
    }
    for split, pipe, ann in (('train', train_pipeline, 'meta/train.txt'),
                             ('val', test_pipeline, 'meta/val.txt'),
                             ('test', test_pipeline, 'meta/val.txt')):
        key = f'{split}_dataloader'
        opts.update({f'{key}.{k}': v for k, v in loader.items()})
        dataset = dict(data_root=data_root, ann_file=ann,
                       data_prefix='train' if split == 'train' else 'val', pipeline=pipe)
        if replace_dataset:
            opts[f'{key}.dataset'] = dict(_delete_=True, type='CustomDataset', **dataset)
        else:
            opts.update({f'{key}.dataset.{k}': v for k, v in dataset.items()})
    return opts


def snapshot(module: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed_params(before: Dict[str, torch.Tensor], module: torch.nn.Module) -> int:
    """Number of floating-point parameters/buffers of ``module`` that differ from ``before``."""
    after = module.state_dict()
    return sum(1 for k, v in before.items()
               if v.is_floating_point() and not torch.equal(v, after[k]))


def scalar_history(runner, key: str):
    """All values logged for ``key`` (e.g. ``train/loss``) by the runner's message hub."""
    buf = runner.message_hub.log_scalars.get(key)
    assert buf is not None, f'{key} was never logged; have {sorted(runner.message_hub.log_scalars)}'
    return [float(x) for x in buf.data[0]]


def all_finite(values) -> bool:
    return len(values) > 0 and all(math.isfinite(v) for v in values)


def nest(options: Dict) -> Dict:
    """Turn ``{'a.b.c': 1}`` into ``{'a': {'b': {'c': 1}}}``."""
    out: Dict = {}
    for key, value in options.items():
        node = out
        *parents, leaf = key.split('.')
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def write_child_config(directory, base_config: str, options: Dict, name: str = 'child.py') -> str:
    """Write a config that inherits ``base_config`` and overrides ``options`` (dotted keys).

    This is how a user adapts a shipped config to their data, and it exercises the same
    inheritance machinery as the shipped configs themselves.
    """
    lines = [f'_base_ = [{base_config!r}]']
    for key, value in nest(options).items():
        lines.append(f'{key} = {value!r}')
    path = osp.join(str(directory), name)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path
