"""Loading and adjusting configs the way OpenMMLab's ``tools/train.py`` does, with early checks."""
import os.path as osp
from typing import Optional, Union

from mmengine.config import Config

__all__ = ['load_config', 'build_runner_config']


def load_config(config: Union[str, Config], cfg_options: Optional[dict] = None) -> Config:
    """Load a config file (``mmpretrain::``/``mmdet::`` bases allowed) and merge overrides.

    Raises:
        FileNotFoundError: the config file does not exist (names the file).
    """
    if isinstance(config, Config):
        cfg = config
    else:
        if '::' in config:  # package config, e.g. 'mmpretrain::resnet/resnet18_8xb32_in1k.py'
            from mmengine.hub import get_config
            cfg = get_config(config)
        else:
            if not osp.isfile(config):
                raise FileNotFoundError(f'config file not found: {config}')
            cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def build_runner_config(config: Union[str, Config],
                        work_dir: Optional[str] = None,
                        cfg_options: Optional[dict] = None,
                        launcher: str = 'none',
                        amp: bool = False,
                        resume: Optional[str] = None,
                        no_validate: bool = False,
                        load_from: Optional[str] = None) -> Config:
    """Return the runner config that ``tools/train.py``/``tools/test.py`` hand to mmengine.

    Args:
        config: config path or object.
        work_dir: overrides ``cfg.work_dir``; default ``./work_dirs/<config name>``.
        cfg_options: ``--cfg-options`` overrides.
        launcher: ``none``, ``pytorch``, ``slurm`` or ``mpi``.
        amp: wrap the optimizer in ``AmpOptimWrapper``.
        resume: ``'auto'`` resumes from the latest checkpoint in the work dir, a path resumes from
            that checkpoint, ``None`` starts fresh.
        no_validate: drop the validation loop.
        load_from: checkpoint to evaluate/initialise from (``tools/test.py``).
    """
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher

    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        name = osp.splitext(osp.basename(config))[0] if isinstance(config, str) else 'fmkt'
        cfg.work_dir = osp.join('./work_dirs', name.split('::')[-1].replace('/', '_'))

    if amp:
        optim_wrapper = cfg.get('optim_wrapper', None)
        if optim_wrapper is None:
            raise ValueError('--amp given but the config has no optim_wrapper')
        if optim_wrapper.get('type', 'OptimWrapper') == 'AmpOptimWrapper':
            pass
        else:
            optim_wrapper['type'] = 'AmpOptimWrapper'
            optim_wrapper.setdefault('loss_scale', 'dynamic')

    if resume is not None:
        if resume == 'auto':
            cfg.resume = True
            cfg.load_from = None
        else:
            if not osp.isfile(resume):
                raise FileNotFoundError(f'--resume: checkpoint file not found: {resume}')
            cfg.resume = True
            cfg.load_from = resume

    if load_from is not None:
        if not osp.isfile(load_from):
            raise FileNotFoundError(f'checkpoint file not found: {load_from}')
        cfg.load_from = load_from

    if no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    # Make sure our modules are registered in every process that builds from this config.
    imports = list(cfg.get('custom_imports', {}).get('imports', []))
    if 'fmkt_plugin' not in imports:
        cfg.custom_imports = dict(imports=['fmkt_plugin'] + imports, allow_failed_imports=False)
    return cfg
