"""Loading and adjusting configs the way OpenMMLab's ``tools/train.py`` does, with early checks."""
import os.path as osp
from typing import Optional, Union

from mmengine.config import Config

from ..utils.legacy_configs import translate_mmcls_names
from .component_keys import check_component_keys

__all__ = ['load_config', 'build_runner_config', 'check_dataset_not_empty']


def load_config(config: Union[str, Config], cfg_options: Optional[dict] = None) -> Config:
    """Load a config file (``mmpretrain::``/``mmdet::``/``fmkt_plugin::`` bases allowed) and merge
    overrides.

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
    # an MMRazor 1.0 config written for mmcls: its scopes and renamed classes in mmpretrain's
    translate_mmcls_names(cfg)
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
                        load_from: Optional[str] = None,
                        auto_scale_lr: bool = False) -> Config:
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
        load_from: checkpoint (path or URL) to evaluate/initialise from (``tools/test.py``).
        auto_scale_lr: scale the learning rate by the actual total batch size over
            ``auto_scale_lr.base_batch_size`` (mmengine's linear scaling rule).
    """
    cfg = load_config(config, cfg_options)
    cfg.launcher = launcher
    _check_seed(cfg)
    _check_train_length(cfg)
    check_component_keys(cfg)  # a misspelt hook key would fail only after the first epoch

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
            _check_auto_resume(cfg.work_dir)
        else:
            from .checkpoint import check_resume_checkpoint
            check_resume_checkpoint(resume)  # names the file: empty, teacher, exported student
            cfg.resume = True
            cfg.load_from = resume

    if load_from is not None:
        # a URL is downloaded by mmengine and unpickled with weights_only=True (compat)
        if '://' not in load_from and not osp.isfile(load_from):
            raise FileNotFoundError(f'checkpoint file not found: {load_from}')
        cfg.load_from = load_from

    if auto_scale_lr:
        scale = cfg.get('auto_scale_lr', None)
        if not scale or 'base_batch_size' not in scale:
            raise ValueError('--auto-scale-lr: the config has no auto_scale_lr.base_batch_size '
                             '(the total batch size its learning rate is meant for)')
        scale['enable'] = True

    if no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    # Make sure our modules are registered in every process that builds from this config.
    imports = list(cfg.get('custom_imports', {}).get('imports', []))
    if 'fmkt_plugin' not in imports:
        cfg.custom_imports = dict(imports=['fmkt_plugin'] + imports, allow_failed_imports=False)
    return cfg


def _check_seed(cfg: Config) -> None:
    """``randomness.seed`` seeds numpy too, which takes only [0, 2**32 - 1] (and says so without
    naming the field, once the runner is being built)."""
    from ..utils.validation import check_int
    randomness = cfg.get('randomness', None)
    seed = randomness.get('seed', None) if isinstance(randomness, dict) else None
    if seed is not None:
        check_int(seed, 'randomness.seed', min_value=0, max_value=2**32 - 1)


def _check_train_length(cfg: Config) -> None:
    """``train_cfg.max_epochs`` / ``max_iters`` of at least 1 (0 fails inside mmengine's
    parameter schedulers with "end should be larger than begin", naming neither)."""
    from ..utils.validation import check_int
    train_cfg = cfg.get('train_cfg', None)
    if isinstance(train_cfg, dict):
        for key in ('max_epochs', 'max_iters'):
            if train_cfg.get(key, None) is not None:
                check_int(train_cfg[key], f'train_cfg.{key}')


def _check_auto_resume(work_dir: str) -> None:
    """``--resume`` (auto): check the file ``work_dir/last_checkpoint`` names, as ``--resume
    PATH`` is checked, before anything is built. A URL is left to the loader, which refuses a
    hostile file the same way, so that it is downloaded once."""
    from .checkpoint import check_resume_checkpoint, latest_checkpoint
    path = latest_checkpoint(work_dir)
    if path is not None and '://' not in path:
        record = osp.join(work_dir, 'last_checkpoint')
        check_resume_checkpoint(path, f'--resume (auto, from {record})')


def _count_samples(dataset_cfg) -> Optional[int]:
    """Samples a dataset config gives after its filters (mmdet's ``filter_cfg`` drops images
    without a usable box), read without serialising the dataset (``lazy_init``), which is where
    an empty one fails."""
    import copy

    from mmengine.registry import DATASETS
    cfg = copy.deepcopy(dataset_cfg)
    cfg['lazy_init'] = True
    try:
        dataset = DATASETS.build(cfg)
        dataset.data_list = dataset.load_data_list()
        return len(dataset.filter_data())
    except Exception:  # not a BaseDataset, or broken for another reason: report that one
        return None


def check_dataset_not_empty(runner, split: str) -> None:
    """Build ``runner``'s ``<split>_dataloader`` and refuse a dataset with no samples.

    An empty folder or an empty annotation file gives a dataset of length 0: mmengine's
    ``BaseDataset`` then fails inside numpy (``need at least one array to concatenate``), or,
    for a dataset that builds anyway, the run trains zero iterations without an error.

    Args:
        runner: an mmengine ``Runner``.
        split: ``'train'``, ``'val'`` or ``'test'``.

    Raises:
        ValueError: naming the dataloader field and where the dataset reads from.
    """
    dataset_cfg = (runner.cfg.get(f'{split}_dataloader') or {}).get('dataset')
    try:
        loader = getattr(runner, f'{split}_dataloader')  # builds it, as train()/test() would
    except Exception as err:
        if dataset_cfg is not None and _count_samples(dataset_cfg) == 0:
            raise ValueError(_empty_message(split, dataset_cfg)) from err
        raise
    dataset = getattr(loader, 'dataset', None)
    if dataset is not None and len(dataset) == 0:
        raise ValueError(_empty_message(split, dataset_cfg or {}))


def _empty_message(split: str, dataset_cfg) -> str:
    where = {k: dataset_cfg.get(k) for k in ('type', 'data_root', 'ann_file', 'data_prefix')
             if dataset_cfg.get(k)}
    filtered = ' after its filter_cfg' if dataset_cfg.get('filter_cfg') else ''
    return (f'{split}_dataloader.dataset: the dataset has no samples{filtered} (0 items; '
            f'{where}): check the folder and the annotation file')
