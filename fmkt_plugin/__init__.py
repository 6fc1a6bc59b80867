"""fmkt_plugin: Knowledge Transfer with Flow Matching (FM-KT) for OpenMMLab MMRazor.

Importing the package applies the compatibility fixes in :mod:`fmkt_plugin.compat` (they must run
before the first ``mmrazor`` import) and registers all FM-KT components into MMRazor's registry.
"""
from . import compat

compat.apply_all()

from . import engine, models, rivals  # noqa: E402,F401  (registers components)
from .version import __version__  # noqa: E402

__all__ = ['compat', 'engine', 'models', 'rivals', '__version__']
