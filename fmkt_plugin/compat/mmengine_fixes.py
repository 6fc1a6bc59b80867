"""Fixes for mmengine 0.10.x on current PyTorch and on machines without a GPU.

Checkpoints: loading with ``weights_only=True`` and mmengine's own metadata allow-listed (Fix 2),
a refusal that names the file (Fix 2b), URLs through the same restricted unpickler (Fix 5),
atomic writes (Fix 3), save-before-delete and a relative ``last_checkpoint`` (Fix 7).
Launchers: DDP and Slurm on CPU (Fixes 4 and 6). Configs: ``fmkt_plugin::`` bases (Fix 10).
Runners built in the same second kept apart (Fix 11). MMRazor 1.0's ``mmcls::`` configs read from
mmpretrain (Fix 15). Each fix is applied once by
:func:`fmkt_plugin.compat.apply_all`.
"""
import os
import os.path as osp
import pickle

from ..utils.checkpoint_refusal import as_refusal
from .patching import is_ours, replace_once

__all__ = ['MMENGINE_CHECKPOINT_SAFE_GLOBALS', 'fix_mmengine_checkpoint_weights_only',
           'fix_mmengine_local_checkpoint_refusal', 'fix_mmengine_atomic_checkpoint_write',
           'fix_mmengine_ddp_on_cpu', 'fix_mmengine_remote_checkpoint_weights_only',
           'fix_mmengine_slurm_on_cpu', 'fix_mmengine_checkpoint_hook_order',
           'fix_mmengine_fmkt_plugin_base_configs', 'fix_mmengine_same_second_runners',
           'fix_mmengine_mmcls_configs']


def _history_buffer_getattr(obj, name: str):
    """``getattr`` for unpickling, limited to ``HistoryBuffer``'s registered statistics."""
    import pickle

    from mmengine.logging import HistoryBuffer

    # min/max/current/mean are added to the registry lazily, by the first HistoryBuffer().
    allowed = {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'checkpoint asks for getattr({obj!r}, {name!r}); only mmengine HistoryBuffer '
        'statistics are allowed when loading with weights_only=True')


def _mmengine_checkpoint_safe_globals() -> list:
    import numpy as np
    from mmengine.logging import HistoryBuffer

    try:  # numpy >= 2 moved the pickling helpers to numpy._core
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar

    safe = [HistoryBuffer, _reconstruct, scalar, np.ndarray, np.dtype]
    # numpy pickles a dtype through its class (e.g. numpy.dtypes.Float64DType).
    dtype_classes = {type(np.dtype(code)) for code in '?bBhHiIlLqQefdgFDGSUV'}
    dtype_classes.add(type(np.dtype('O')))
    safe.extend(sorted(dtype_classes, key=lambda c: c.__name__))
    # pickle protocol 2 writes the module as ``__builtin__``, later protocols as ``builtins``.
    safe += [(_history_buffer_getattr, 'builtins.getattr'),
             (_history_buffer_getattr, '__builtin__.getattr')]
    return safe


MMENGINE_CHECKPOINT_SAFE_GLOBALS: list = []


def fix_mmengine_checkpoint_weights_only() -> bool:
    """Fix 2: mmengine 0.10.x cannot resume from its own checkpoints on torch >= 2.6.

    Upstream: torch 2.6 changed ``torch.load``'s default to ``weights_only=True``; mmengine's
    ``load_from_local`` calls ``torch.load`` without the argument, and the checkpoints mmengine
    writes hold the ``message_hub`` state (``HistoryBuffer`` objects backed by numpy arrays), which
    the restricted unpickler rejects with ``UnpicklingError``. Turning weights_only off would allow
    arbitrary code execution from a checkpoint file, so instead we allow-list exactly the classes
    that mmengine's own checkpoints contain (``torch.serialization.add_safe_globals``: the list
    applies to every ``weights_only=True`` load in the process). A local checkpoint holding
    anything else (for example a pickled callable) still fails to load. Remote checkpoints (URLs)
    were loaded with ``weights_only=False`` by mmengine regardless of this list: Fix 5.
    ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``; allowing
    the real ``getattr`` would let a crafted file reach arbitrary attributes, so the name
    ``builtins.getattr`` is mapped to a restricted version that only resolves those methods.

    Versions: mmengine 0.10.x on torch >= 2.6.
    Fails without it (tests/test_compat.py):
        test_mmengine_resume_checkpoint_needs_fix
    Returns whether it was applied now.
    """
    import torch

    if not hasattr(torch.serialization, 'add_safe_globals'):  # pragma: no cover - torch < 2.4
        return False
    MMENGINE_CHECKPOINT_SAFE_GLOBALS[:] = _mmengine_checkpoint_safe_globals()
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_SAFE_GLOBALS)
    return True


def _wrap_local_loader(upstream):
    """mmengine's ``load_from_local`` raising :class:`CheckpointRefused` on a refusal."""

    def load_from_local(filename: str, map_location=None):
        try:
            return upstream(filename, map_location)
        except pickle.UnpicklingError as err:
            # from None: torch's text (advice to load with weights_only=False) is not shown
            raise as_refusal(osp.expanduser(str(filename)), err) from None

    load_from_local.__fmkt_fix__ = True
    load_from_local.__doc__ = upstream.__doc__
    return load_from_local


def fix_mmengine_local_checkpoint_refusal() -> bool:
    """Fix 2b: mmengine 0.10.x reports a refused local checkpoint with torch's bare error.

    Upstream: on torch >= 2.6 mmengine's ``load_from_local`` (behind ``teacher_ckpt``,
    ``load_from``, ``--resume`` and ``work_dir/last_checkpoint``, ``init_cfg=dict(type=
    'Pretrained')``, the converter) calls ``torch.load`` with the default ``weights_only=True``. A
    file holding anything but tensors and the allow-listed metadata (Fix 2) raises torch's
    ``UnpicklingError``, which does not name the file and advises re-running with
    ``weights_only=False``, i.e. switching the protection off. The local loader is wrapped so
    that a refusal is a :class:`~fmkt_plugin.utils.checkpoint_refusal.CheckpointRefused` naming
    the file, what was refused and why; remote loads (Fix 5) and the plugin's own loaders use
    the same message.

    Versions: mmengine 0.10.x on torch >= 2.6.
    Fails without it (tests/test_compat.py):
        test_refused_local_checkpoint_is_named_with_the_fix
    Returns whether it was applied now.
    """
    import mmengine.runner.checkpoint as mm_checkpoint

    upstream = mm_checkpoint.CheckpointLoader._schemes.get('')
    if upstream is None or getattr(upstream, '__fmkt_fix__', False):
        return False
    wrapped = _wrap_local_loader(upstream)
    mm_checkpoint.CheckpointLoader.register_scheme('', wrapped, force=True)
    # load_from_openmmlab calls the module's function directly, not through the registry
    mm_checkpoint.load_from_local = wrapped
    return True


def _atomic_local_put(self, obj: bytes, filepath) -> None:
    """``LocalBackend.put`` that never leaves a partly written file under ``filepath``."""
    from ..utils.fileio import atomic_write
    if not isinstance(obj, (bytes, bytearray, memoryview)):  # put() takes bytes; put_text text
        raise TypeError(f'LocalBackend.put: obj must be bytes, got {type(obj).__name__}')
    atomic_write(filepath, obj)


def fix_mmengine_atomic_checkpoint_write() -> bool:
    """Fix 3: mmengine 0.10.x writes checkpoints in place.

    Upstream: ``save_checkpoint`` serialises to memory and hands the bytes to
    ``LocalBackend.put``, which opens the final path with ``'wb'`` and writes into it. A process
    killed during that write (SIGKILL, OOM killer, node pre-emption, a file-size limit) leaves a
    truncated file under the final name, e.g. ``epoch_12.pth``, and when the name already existed
    the complete old file is gone too. We make ``put`` atomic with
    :func:`fmkt_plugin.utils.fileio.atomic_write`: a temporary file next to the target, flushed and
    fsynced, then ``os.replace``-d onto the target (atomic on POSIX within one file system). A
    killed write leaves only a hidden ``.<name>.tmp-<pid>-<token><ext>`` file; the target is
    either absent or still the previous complete file.

    Versions: mmengine 0.10.x.
    Fails without it (tests/test_compat.py):
        test_killed_checkpoint_write_leaves_truncated_file_without_fix
    Returns whether it was applied now.
    """
    from mmengine.fileio.backends import LocalBackend

    return replace_once((LocalBackend, ), 'put', _atomic_local_put)


def _accelerator_available() -> bool:
    from mmengine.device import (
        is_cuda_available,
        is_mlu_available,
        is_musa_available,
        is_npu_available,
    )
    return (is_cuda_available() or is_mlu_available() or is_npu_available()
            or is_musa_available())


def fix_mmengine_ddp_on_cpu() -> bool:
    """Fix 4: mmengine 0.10.x cannot run DDP on CPU (``--launcher pytorch`` without a GPU).

    Upstream: ``mmengine.dist.utils._init_dist_pytorch`` calls ``torch.cuda.set_device`` for every
    process that has no MLU/NPU/MUSA device, which raises without a CUDA device, and
    ``Runner.wrap_model`` always passes ``device_ids=[LOCAL_RANK]`` to DistributedDataParallel,
    which PyTorch rejects for a module on the CPU (``device_ids ... only work with ... GPU
    modules``). Without a CUDA device we start the process group without ``set_device`` (with
    gloo: NCCL needs GPUs, so a config's default ``nccl`` is switched, with a warning), and
    ``MMDistributedDataParallel`` drops ``device_ids`` for CPU modules. Nothing changes when CUDA
    (or another accelerator) is available.

    Versions: mmengine 0.10.x, any torch.
    Fails without it (tests/test_compat.py):
        test_ddp_on_cpu_needs_fix
    Returns whether it was applied now.
    """
    import mmengine.dist.utils as dist_utils
    from mmengine.model.wrappers import MMDistributedDataParallel

    upstream_init = dist_utils._init_dist_pytorch
    if is_ours(upstream_init):
        return False

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs) -> None:
        if _accelerator_available() or init_backend != 'torch':
            return upstream_init(backend, init_backend=init_backend, **kwargs)
        import torch.distributed as torch_dist
        torch_dist.init_process_group(backend=_cpu_backend(backend), **kwargs)

    replace_once((dist_utils, ), '_init_dist_pytorch', _init_dist_pytorch)
    upstream_ddp_init = MMDistributedDataParallel.__init__

    def __init__(self, module, *args, **kwargs) -> None:
        params = list(module.parameters())
        if kwargs.get('device_ids') and params and all(p.device.type == 'cpu' for p in params):
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        upstream_ddp_init(self, module, *args, **kwargs)

    MMDistributedDataParallel.__init__ = __init__
    return True


def _safe_load_url(url: str,
                   model_dir=None,
                   map_location=None,
                   progress: bool = True,
                   check_hash: bool = False,
                   file_name=None,
                   weights_only: bool = True):
    """``load_url`` that unpickles with ``weights_only=True`` only, naming the URL on refusal."""
    import pickle
    from urllib.parse import urlparse

    import torch

    if not weights_only:
        raise ValueError(f'{url}: fmkt_plugin loads remote checkpoints with weights_only=True '
                         'only (a pickle can run code while it loads)')
    try:
        return torch.hub.load_state_dict_from_url(
            url, model_dir=model_dir, map_location=map_location, progress=progress,
            check_hash=check_hash, file_name=file_name, weights_only=True)
    except pickle.UnpicklingError as err:
        folder = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
        cached = osp.join(folder, file_name or osp.basename(urlparse(url).path))
        # the refusal of every loader (checkpoint_refusal.py), without torch's advice to
        # disable the check
        raise as_refusal(f'{url} (cached as {cached})', err) from None


def fix_mmengine_remote_checkpoint_weights_only() -> bool:
    """Fix 5: mmengine 0.10.x unpickles checkpoints given by URL with code execution.

    Upstream: ``mmengine.runner.checkpoint.load_from_http`` (the loader of ``http://`` and
    ``https://`` paths, and through it of ``torchvision://``, ``open-mmlab://`` and ``mmcls://``)
    calls ``mmengine.utils.dl_utils.load_url``, which on torch >= 1.7 is
    ``torch.hub.load_state_dict_from_url``; its ``weights_only`` defaults to False, so the
    downloaded file, or a file already in the hub cache (``<hub dir>/checkpoints/<name>``), is
    unpickled with arbitrary code execution. Every remote load of the stack goes through it:
    ``teacher_ckpt``, ``load_from`` and ``resume`` (a URL in ``last_checkpoint`` too),
    ``init_cfg=dict(type='Pretrained', checkpoint=URL)``, mmengine's
    ``get_model(..., pretrained=True)``. We replace ``load_url`` where mmengine looks it up by a
    wrapper that always passes ``weights_only=True``: remote and cached files then go through the
    same restricted unpickler and allow-list (Fix 2) as local files.

    Versions: mmengine 0.10.x, torch >= 1.7.
    Fails without it (tests/test_compat.py):
        test_hostile_teacher_ckpt_url_is_refused
        test_hostile_file_in_hub_cache_for_a_shipped_teacher_url_is_refused
    Returns whether it was applied now.
    """
    import mmengine.runner.checkpoint as mm_checkpoint
    import mmengine.utils.dl_utils as dl_utils
    import mmengine.utils.dl_utils.hub as dl_hub

    return replace_once((mm_checkpoint, dl_utils, dl_hub), 'load_url', _safe_load_url)


def _cpu_backend(backend: str) -> str:
    """nccl needs GPUs: switch to gloo on a CPU-only process, with a warning."""
    if backend != 'nccl':
        return backend
    import logging

    from mmengine.logging import print_log
    print_log('no CUDA device: using the gloo backend instead of nccl', 'current',
              logging.WARNING)
    return 'gloo'


def fix_mmengine_slurm_on_cpu() -> bool:
    """Fix 6: mmengine 0.10.x cannot start a Slurm job on a node without a GPU.

    Upstream: ``mmengine.dist.utils._init_dist_slurm`` computes the local rank as
    ``SLURM_PROCID % torch.cuda.device_count()`` when ``SLURM_LOCALID`` is unset (a division by
    zero without GPUs) and always calls ``torch.cuda.set_device``, which fails without CUDA. Without
    an accelerator we set up the same environment (``MASTER_ADDR`` from ``scontrol`` unless set,
    ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) and start the process group on the
    CPU, with gloo instead of nccl (as Fix 4 does for ``--launcher pytorch``).

    Versions: mmengine 0.10.x.
    Fails without it (tests/test_compat.py):
        test_slurm_launcher_on_cpu_needs_fix
    Returns whether it was applied now.
    """
    import mmengine.dist.utils as dist_utils

    upstream = dist_utils._init_dist_slurm
    if is_ours(upstream):
        return False

    def _init_dist_slurm(backend, port=None, init_backend='torch', **kwargs) -> None:
        if _accelerator_available() or init_backend != 'torch':
            return upstream(backend, port=port, init_backend=init_backend, **kwargs)
        import subprocess

        import torch.distributed as torch_dist
        proc_id = int(os.environ['SLURM_PROCID'])
        ntasks = int(os.environ['SLURM_NTASKS'])
        local_rank = int(os.environ.get('SLURM_LOCALID', proc_id))
        if port is not None:
            os.environ['MASTER_PORT'] = str(port)
        os.environ.setdefault('MASTER_PORT', '29500')  # torch.distributed's default
        if 'MASTER_ADDR' not in os.environ:
            node_list = os.environ['SLURM_NODELIST']
            os.environ['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {node_list} | head -n1')
        os.environ['WORLD_SIZE'] = str(ntasks)
        os.environ['LOCAL_RANK'] = str(local_rank)
        os.environ['RANK'] = str(proc_id)
        torch_dist.init_process_group(backend=_cpu_backend(backend), **kwargs)

    return replace_once((dist_utils, ), '_init_dist_slurm', _init_dist_slurm)


def _save_checkpoint_with_step(self, runner, step, meta) -> None:
    """``CheckpointHook._save_checkpoint_with_step``: save first, then delete the outdated."""
    from mmengine.dist import is_main_process

    from ..utils.fileio import atomic_write

    outdated = None
    if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
        # _save_checkpoint and _save_best_checkpoint may both save this step
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            outdated = self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(self.keep_ckpt_ids.popleft()))
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

    ckpt_filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    runner.save_checkpoint(
        self.out_dir,
        ckpt_filename,
        self.file_client_args,
        save_optimizer=self.save_optimizer,
        save_param_scheduler=self.save_param_scheduler,
        meta=meta,
        by_epoch=self.by_epoch,
        backend_args=self.backend_args,
        **self.args)
    if not is_main_process():
        return
    last = str(self.last_ckpt)
    if '://' not in last:
        last = osp.relpath(osp.abspath(last), osp.abspath(runner.work_dir))
    atomic_write(osp.join(runner.work_dir, 'last_checkpoint'), last)
    if outdated is not None and outdated != self.last_ckpt:
        if self.file_backend.isfile(outdated):
            self.file_backend.remove(outdated)
        elif self.file_backend.isdir(outdated):  # deepspeed saves folders
            self.file_backend.rmtree(outdated)


def _find_latest_checkpoint(path: str):
    """mmengine's ``find_latest_checkpoint``, with a relative entry read against ``path``."""
    from ..utils.checkpoint import resolve_last_checkpoint
    return resolve_last_checkpoint(path)


def fix_mmengine_checkpoint_hook_order() -> bool:
    """Fix 7: mmengine 0.10.x ``CheckpointHook`` can lose every checkpoint of a run.

    Upstream: ``CheckpointHook._save_checkpoint_with_step`` deletes the oldest checkpoint (with
    ``max_keep_ckpts``) *before* it saves the new one, and writes ``work_dir/last_checkpoint`` in
    place with ``open(..., 'w')``. A process killed (or a save that fails) in between leaves no
    checkpoint at all with ``max_keep_ckpts=1``, and ``last_checkpoint`` naming a deleted file, or
    empty when the kill hits its write; ``--resume`` then has nothing to resume from. We keep the
    bookkeeping as upstream has it (the ids to keep are updated first, so the saved message hub
    holds them), save the new checkpoint, replace ``last_checkpoint`` atomically, and only then
    delete the outdated checkpoint.
    Upstream also writes the checkpoint's absolute path into ``last_checkpoint``, so a work dir that
    was moved or copied (to another disk, another node) resumed from the old place, or not at all.
    We write a local path relative to the work dir, and ``find_latest_checkpoint`` (where
    ``Runner.resume`` looks it up) reads a relative path against the work dir; absolute paths and
    URLs written before are read as they are.

    Versions: mmengine 0.10.x.
    Fails without it (tests/test_compat.py):
        test_checkpoint_hook_keeps_the_last_checkpoint_when_a_save_fails
        test_a_moved_work_dir_resumes_from_its_own_last_checkpoint
    Returns whether it was applied now.
    """
    import mmengine.runner.runner as mm_runner
    from mmengine.hooks import CheckpointHook

    if not replace_once((CheckpointHook, ), '_save_checkpoint_with_step',
                        _save_checkpoint_with_step):
        return False
    return replace_once((mm_runner, ), 'find_latest_checkpoint', _find_latest_checkpoint)


_PACKAGE = 'fmkt_plugin'


def fix_mmengine_fmkt_plugin_base_configs() -> bool:
    """Fix 10: mmengine 0.10.x cannot inherit ``fmkt_plugin::path`` base configs.

    Upstream: ``mmengine.config.utils._get_package_and_cfg_path`` accepts ``package::path`` only
    for the packages hard-coded in ``mmengine.config.utils.MODULE2PACKAGE`` (OpenMMLab's own), so
    ``_base_ = ['fmkt_plugin::fmkt/resnet34_res18_in1k.py']`` fails with "mmengine does not support
    to load fmkt_plugin config". And ``mmengine.utils.get_installed_path`` (looked up by
    ``Config._get_config_path`` and ``read_base`` imports as the name bound in
    ``mmengine.config.config``) answers ``<distribution location>/<package>``: for an editable
    install that is ``<site-packages>/fmkt_plugin``, which does not exist (the package stays in the
    source tree), so ``<that>/.mim/configs/...`` is not found. We register ``fmkt_plugin`` in
    ``MODULE2PACKAGE`` and wrap ``get_installed_path`` where mmengine's config code looks it up:
    for fmkt_plugin, when the folder it returns does not exist, the folder of the imported package
    (``importlib.util.find_spec('fmkt_plugin').origin``) is returned instead, whose ``.mim`` the
    editable build links to the repository (setup.py). Other packages are answered as upstream does.

    Versions: mmengine 0.10.x.
    Fails without it (tests/test_compat.py):
        test_fmkt_plugin_base_configs_need_fix
        test_fmkt_plugin_base_configs_of_an_editable_install_need_the_path_fix
    Returns whether it was applied now.
    """
    import functools
    import importlib.util

    import mmengine.config.config as mm_config
    import mmengine.config.utils as mm_config_utils

    mm_config_utils.MODULE2PACKAGE.setdefault(_PACKAGE, _PACKAGE)
    if getattr(mm_config.get_installed_path, '__fmkt_fix__', False):
        return False
    upstream = mm_config.get_installed_path

    @functools.wraps(upstream)
    def get_installed_path(package: str) -> str:
        path = upstream(package)
        if package == _PACKAGE and not osp.isdir(path):
            spec = importlib.util.find_spec(package)
            if spec is not None and spec.origin is not None:
                return osp.dirname(spec.origin)
        return path

    get_installed_path.__fmkt_fix__ = True
    for module in (mm_config, mm_config_utils):
        if hasattr(module, 'get_installed_path'):
            module.get_installed_path = get_installed_path
    return True


def _manager_names() -> set:
    """The names of every live instance of mmengine's global managers (each ``ManagerMixin``
    class keeps its own instances, subclasses such as mmdet's visualizer included)."""
    from mmengine.utils import ManagerMixin
    names, todo = set(), [ManagerMixin]
    while todo:
        cls = todo.pop()
        names.update(getattr(cls, '_instance_dict', {}))
        todo.extend(cls.__subclasses__())
    return names


def fix_mmengine_same_second_runners() -> bool:
    """Fix 11: mmengine 0.10.x runners started in the same second share one logger, message hub and

    visualizer.
    Upstream: ``Runner.__init__`` names its ``DefaultScope``, ``MMLogger``, ``MessageHub`` and
    ``Visualizer`` ``experiment_name``, which is ``<config file name>_<timestamp>`` with a timestamp
    in whole seconds, and ``ManagerMixin.get_instance`` hands back an existing instance of that name
    with its old arguments. A second runner built within the same second in one process (train then
    test through the python APIs, two configs of the same name) then writes its log into the first
    run's log file, its scalars into the first run's message hub and its visualisations into the
    first run's ``vis_data`` folder. ``Runner._experiment_name`` becomes a property whose setter
    appends ``_2``, ``_3``, ... while an instance of any such manager already holds the name; the
    first runner of a name keeps mmengine's name.

    Versions: mmengine 0.10.x.
    Fails without it (tests/test_compat.py):
        test_runners_of_the_same_second_share_their_log_without_fix
    Returns whether it was applied now.
    """
    from mmengine.runner import Runner

    if isinstance(Runner.__dict__.get('_experiment_name'), property):
        return False

    def get(self) -> str:
        return self.__dict__['_fmkt_experiment_name']

    def set_(self, name: str) -> None:
        taken = _manager_names()
        unique, k = name, 1
        while unique in taken:
            k += 1
            unique = f'{name}_{k}'
        self.__dict__['_fmkt_experiment_name'] = unique

    Runner._experiment_name = property(get, set_)
    return True


def fix_mmengine_mmcls_configs() -> bool:
    """Fix 15: MMRazor 1.0's configs name ``mmcls::`` configs, and mmcls is gone.

    Upstream: MMRazor 1.0.0's classification configs inherit ``mmcls::_base_/...`` files and build
    their student and teacher from ``cfg_path='mmcls::resnet/...'``. mmcls 1.0 was renamed
    mmpretrain (1.0, April 2023) with the same config tree, and mmcls does not install next to
    current torch and mmengine, so mmengine stops with "mmcls is not installed" (bases) or "No
    module named 'mmcls'" (``mmengine.hub.get_model`` imports ``<package>.utils``). A few
    configs MMRazor names were renamed since (mmdet 3's ``faster-rcnn_*``, mmpretrain's
    ``deit-base_16xb64``). Where mmcls is not installed, ``mmcls::x`` is read as
    ``mmpretrain::x`` and a renamed config under its new name
    (:func:`fmkt_plugin.utils.legacy_configs.renamed_config`) wherever mmengine parses a
    ``package::path`` (bases, ``get_config``, ``get_model``); a config that ``get_config``
    returns has its ``mmcls.`` type scopes translated (``translate_mmcls_names``, which the
    plugin's ``load_config`` applies too).

    Versions: mmengine 0.10.x with mmpretrain 1.x and no mmcls.
    Fails without it (tests/test_compat.py):
        test_mmrazor_kd_config_loads_without_mmcls
    Returns whether it was applied now.
    """
    import importlib.util

    import mmengine.config.config as mm_config
    import mmengine.config.utils as mm_config_utils
    import mmengine.hub as hub
    import mmengine.hub.hub as hub_module

    from ..utils.legacy_configs import renamed_config, translate_mmcls_names
    if importlib.util.find_spec('mmcls') is not None or \
            importlib.util.find_spec('mmpretrain') is None or is_ours(hub_module.get_model):
        return False
    upstream_split = mm_config_utils._get_package_and_cfg_path
    upstream_model, upstream_config = hub_module.get_model, hub_module.get_config

    def _get_package_and_cfg_path(cfg_path: str):
        return upstream_split(renamed_config(cfg_path))

    def get_model(cfg_path: str, pretrained: bool = False, **kwargs):
        return upstream_model(renamed_config(cfg_path), pretrained, **kwargs)

    def get_config(cfg_path: str, pretrained: bool = False):
        cfg = upstream_config(renamed_config(cfg_path), pretrained)
        translate_mmcls_names(cfg)
        return cfg

    replace_once((mm_config_utils, mm_config, hub_module), '_get_package_and_cfg_path',
                 _get_package_and_cfg_path)
    replace_once((hub_module, hub), 'get_model', get_model)
    return replace_once((hub_module, hub), 'get_config', get_config)
