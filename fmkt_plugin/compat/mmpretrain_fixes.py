"""Fixes for mmpretrain 1.2.0 (Fix 8: its import with transformers >= 5 installed).

Applied once by :func:`fmkt_plugin.compat.apply_all`, before anything imports mmpretrain.
"""
import os.path as osp
import sys

__all__ = ['fix_mmpretrain_multimodal_import', 'transformers_import_broken']


_MMPRETRAIN_TRANSFORMERS_NAMES = ('PreTrainedModel', 'apply_chunking_to_forward',
                                  'find_pruneable_heads_and_indices', 'prune_linear_layer')


def transformers_import_broken() -> bool:
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


def fix_mmpretrain_multimodal_import() -> bool:
    """Fix 8: mmpretrain 1.2.0 does not import when transformers >= 5 is installed.

    Upstream: ``mmpretrain.utils.dependency.WITH_MULTIMODAL`` is true when the *distributions*
    pycocotools and transformers>=4.28 are installed; ``mmpretrain.models.multimodal`` then imports
    ``blip/language_model.py``, which imports ``apply_chunking_to_forward`` (and more) from
    ``transformers.modeling_utils``, names transformers 5 removed. The module catches the failure,
    sets ``PreTrainedModel = None`` and then fails on ``class BertPreTrainedModel(PreTrainedModel)``
    with "TypeError: NoneType takes no arguments", so ``import mmpretrain`` (which imports
    ``mmpretrain.models`` through ``mmpretrain.apis``) fails as a whole. Nothing of FM-KT uses the
    multimodal models. When those transformers names do not import, we load
    ``mmpretrain/utils/dependency.py`` by itself (``import mmpretrain`` would already import the
    models) with ``WITH_MULTIMODAL = False``, so mmpretrain registers its multimodal placeholders
    (which raise a clear ImportError when built) instead of importing them.

    Versions: mmpretrain 1.2.0 with transformers >= 5.
    Fails without it (tests/test_compat.py):
        test_mmpretrain_with_transformers5_needs_fix
    Returns whether it was applied now.
    """
    import importlib.util

    if 'mmpretrain' in sys.modules or not transformers_import_broken():
        return False  # too late to help, or nothing to fix
    spec = importlib.util.find_spec('mmpretrain')  # locates the package without running it
    if spec is None or not spec.submodule_search_locations:
        return False
    path = osp.join(list(spec.submodule_search_locations)[0], 'utils', 'dependency.py')
    if not osp.isfile(path):
        return False
    dep_spec = importlib.util.spec_from_file_location('mmpretrain.utils.dependency', path)
    dependency = importlib.util.module_from_spec(dep_spec)
    dep_spec.loader.exec_module(dependency)
    dependency.WITH_MULTIMODAL = False
    sys.modules['mmpretrain.utils.dependency'] = dependency
    return True
