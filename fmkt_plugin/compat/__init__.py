"""Fixes for upstream packages on current PyTorch, applied once on ``import fmkt_plugin``.

One module per upstream package: :mod:`.mmengine_fixes`, :mod:`.mmrazor_fixes`,
:mod:`.mmpretrain_fixes`, :mod:`.mmcv_fixes`, and :mod:`.mmcv_ext`, the stand-in for mmcv-lite's
missing ``mmcv._ext``. Each fix's docstring names the upstream problem, the versions it applies to
and the test that fails without it. Nothing in site-packages is edited: fixes are stand-in
modules placed in ``sys.modules`` before the broken import, allow-lists handed to PyTorch, an
entry added to an upstream table, or a function or method replaced in an upstream module or class.

With these fixes every checkpoint that mmengine loads, local or by URL (including files in the
torch hub cache), is unpickled with ``weights_only=True`` and the allow-list of Fix 2 (Fix 5 for
URLs); a file it refuses raises ``CheckpointRefused`` naming the file and what was refused.
Code that calls ``torch.load(weights_only=False)`` itself is not covered.
"""
from typing import Callable, List, Tuple

from . import mmcv_fixes, mmengine_fixes, mmpretrain_fixes, mmrazor_fixes
from .mmengine_fixes import MMENGINE_CHECKPOINT_SAFE_GLOBALS

__all__ = ['apply_all', 'applied_fixes', 'FIXES', 'MMENGINE_CHECKPOINT_SAFE_GLOBALS']

#: (name, fix) in the order they run; each fix returns whether it applied
FIXES: Tuple[Tuple[str, Callable[[], bool]], ...] = (
    # before anything imports mmpretrain (mmrazor and mmdet's imports do)
    ('mmpretrain-multimodal-transformers5', mmpretrain_fixes.fix_mmpretrain_multimodal_import),
    ('mmrazor-quantization-import', mmrazor_fixes.fix_mmrazor_quantization_import),
    ('mmengine-checkpoint-weights-only', mmengine_fixes.fix_mmengine_checkpoint_weights_only),
    ('mmengine-atomic-checkpoint-write', mmengine_fixes.fix_mmengine_atomic_checkpoint_write),
    ('mmengine-ddp-on-cpu', mmengine_fixes.fix_mmengine_ddp_on_cpu),
    ('mmengine-remote-checkpoint-weights-only',
     mmengine_fixes.fix_mmengine_remote_checkpoint_weights_only),
    ('mmengine-slurm-on-cpu', mmengine_fixes.fix_mmengine_slurm_on_cpu),
    ('mmengine-checkpoint-hook-save-before-delete',
     mmengine_fixes.fix_mmengine_checkpoint_hook_order),
    ('mmengine-local-checkpoint-refusal', mmengine_fixes.fix_mmengine_local_checkpoint_refusal),
    # before Fix 9, whose check is the first ``import mmcv.ops`` of this list
    ('mmcv-lite-ext', mmcv_fixes.fix_mmcv_lite_ext),
    ('mmcv-ops-cuda-route', mmcv_fixes.fix_mmcv_ops_without_cuda_kernels),
    ('mmengine-fmkt-plugin-base-configs', mmengine_fixes.fix_mmengine_fmkt_plugin_base_configs),
    ('mmengine-same-second-runners', mmengine_fixes.fix_mmengine_same_second_runners),
    ('mmengine-mmcls-configs', mmengine_fixes.fix_mmengine_mmcls_configs),
    ('mmrazor-strict-teacher-load', mmrazor_fixes.fix_mmrazor_strict_teacher_load),
    ('mmrazor-module-inplace-false', mmrazor_fixes.fix_mmrazor_module_inplace_false),
    ('mmrazor-datafree-single-process', mmrazor_fixes.fix_mmrazor_datafree_single_process),
)

_APPLIED: List[str] = []
_DONE: List[bool] = []


def apply_all() -> None:
    """Apply every fix once (idempotent)."""
    if _DONE:
        return
    _DONE.append(True)
    _APPLIED.extend(name for name, fix in FIXES if fix())


def applied_fixes() -> List[str]:
    """Names of the fixes applied in this process."""
    return list(_APPLIED)
