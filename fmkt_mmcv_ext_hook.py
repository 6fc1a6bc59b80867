"""Answers ``import mmcv._ext`` with fmkt_plugin's torch/torchvision ops when mmcv has no
compiled ``_ext`` (mmcv-lite): the upstream problem and the ops are described in
``fmkt_plugin/compat/mmcv_ext.py`` (compat Fix 12).

This module is imported at interpreter start by ``fmkt_mmcv_ext_hook.pth``, which the plugin's
install puts in site-packages, so that ``import mmdet.models`` or ``import mmcv.ops`` works in a
script that never imports ``fmkt_plugin``, whatever it imports first; ``import fmkt_plugin``
registers it too. It must stay cheap (it runs in every interpreter of the environment): it
imports nothing beyond the standard library, and only the name ``mmcv._ext`` is ever answered.

The finder is appended to the end of ``sys.meta_path``, after the path finder, so a compiled
``mmcv._ext`` (an mmcv built from source, or installed by mim) is always found first and used
unchanged. ``FMKT_MMCV_EXT=0`` switches the finder off.
"""
import importlib.abc
import importlib.util
import os
import sys

__all__ = ['MmcvExtFinder', 'register', 'provider_file']

NAME = 'mmcv._ext'


def provider_file():
    """The path of ``fmkt_plugin/compat/mmcv_ext.py``, found without importing the plugin (its
    ``__init__`` imports the whole stack, which would re-enter ``import mmcv.ops``)."""
    spec = importlib.util.find_spec('fmkt_plugin')
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(base, 'compat', 'mmcv_ext.py')
        if os.path.isfile(path):
            return path
    return None


class MmcvExtFinder(importlib.abc.MetaPathFinder):
    """Finds ``mmcv._ext`` in the plugin's provider file, and nothing else."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != NAME or os.environ.get('FMKT_MMCV_EXT', '1') == '0':
            return None
        file = provider_file()
        return importlib.util.spec_from_file_location(NAME, file) if file else None


def register() -> None:
    """Append the finder to ``sys.meta_path`` once per interpreter."""
    if not any(type(f).__name__ == MmcvExtFinder.__name__ for f in sys.meta_path):
        sys.meta_path.append(MmcvExtFinder())
