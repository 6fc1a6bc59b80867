"""Fixes for mmrazor 1.0.0 (its last release, April 2023) on current PyTorch.

Fix 1 lets ``import mmrazor.models`` work on torch >= 2.0; Fix 13 makes its single-teacher
distillers load ``teacher_ckpt`` strictly; Fix 14 makes its algorithms switch in-place modules
off again, so recorders keep what their modules returned; Fix 16 lets its data-free algorithms
train in one process. Each fix is applied once by
:func:`fmkt_plugin.compat.apply_all`.
"""
import sys
import types

from .patching import replace_once

__all__ = ['fix_mmrazor_quantization_import', 'fix_mmrazor_strict_teacher_load',
           'fix_mmrazor_module_inplace_false', 'fix_mmrazor_datafree_single_process']


_QUANT_MODULE = 'mmrazor.structures.quantization'


class _QuantizationUnavailable:
    """Stand-in for mmrazor's quantization structures (not supported on torch 2.x)."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError(
            'mmrazor quantization is not available with fmkt_plugin on torch>=2.0 '
            '(mmrazor 1.0.0 builds torch.ao backend configs that no longer exist; '
            'upstream issue open-mmlab/mmrazor#632). Distillation is unaffected.')


def fix_mmrazor_quantization_import() -> bool:
    """Fix 1: mmrazor 1.0.0 does not import on torch >= 2.0.

    Upstream: open-mmlab/mmrazor issue #632. ``mmrazor.structures.quantization`` builds torch.ao
    quantization backend configs at import time with APIs that changed in torch 2.x, and
    ``mmrazor.models`` imports it unconditionally (through the quantizers), so
    ``import mmrazor.models`` fails. The fix was only made on mmrazor's unreleased main branch.
    Distillation never touches quantization, so we register a stand-in for that one module
    exposing the two names the rest of mmrazor imports from it. Using quantization then fails with
    a clear message instead of at import time.

    Versions: mmrazor 1.0.0 on torch >= 2.0.
    Fails without it (tests/test_compat.py):
        test_mmrazor_models_import_fails_without_fix_and_works_with_it
    Returns whether it was applied now.
    """
    if _QUANT_MODULE in sys.modules:
        return False
    stub = types.ModuleType(_QUANT_MODULE)
    stub.__doc__ = 'fmkt_plugin stand-in: quantization disabled on torch 2.x (mmrazor#632).'
    stub.BackendConfigs = {}
    stub.QConfigHandler = _QuantizationUnavailable
    stub.QSchemeHandler = _QuantizationUnavailable
    stub.__all__ = ['BackendConfigs', 'QConfigHandler', 'QSchemeHandler']
    stub.__fmkt_stub__ = True
    sys.modules[_QUANT_MODULE] = stub
    return True


def fix_mmrazor_strict_teacher_load() -> bool:
    """Fix 13: mmrazor 1.0.0 loads ``teacher_ckpt`` non-strictly.

    Upstream: ``SingleTeacherDistill.__init__`` (and through it ``FpnTeacherDistill``) calls
    mmengine's ``load_checkpoint(self.teacher, teacher_ckpt)`` with its default ``strict=False``: a
    checkpoint of another architecture only logs "missing keys" and the student is distilled from a
    partly random teacher. The shipped KD/DKD/DIST/PKD baselines (and users' MMRazor configs) use
    these classes. The name ``load_checkpoint`` in that one mmrazor module becomes fmkt's strict
    teacher loader (``models/algorithms/checks.py``: the restricted unpickler, errors that name the
    file and the missing and unexpected keys, non-finite weights refused); every other caller of
    mmengine's ``load_checkpoint`` is untouched.

    Versions: mmrazor 1.0.0.
    Fails without it (tests/test_bad_inputs.py):
        test_baseline_teacher_checkpoint_of_another_architecture_is_an_error
    Returns whether it was applied now.
    """
    from mmrazor.models.algorithms.distill.configurable import single_teacher_distill as module

    def load_checkpoint(model, filename, *args, **kwargs) -> None:
        from ..models.algorithms.checks import load_teacher_checkpoint
        load_teacher_checkpoint(model, filename)

    return replace_once((module, ), 'load_checkpoint', load_checkpoint)


def _set_module_inplace_false(self, architecture, varstr: str = '') -> None:
    """``BaseAlgorithm.set_module_inplace_false`` for every submodule of ``architecture``."""
    import torch.nn as nn
    if not isinstance(architecture, nn.Module):
        return
    for module in architecture.modules():
        if isinstance(getattr(module, 'inplace', None), bool):
            module.inplace = False


def fix_mmrazor_module_inplace_false() -> bool:
    """Fix 14: mmrazor 1.0.0 leaves in-place modules in place on torch >= 2.0.

    Upstream: ``BaseAlgorithm.set_module_inplace_false`` (called for the student by
    ``BaseAlgorithm.__init__`` and for the teacher by ``SingleTeacherDistill.__init__``, unless
    ``module_inplace`` / ``teacher_module_inplace`` is set) is meant to switch every module with
    an ``inplace`` attribute (``ReLU`` and the like) to out-of-place, so that a recorder keeps
    the tensor its module returned. It recurses through ``module._modules`` only while that is an
    ``OrderedDict``; since torch 2.0 it is a plain ``dict``, so the walk stops at the top and
    every in-place module stays in place. A recorder on a layer whose output a later in-place
    module overwrites (a ``ModuleOutputs`` recorder on a BatchNorm followed by ``ReLU(inplace=
    True)``) then hands the loss the overwritten tensor, silently. The replacement walks
    ``module.modules()`` and sets every boolean ``inplace`` attribute to False.
    In-place *tensor* ops inside a ``forward`` (a residual block's ``out += identity``) are not
    modules and stay: docs/advanced_guides/compat.md says which recorders they reach.

    Versions: mmrazor 1.0.0 on torch >= 2.0.
    Fails without it (tests/test_compat.py):
        test_mmrazor_recorder_keeps_the_tensor_its_module_returned
    Returns whether it was applied now.
    """
    from mmrazor.models.algorithms.base import BaseAlgorithm
    return replace_once((BaseAlgorithm, ), 'set_module_inplace_false', _set_module_inplace_false)


def _generator_itself(self):
    """A generator outside DDP stands for its own ``module``."""
    return self


def fix_mmrazor_datafree_single_process() -> bool:
    """Fix 16: mmrazor 1.0.0's data-free distillation runs only in a distributed job.

    Upstream: ``DataFreeDistillation`` and ``DAFLDataFreeDistillation`` (the DAFL, DFAD and ZSKT
    configs) draw their latent codes with ``self.generator.module.latent_dim``: ``.module``
    exists only when a DDP wrapper (the configs' ``MMSeparateDistributedDataParallel``) wraps the
    generator. In one process, without a launcher, training stops at the first step with
    "'DAFLGenerator' object has no attribute 'module'". mmrazor's generators get a ``module``
    property that answers the generator itself; a wrapped generator (DDP) is unchanged, since
    the algorithm then holds the wrapper.

    Versions: mmrazor 1.0.0.
    Fails without it (tests/test_mmrazor_configs.py):
        test_mmrazor_config_loads_builds_trains_and_validates
    Returns whether it was applied now.
    """
    from mmrazor.models.architectures.generators.base_generator import BaseGenerator
    # a property (not replace_once): BaseGenerator has no ``module`` to replace
    if 'module' in vars(BaseGenerator):
        return False
    BaseGenerator.module = property(_generator_itself)
    return True
