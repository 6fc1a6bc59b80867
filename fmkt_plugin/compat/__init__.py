"""Fixes for upstream packages on current PyTorch, applied once on ``import fmkt_plugin``.

Every fix here names the upstream problem it works around and has a test in
``tests/test_compat.py`` that fails without it. Nothing in site-packages is edited: fixes are
stand-in modules placed in ``sys.modules`` before the broken import, allow-lists handed to
PyTorch, an entry added to an upstream table, or a function or method replaced in an upstream
module or class at import.

With these fixes every checkpoint that mmengine loads, local or by URL (including files in the
torch hub cache), is unpickled with ``weights_only=True`` and the allow-list of Fix 2
(Fix 5 for URLs); a file it refuses raises ``CheckpointRefused`` naming the file and what was
refused (``checkpoint_refusal.py``). Code that calls ``torch.load(weights_only=False)`` itself is
not covered.
"""
import os
import os.path as osp
import sys
import types
from typing import List

__all__ = ['apply_all', 'applied_fixes', 'MMENGINE_CHECKPOINT_SAFE_GLOBALS']

_APPLIED: List[str] = []


# ---------------------------------------------------------------------------------------------
# Fix 1: mmrazor 1.0.0 does not import on torch >= 2.0.
# Upstream: open-mmlab/mmrazor issue #632. ``mmrazor.structures.quantization`` builds torch.ao
# quantization backend configs at import time with APIs that changed in torch 2.x, and
# ``mmrazor.models`` imports it unconditionally (through the quantizers), so
# ``import mmrazor.models`` fails. The fix was only made on mmrazor's unreleased main branch.
# Distillation never touches quantization, so we register a stand-in for that one module
# exposing the two names the rest of mmrazor imports from it. Using quantization then fails with
# a clear message instead of at import time.
# ---------------------------------------------------------------------------------------------
_QUANT_MODULE = 'mmrazor.structures.quantization'


class _QuantizationUnavailable:
    """Stand-in for mmrazor's quantization structures (not supported on torch 2.x)."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError(
            'mmrazor quantization is not available with fmkt_plugin on torch>=2.0 '
            '(mmrazor 1.0.0 builds torch.ao backend configs that no longer exist; '
            'upstream issue open-mmlab/mmrazor#632). Distillation is unaffected.')


def _fix_mmrazor_quantization_import() -> None:
    if _QUANT_MODULE in sys.modules:
        return
    stub = types.ModuleType(_QUANT_MODULE)
    stub.__doc__ = 'fmkt_plugin stand-in: quantization disabled on torch 2.x (mmrazor#632).'
    stub.BackendConfigs = {}
    stub.QConfigHandler = _QuantizationUnavailable
    stub.QSchemeHandler = _QuantizationUnavailable
    stub.__all__ = ['BackendConfigs', 'QConfigHandler', 'QSchemeHandler']
    stub.__fmkt_stub__ = True
    sys.modules[_QUANT_MODULE] = stub
    _APPLIED.append('mmrazor-quantization-import')


# ---------------------------------------------------------------------------------------------
# Fix 2: mmengine 0.10.x cannot resume from its own checkpoints on torch >= 2.6.
# Upstream: torch 2.6 changed ``torch.load``'s default to ``weights_only=True``; mmengine's
# ``load_from_local`` calls ``torch.load`` without the argument, and the checkpoints mmengine
# writes hold the ``message_hub`` state (``HistoryBuffer`` objects backed by numpy arrays), which
# the restricted unpickler rejects with ``UnpicklingError``. Turning weights_only off would allow
# arbitrary code execution from a checkpoint file, so instead we allow-list exactly the classes
# that mmengine's own checkpoints contain (``torch.serialization.add_safe_globals``: the list
# applies to every ``weights_only=True`` load in the process). A local checkpoint holding
# anything else (for example a pickled callable) still fails to load. Remote checkpoints (URLs)
# were loaded with ``weights_only=False`` by mmengine regardless of this list: Fix 5.
# ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, 'mean')``; allowing
# the real ``getattr`` would let a crafted file reach arbitrary attributes, so the name
# ``builtins.getattr`` is mapped to a restricted version that only resolves those methods.
# ---------------------------------------------------------------------------------------------
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


def _fix_mmengine_checkpoint_weights_only() -> None:
    import torch

    if not hasattr(torch.serialization, 'add_safe_globals'):  # pragma: no cover - torch < 2.4
        return
    MMENGINE_CHECKPOINT_SAFE_GLOBALS[:] = _mmengine_checkpoint_safe_globals()
    torch.serialization.add_safe_globals(MMENGINE_CHECKPOINT_SAFE_GLOBALS)
    _APPLIED.append('mmengine-checkpoint-weights-only')


# ---------------------------------------------------------------------------------------------
# Fix 3: mmengine 0.10.x writes checkpoints in place.
# Upstream: ``save_checkpoint`` serialises to memory and hands the bytes to
# ``LocalBackend.put``, which opens the final path with ``'wb'`` and writes into it. A process
# killed during that write (SIGKILL, OOM killer, node pre-emption, a file-size limit) leaves a
# truncated file under the final name, e.g. ``epoch_12.pth``, and when the name already existed
# the complete old file is gone too. We make ``put`` atomic with
# :func:`fmkt_plugin.utils.fileio.atomic_write`: a temporary file next to the target, flushed and
# fsynced, then ``os.replace``-d onto the target (atomic on POSIX within one file system). A
# killed write leaves only a hidden ``.<name>.tmp-<pid>-<token><ext>`` file; the target is
# either absent or still the previous complete file.
# ---------------------------------------------------------------------------------------------
def _atomic_local_put(self, obj: bytes, filepath) -> None:
    """``LocalBackend.put`` that never leaves a partly written file under ``filepath``."""
    from ..utils.fileio import atomic_write
    if not isinstance(obj, (bytes, bytearray, memoryview)):  # put() takes bytes; put_text text
        raise TypeError(f'LocalBackend.put: obj must be bytes, got {type(obj).__name__}')
    atomic_write(filepath, obj)


def _fix_mmengine_atomic_checkpoint_write() -> None:
    from mmengine.fileio.backends import LocalBackend

    if getattr(LocalBackend.put, '__fmkt_fix__', False):
        return
    _atomic_local_put.__fmkt_fix__ = True
    LocalBackend.put = _atomic_local_put
    _APPLIED.append('mmengine-atomic-checkpoint-write')


# ---------------------------------------------------------------------------------------------
# Fix 4: mmengine 0.10.x cannot run DDP on CPU (``--launcher pytorch`` without a GPU).
# Upstream: ``mmengine.dist.utils._init_dist_pytorch`` calls ``torch.cuda.set_device`` for every
# process that has no MLU/NPU/MUSA device, which raises without a CUDA device, and
# ``Runner.wrap_model`` always passes ``device_ids=[LOCAL_RANK]`` to DistributedDataParallel,
# which PyTorch rejects for a module on the CPU (``device_ids ... only work with ... GPU
# modules``). Without a CUDA device we start the process group without ``set_device`` (with
# gloo: NCCL needs GPUs, so a config's default ``nccl`` is switched, with a warning), and
# ``MMDistributedDataParallel`` drops ``device_ids`` for CPU modules. Nothing changes when CUDA
# (or another accelerator) is available.
# ---------------------------------------------------------------------------------------------
def _accelerator_available() -> bool:
    from mmengine.device import (
        is_cuda_available,
        is_mlu_available,
        is_musa_available,
        is_npu_available,
    )
    return (is_cuda_available() or is_mlu_available() or is_npu_available()
            or is_musa_available())


def _fix_mmengine_ddp_on_cpu() -> None:
    import mmengine.dist.utils as dist_utils
    from mmengine.model.wrappers import MMDistributedDataParallel

    if getattr(dist_utils._init_dist_pytorch, '__fmkt_fix__', False):
        return
    upstream_init = dist_utils._init_dist_pytorch

    def _init_dist_pytorch(backend, init_backend='torch', **kwargs) -> None:
        if _accelerator_available() or init_backend != 'torch':
            return upstream_init(backend, init_backend=init_backend, **kwargs)
        import torch.distributed as torch_dist
        torch_dist.init_process_group(backend=_cpu_backend(backend), **kwargs)

    _init_dist_pytorch.__fmkt_fix__ = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch

    upstream_ddp_init = MMDistributedDataParallel.__init__

    def __init__(self, module, *args, **kwargs) -> None:
        params = list(module.parameters())
        if kwargs.get('device_ids') and params and all(p.device.type == 'cpu' for p in params):
            kwargs['device_ids'] = None
            kwargs.pop('output_device', None)
        upstream_ddp_init(self, module, *args, **kwargs)

    MMDistributedDataParallel.__init__ = __init__
    _APPLIED.append('mmengine-ddp-on-cpu')


# ---------------------------------------------------------------------------------------------
# Fix 5: mmengine 0.10.x unpickles checkpoints given by URL with code execution.
# Upstream: ``mmengine.runner.checkpoint.load_from_http`` (the loader of ``http://`` and
# ``https://`` paths, and through it of ``torchvision://``, ``open-mmlab://`` and ``mmcls://``)
# calls ``mmengine.utils.dl_utils.load_url``, which on torch >= 1.7 is
# ``torch.hub.load_state_dict_from_url``; its ``weights_only`` defaults to False, so the
# downloaded file, or a file already in the hub cache (``<hub dir>/checkpoints/<name>``), is
# unpickled with arbitrary code execution. Every remote load of the stack goes through it:
# ``teacher_ckpt``, ``load_from`` and ``resume`` (a URL in ``last_checkpoint`` too),
# ``init_cfg=dict(type='Pretrained', checkpoint=URL)``, mmengine's
# ``get_model(..., pretrained=True)``. We replace ``load_url`` where mmengine looks it up by a
# wrapper that always passes ``weights_only=True``: remote and cached files then go through the
# same restricted unpickler and allow-list (Fix 2) as local files.
# ---------------------------------------------------------------------------------------------
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
        from .checkpoint_refusal import as_refusal
        folder = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
        cached = osp.join(folder, file_name or osp.basename(urlparse(url).path))
        # the refusal of every loader (checkpoint_refusal.py), without torch's advice to
        # disable the check
        raise as_refusal(f'{url} (cached as {cached})', err) from None


def _fix_mmengine_remote_checkpoint_weights_only() -> None:
    import mmengine.runner.checkpoint as mm_checkpoint
    import mmengine.utils.dl_utils as dl_utils
    import mmengine.utils.dl_utils.hub as dl_hub

    if getattr(mm_checkpoint.load_url, '__fmkt_fix__', False):
        return
    _safe_load_url.__fmkt_fix__ = True
    for module in (mm_checkpoint, dl_utils, dl_hub):
        if hasattr(module, 'load_url'):
            module.load_url = _safe_load_url
    _APPLIED.append('mmengine-remote-checkpoint-weights-only')


# ---------------------------------------------------------------------------------------------
# Fix 6: mmengine 0.10.x cannot start a Slurm job on a node without a GPU.
# Upstream: ``mmengine.dist.utils._init_dist_slurm`` computes the local rank as
# ``SLURM_PROCID % torch.cuda.device_count()`` when ``SLURM_LOCALID`` is unset (a division by
# zero without GPUs) and always calls ``torch.cuda.set_device``, which fails without CUDA. Without
# an accelerator we set up the same environment (``MASTER_ADDR`` from ``scontrol`` unless set,
# ``MASTER_PORT``, ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``) and start the process group on the
# CPU, with gloo instead of nccl (as Fix 4 does for ``--launcher pytorch``).
# ---------------------------------------------------------------------------------------------
def _cpu_backend(backend: str) -> str:
    """nccl needs GPUs: switch to gloo on a CPU-only process, with a warning."""
    if backend != 'nccl':
        return backend
    import logging

    from mmengine.logging import print_log
    print_log('no CUDA device: using the gloo backend instead of nccl', 'current',
              logging.WARNING)
    return 'gloo'


def _fix_mmengine_slurm_on_cpu() -> None:
    import mmengine.dist.utils as dist_utils

    if getattr(dist_utils._init_dist_slurm, '__fmkt_fix__', False):
        return
    upstream = dist_utils._init_dist_slurm

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

    _init_dist_slurm.__fmkt_fix__ = True
    dist_utils._init_dist_slurm = _init_dist_slurm
    _APPLIED.append('mmengine-slurm-on-cpu')


# ---------------------------------------------------------------------------------------------
# Fix 7: mmengine 0.10.x ``CheckpointHook`` can lose every checkpoint of a run.
# Upstream: ``CheckpointHook._save_checkpoint_with_step`` deletes the oldest checkpoint (with
# ``max_keep_ckpts``) *before* it saves the new one, and writes ``work_dir/last_checkpoint`` in
# place with ``open(..., 'w')``. A process killed (or a save that fails) in between leaves no
# checkpoint at all with ``max_keep_ckpts=1``, and ``last_checkpoint`` naming a deleted file, or
# empty when the kill hits its write; ``--resume`` then has nothing to resume from. We keep the
# bookkeeping as upstream has it (the ids to keep are updated first, so the saved message hub
# holds them), save the new checkpoint, replace ``last_checkpoint`` atomically, and only then
# delete the outdated checkpoint.
# Upstream also writes the checkpoint's absolute path into ``last_checkpoint``, so a work dir that
# was moved or copied (to another disk, another node) resumed from the old place, or not at all.
# We write a local path relative to the work dir, and ``find_latest_checkpoint`` (where
# ``Runner.resume`` looks it up) reads a relative path against the work dir; absolute paths and
# URLs written before are read as they are.
# ---------------------------------------------------------------------------------------------
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


def _fix_mmengine_checkpoint_hook_order() -> None:
    import mmengine.runner.runner as mm_runner
    from mmengine.hooks import CheckpointHook

    if getattr(CheckpointHook._save_checkpoint_with_step, '__fmkt_fix__', False):
        return
    _save_checkpoint_with_step.__fmkt_fix__ = True
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step
    mm_runner.find_latest_checkpoint = _find_latest_checkpoint
    _APPLIED.append('mmengine-checkpoint-hook-save-before-delete')


# mmengine's local loader reports a refused checkpoint with torch's bare error (no file name,
# advice to load with weights_only=False): see fmkt_plugin/compat/checkpoint_refusal.py.
def _fix_mmengine_local_checkpoint_refusal() -> None:
    from .checkpoint_refusal import fix_mmengine_local_checkpoint_refusal
    if fix_mmengine_local_checkpoint_refusal():
        _APPLIED.append('mmengine-local-checkpoint-refusal')


def apply_all() -> None:
    """Apply every fix once (idempotent)."""
    if _APPLIED:
        return
    _fix_mmpretrain_multimodal_import()  # defined last in this file; must precede mmpretrain
    _fix_mmrazor_quantization_import()
    _fix_mmengine_checkpoint_weights_only()
    _fix_mmengine_atomic_checkpoint_write()
    _fix_mmengine_ddp_on_cpu()
    _fix_mmengine_remote_checkpoint_weights_only()
    _fix_mmengine_slurm_on_cpu()
    _fix_mmengine_checkpoint_hook_order()
    _fix_mmengine_local_checkpoint_refusal()
    _fix_mmcv_lite_ext()  # before Fix 9, the first ``import mmcv.ops`` of this list
    _fix_mmcv_ops_without_cuda_kernels()
    _fix_mmengine_fmkt_plugin_base_configs()
    _fix_mmengine_same_second_runners()
    _fix_mmrazor_strict_teacher_load()


def applied_fixes() -> List[str]:
    """Names of the fixes applied in this process."""
    return list(_APPLIED)


# ---------------------------------------------------------------------------------------------
# Fix 8: mmpretrain 1.2.0 does not import when transformers >= 5 is installed.
# Upstream: ``mmpretrain.utils.dependency.WITH_MULTIMODAL`` is true when the *distributions*
# pycocotools and transformers>=4.28 are installed; ``mmpretrain.models.multimodal`` then imports
# ``blip/language_model.py``, which imports ``apply_chunking_to_forward`` (and more) from
# ``transformers.modeling_utils``, names transformers 5 removed. The module catches the failure,
# sets ``PreTrainedModel = None`` and then fails on ``class BertPreTrainedModel(PreTrainedModel)``
# with "TypeError: NoneType takes no arguments", so ``import mmpretrain`` (which imports
# ``mmpretrain.models`` through ``mmpretrain.apis``) fails as a whole. Nothing of FM-KT uses the
# multimodal models. When those transformers names do not import, we load
# ``mmpretrain/utils/dependency.py`` by itself (``import mmpretrain`` would already import the
# models) with ``WITH_MULTIMODAL = False``, so mmpretrain registers its multimodal placeholders
# (which raise a clear ImportError when built) instead of importing them.
# ---------------------------------------------------------------------------------------------
_MMPRETRAIN_TRANSFORMERS_NAMES = ('PreTrainedModel', 'apply_chunking_to_forward',
                                  'find_pruneable_heads_and_indices', 'prune_linear_layer')


def _transformers_import_broken() -> bool:
    """Whether transformers is installed but lacks what mmpretrain's multimodal models import."""
    import importlib
    import importlib.util

    if importlib.util.find_spec('transformers') is None:
        return False
    try:
        module = importlib.import_module('transformers.modeling_utils')
        return not all(hasattr(module, name) for name in _MMPRETRAIN_TRANSFORMERS_NAMES)
    except Exception:  # any failure is what mmpretrain's bare ``except:`` swallows
        return True


def _fix_mmpretrain_multimodal_import() -> None:
    import importlib.util

    if 'mmpretrain' in sys.modules or not _transformers_import_broken():
        return  # too late to help, or nothing to fix
    spec = importlib.util.find_spec('mmpretrain')  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        return
    path = osp.join(list(spec.submodule_search_locations)[0], 'utils', 'dependency.py')
    if not osp.isfile(path):
        return
    dep_spec = importlib.util.spec_from_file_location('mmpretrain.utils.dependency', path)
    dependency = importlib.util.module_from_spec(dep_spec)
    dep_spec.loader.exec_module(dependency)
    dependency.WITH_MULTIMODAL = False
    sys.modules['mmpretrain.utils.dependency'] = dependency
    _APPLIED.append('mmpretrain-multimodal-transformers5')


# ---------------------------------------------------------------------------------------------
# Fix 9: mmcv built without CUDA kernels stops on the first CUDA tensor ("implementation for
# device cuda:0 not found"). The problem and the routes are described in ``mmcv_ops.py``.
# ---------------------------------------------------------------------------------------------
def _fix_mmcv_ops_without_cuda_kernels() -> None:
    from . import mmcv_ops
    if mmcv_ops.install():
        _APPLIED.append('mmcv-ops-cuda-route')


# ---------------------------------------------------------------------------------------------
# Fix 12: mmcv-lite has no compiled ``mmcv._ext``, so ``import mmcv.ops`` fails. The problem and
# the provider are described in ``mmcv_ext.py``; the plugin's install registers the finder at
# interpreter start (``fmkt_mmcv_ext_hook.pth``), and this registers it where that did not run
# (a checkout on ``PYTHONPATH``, ``python -S``).
# ---------------------------------------------------------------------------------------------
def _fix_mmcv_lite_ext() -> None:
    try:
        import fmkt_mmcv_ext_hook
    except ImportError:  # the plugin's package without its install (nothing to answer from)
        return
    fmkt_mmcv_ext_hook.register()
    from . import mmcv_ops
    try:
        if mmcv_ops.mmcv_is_lite():
            _APPLIED.append('mmcv-lite-ext')
    except ImportError:  # no mmcv at all, or FMKT_MMCV_EXT=0 with mmcv-lite
        pass


# ---------------------------------------------------------------------------------------------
# Fix 13: mmrazor 1.0.0 loads ``teacher_ckpt`` non-strictly.
# Upstream: ``SingleTeacherDistill.__init__`` (and through it ``FpnTeacherDistill``) calls
# mmengine's ``load_checkpoint(self.teacher, teacher_ckpt)`` with its default ``strict=False``: a
# checkpoint of another architecture only logs "missing keys" and the student is distilled from a
# partly random teacher. The shipped KD/DKD/DIST/PKD baselines (and users' MMRazor configs) use
# these classes. The name ``load_checkpoint`` in that one mmrazor module becomes fmkt's strict
# teacher loader (``models/algorithms/checks.py``: the restricted unpickler, errors that name the
# file and the missing and unexpected keys, non-finite weights refused); every other caller of
# mmengine's ``load_checkpoint`` is untouched.
# ---------------------------------------------------------------------------------------------
def _fix_mmrazor_strict_teacher_load() -> None:
    from mmrazor.models.algorithms.distill.configurable import single_teacher_distill as module

    if getattr(module.load_checkpoint, '__fmkt_fix__', False):
        return

    def load_checkpoint(model, filename, *args, **kwargs) -> None:
        from ..models.algorithms.checks import load_teacher_checkpoint
        load_teacher_checkpoint(model, filename)

    load_checkpoint.__fmkt_fix__ = True
    module.load_checkpoint = load_checkpoint
    _APPLIED.append('mmrazor-strict-teacher-load')


# ---------------------------------------------------------------------------------------------
# Fix 10: mmengine 0.10.x cannot inherit ``fmkt_plugin::path`` base configs.
# Upstream: ``mmengine.config.utils._get_package_and_cfg_path`` accepts ``package::path`` only
# for the packages hard-coded in ``mmengine.config.utils.MODULE2PACKAGE`` (OpenMMLab's own), so
# ``_base_ = ['fmkt_plugin::fmkt/resnet34_res18_in1k.py']`` fails with "mmengine does not support
# to load fmkt_plugin config". And ``mmengine.utils.get_installed_path`` (looked up by
# ``Config._get_config_path`` and ``read_base`` imports as the name bound in
# ``mmengine.config.config``) answers ``<distribution location>/<package>``: for an editable
# install that is ``<site-packages>/fmkt_plugin``, which does not exist (the package stays in the
# source tree), so ``<that>/.mim/configs/...`` is not found. We register ``fmkt_plugin`` in
# ``MODULE2PACKAGE`` and wrap ``get_installed_path`` where mmengine's config code looks it up:
# for fmkt_plugin, when the folder it returns does not exist, the folder of the imported package
# (``importlib.util.find_spec('fmkt_plugin').origin``) is returned instead, whose ``.mim`` the
# editable build links to the repository (setup.py). Other packages are answered as upstream does.
# ---------------------------------------------------------------------------------------------
_PACKAGE = 'fmkt_plugin'


def _fix_mmengine_fmkt_plugin_base_configs() -> None:
    import functools
    import importlib.util

    import mmengine.config.config as mm_config
    import mmengine.config.utils as mm_config_utils

    mm_config_utils.MODULE2PACKAGE.setdefault(_PACKAGE, _PACKAGE)
    if getattr(mm_config.get_installed_path, '__fmkt_fix__', False):
        return
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
    _APPLIED.append('mmengine-fmkt-plugin-base-configs')


# ---------------------------------------------------------------------------------------------
# Fix 11: mmengine 0.10.x runners started in the same second share one logger, message hub and
# visualizer.
# Upstream: ``Runner.__init__`` names its ``DefaultScope``, ``MMLogger``, ``MessageHub`` and
# ``Visualizer`` ``experiment_name``, which is ``<config file name>_<timestamp>`` with a timestamp
# in whole seconds, and ``ManagerMixin.get_instance`` hands back an existing instance of that name
# with its old arguments. A second runner built within the same second in one process (train then
# test through the python APIs, two configs of the same name) then writes its log into the first
# run's log file, its scalars into the first run's message hub and its visualisations into the
# first run's ``vis_data`` folder. ``Runner._experiment_name`` becomes a property whose setter
# appends ``_2``, ``_3``, ... while an instance of any such manager already holds the name; the
# first runner of a name keeps mmengine's name.
# ---------------------------------------------------------------------------------------------
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


def _fix_mmengine_same_second_runners() -> None:
    from mmengine.runner import Runner

    if isinstance(Runner.__dict__.get('_experiment_name'), property):
        return

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
    _APPLIED.append('mmengine-same-second-runners')

