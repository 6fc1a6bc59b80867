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

A second finder, :class:`MimPathFinder`, serves mim (which never imports the plugin): mim 0.3's
``get_installed_path`` answers ``<site-packages>/<first name of top_level.txt>`` when
``<site-packages>/fmkt_plugin`` does not exist, which is the case for an editable install (the
package stays in its source tree), so ``mim train fmkt_plugin CONFIG`` and ``mim search`` looked
for the configs in a folder that is not there. When ``mim.utils.utils`` is loaded, its
``get_installed_path`` is wrapped to answer, for ``fmkt_plugin`` only, the folder of the package
that Python imports (whose ``.mim`` the editable build links to the repository).
"""
import importlib.abc
import importlib.util
import os
import sys

__all__ = ['MmcvExtFinder', 'MimPathFinder', 'register', 'provider_file']

NAME = 'mmcv._ext'
MIM_UTILS = 'mim.utils.utils'
PACKAGE = 'fmkt_plugin'


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


def _package_dir():
    spec = importlib.util.find_spec(PACKAGE)
    return os.path.dirname(spec.origin) if spec and spec.origin else None


def _wrap_mim(module) -> None:
    upstream = module.get_installed_path

    def get_installed_path(package: str) -> str:
        path = upstream(package)
        if package == PACKAGE and not os.path.isdir(os.path.join(path, '.mim')):
            return _package_dir() or path
        return path

    get_installed_path.__wrapped__ = upstream
    module.get_installed_path = get_installed_path


class MimPathFinder(importlib.abc.MetaPathFinder):
    """Loads ``mim.utils.utils`` as the other finders would, then wraps its
    ``get_installed_path`` (before ``mim.utils`` and mim's commands bind the name)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != MIM_UTILS:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, MimPathFinder) or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        exec_module = spec.loader.exec_module

        def exec_and_wrap(module):
            exec_module(module)
            _wrap_mim(module)

        spec.loader.exec_module = exec_and_wrap
        return spec


def register() -> None:
    """Add the finders to ``sys.meta_path`` once per interpreter: the ``mmcv._ext`` one last,
    the mim one first (it only wraps what the others load)."""
    names = {type(f).__name__ for f in sys.meta_path}
    if MmcvExtFinder.__name__ not in names:
        sys.meta_path.append(MmcvExtFinder())
    if MimPathFinder.__name__ not in names:
        sys.meta_path.insert(0, MimPathFinder())
