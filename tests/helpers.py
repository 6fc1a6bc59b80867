"""Shared helpers for the test-suite: small-run config overrides, tool loading, weight snapshots."""
import importlib
import importlib.util
import math
import os.path as osp
from types import ModuleType
from typing import Dict

import torch
from fixtures.smoke import (  # noqa: F401  (re-exported for the tests)
    GROWTH_LIMIT,
    SCALE_LR,
    divergence,
    logged_train_rows,
    nest,
    runtime_options,
    tiny_cls_options,
    write_child_config,
)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


#: the module behind each script of ``tools/`` (the scripts only call its ``main``)
TOOL_MODULES = {
    'train': 'fmkt_plugin.apis.train',
    'test': 'fmkt_plugin.apis.test',
    'convert_fmkt_ckpt_to_student': 'fmkt_plugin.apis.convert',
    'to_fmkt': 'fmkt_plugin.apis.to_fmkt',
}


def load_tool(name: str) -> ModuleType:
    """The module that ``tools/<name>.py`` runs: ``parse_args``, ``main`` (and ``build_runner``
    for ``train``), called with an argv list."""
    return importlib.import_module(TOOL_MODULES[name])


def load_script(name: str) -> ModuleType:
    """``scripts/<name>.py`` (a script, not a package) as a module."""
    spec = importlib.util.spec_from_file_location(f'fmkt_script_{name}',
                                                  osp.join(REPO, 'scripts', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_path(rel: str) -> str:
    return osp.join(REPO, 'configs', rel)


def random_teacher_config(rel: str):
    """A shipped config (``configs/<rel>``) whose teacher is meant to stay random (no
    checkpoint can be downloaded here)."""
    from mmengine.registry import DefaultScope

    from fmkt_plugin.apis.config import load_config
    from fmkt_plugin.models.algorithms import CheckedTeacherDistill
    from fmkt_plugin.registry import MODELS
    cfg = load_config(config_path(rel))
    cfg.model.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope('mmrazor'):
        algorithm = MODELS.get(cfg.model.type)
    if issubclass(algorithm, CheckedTeacherDistill):  # MMRazor's own take any teacher
        cfg.model.allow_random_teacher = True
    return cfg


def build_random_teacher_model(rel: str, init: bool = True):
    """``(cfg, model)``: :func:`random_teacher_config`'s model built with seed 0 (and its
    ``init_weights`` run when ``init``)."""
    from fmkt_plugin.registry import MODELS
    cfg = random_teacher_config(rel)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    if init:
        model.init_weights()
    return cfg, model


def register_toy_cifar100() -> str:
    """Register ``ToyCIFAR100``: mmpretrain's ``CIFAR100`` without the md5 check of the
    published archive, so that it reads the CIFAR-100-format folders the tests write
    (:func:`fixtures.write_cifar_folder`) exactly as it reads the real one."""
    from mmpretrain.datasets import CIFAR100
    from mmpretrain.registry import DATASETS
    if 'ToyCIFAR100' not in DATASETS.module_dict:

        class ToyCIFAR100(CIFAR100):
            train_list = [[name, None] for name, _ in CIFAR100.train_list]
            test_list = [[name, None] for name, _ in CIFAR100.test_list]
            meta = dict(CIFAR100.meta, md5=None)

        DATASETS.register_module(module=ToyCIFAR100)
    return 'ToyCIFAR100'


def tiny_cifar_options(data_root: str, batch_size: int = 2, epochs: int = 1) -> Dict:
    """cfg-options that run a CIFAR-100 config on a CIFAR-100-format folder, with the config's
    own pipelines (CIFAR images are read from the pickles, no resizing needed)."""
    opts = dict(runtime_options(epochs), **SCALE_LR)
    dataset_type = register_toy_cifar100()
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts.update({f'{key}.batch_size': batch_size, f'{key}.num_workers': 0,
                     f'{key}.persistent_workers': False,
                     f'{key}.dataset.type': dataset_type,
                     f'{key}.dataset.data_root': data_root})
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


def assert_trained_stably(runner, keys=()) -> None:
    """The run did not diverge: ``train/loss`` (and every key of ``keys``) finite at every logged
    iteration, ``train/loss`` never above :data:`GROWTH_LIMIT` x its first value, and, for a
    config with ``auto_scale_lr``, a learning rate no larger than the config's scaled to the
    run's batch (``lr x batch / base_batch_size``, the small-run options' rule)."""
    problem = divergence(scalar_history(runner, 'train/loss'))
    assert problem is None, problem
    for key in keys:
        values = scalar_history(runner, key)
        assert all_finite(values), f'{key} is not finite: {values}'
    _assert_lr_fits_the_batch(runner.cfg, runner.world_size,
                              max(scalar_history(runner, 'train/lr')))


def _assert_lr_fits_the_batch(cfg, world_size: int, used: float) -> None:
    base = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
    if base:
        batch = world_size * cfg.train_dataloader.batch_size
        limit = cfg.optim_wrapper.optimizer.lr * batch / base
        assert used <= limit * (1 + 1e-6), (
            f'trained at lr {used:g}, the config\'s lr is meant for a batch of {base}: at a batch '
            f'of {batch} use at most {limit:g} (auto_scale_lr.enable=True)')


def assert_log_trained_stably(work_dir: str, world_size: int = 1) -> None:
    """:func:`assert_trained_stably` for a run in another process (``tools/train.py``,
    ``dist_train.sh``, ``mim train``): the same rule on the losses and learning rates that
    mmengine logged into ``work_dir``, against the config it dumped there (cfg-options
    included)."""
    import glob

    from mmengine.config import Config
    rows = logged_train_rows(work_dir)
    problem = divergence([r['loss'] for r in rows])
    assert problem is None, f'{work_dir}: {problem}'
    dumped = sorted(glob.glob(osp.join(glob.escape(work_dir), '*', 'vis_data', 'config.py')))
    assert dumped, f'{work_dir}: no config dumped by the run'
    _assert_lr_fits_the_batch(Config.fromfile(dumped[-1]), world_size,
                              max(r['lr'] for r in rows))


def flatten(tree, prefix: str = '') -> Dict:
    """A nested dict as ``{'a.b.c': leaf}`` (lists and tuples are leaves): to compare resolved
    configs key by key."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(flatten(v, f'{prefix}.{k}' if prefix else str(k)))
        return out
    return {prefix: tree}
