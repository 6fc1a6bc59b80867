"""Fixes for mmcv 2.1.0: Fix 12 (mmcv-lite's missing ``mmcv._ext``, answered by
``mmcv_ext.py``) and Fix 9 (a compiled mmcv without CUDA kernels, used on a GPU).

Fix 9's upstream problem: mmcv 2.1.0 has no wheels for current torch, so it is built from source,
and a build made on a machine without a GPU (or with ``FORCE_CUDA=0``) has CPU kernels only. Its
ops dispatch by device inside the compiled ``mmcv._ext`` module; a CUDA tensor then stops with
"implementation for device cuda:0 not found" in the first iteration. mmdet 3.3 reaches three such
ops in the shipped detection configs: ``nms`` (every detector's test path and Faster R-CNN's RPN,
through ``batched_nms``), ``roi_align_forward/backward`` (Faster R-CNN's RoI extractor) and
``sigmoid_focal_loss_forward/backward`` (RetinaNet's ``FocalLoss`` takes the mmcv op whenever the
prediction is on CUDA).

The fix: where mmcv reports no CUDA kernels (``get_compiling_cuda_version() == 'not available'``),
the ``ext_module`` global of every ``mmcv.ops`` module is replaced by :class:`RoutedExt`, which
passes CPU calls through unchanged and routes CUDA calls of those ops to torchvision's kernels
(nms, RoIAlign) or to a torch implementation of mmcv's own focal-loss kernel: the routes of
``mmcv_ext.py`` (Fix 12), which with mmcv-lite serve every call. Any other op called on a CUDA
tensor fails at once with an error that names the op and the bootstrap switch that builds mmcv's
CUDA kernels. :func:`force_routes` sends CPU tensors down the routes too, so that the
routes are tested against mmcv's CPU kernels on a machine without a GPU.
"""
import contextlib
import sys
import types
from typing import Iterator, List, Optional

import torch

from .mmcv_ext import ROUTED_OPS

__all__ = ['RoutedExt', 'ROUTED_OPS', 'install', 'force_routes', 'mmcv_has_cuda_kernels',
           'mmcv_is_lite', 'op_modules', 'fix_mmcv_lite_ext',
           'fix_mmcv_ops_without_cuda_kernels']

_FORCE: List[Optional[list]] = []  # stack of force_routes() contexts (each an optional call log)
BUILD_HINT = ('rebuild mmcv with its CUDA kernels: FMKT_MMCV=full FMKT_MMCV_CUDA=1 bash '
              'scripts/bootstrap.sh (FMKT_MMCV_CUDA=auto, the default, does this on a machine '
              'where torch sees a GPU)')


# ---------------------------------------------------------------------------------------------
# The stand-in for mmcv._ext
# ---------------------------------------------------------------------------------------------
def _on_cuda(args, kwargs) -> bool:
    return any(isinstance(a, torch.Tensor) and a.is_cuda
               for a in (*args, *kwargs.values()))


class RoutedExt:
    """Stands in for mmcv's compiled ``_ext`` module in the ``mmcv.ops`` modules.

    Every attribute is the compiled one; a function called with a CUDA tensor (or with any
    tensor inside :func:`force_routes`) goes to its route in :data:`ROUTED_OPS`, or fails with
    an error naming the op.

    Args:
        ext: mmcv's compiled ``_ext`` module.
    """

    def __init__(self, ext) -> None:
        self._ext = ext

    def __getattr__(self, name: str):
        compiled = getattr(self._ext, name)
        if not callable(compiled):
            return compiled
        route = ROUTED_OPS.get(name)

        def call(*args, **kwargs):
            on_cuda = _on_cuda(args, kwargs)
            if not (_FORCE or on_cuda):
                return compiled(*args, **kwargs)
            if route is None:
                where = 'a CUDA tensor' if on_cuda else 'a tensor (routes forced)'
                raise RuntimeError(f"mmcv op '{name}' was called on {where}, but this mmcv was "
                                   f'built without CUDA kernels and fmkt has no route for it; '
                                   f'{BUILD_HINT}')
            if _FORCE and _FORCE[-1] is not None:
                _FORCE[-1].append(name)
            return route(*args, **kwargs)

        call.__name__ = name
        self.__dict__[name] = call  # built once per op
        return call

    def __repr__(self) -> str:
        return f'RoutedExt({self._ext!r})'


@contextlib.contextmanager
def force_routes(calls: Optional[list] = None) -> Iterator[Optional[list]]:
    """Send every mmcv op call down the routes, whatever the device (for tests on CPU).

    Args:
        calls: a list that receives the name of every routed op called inside the context.
    """
    _FORCE.append(calls)
    try:
        yield calls
    finally:
        _FORCE.pop()


def mmcv_is_lite() -> bool:
    """Whether ``mmcv._ext`` is fmkt's torch/torchvision provider (mmcv-lite, Fix 12) rather
    than a compiled module."""
    from mmcv import _ext
    return getattr(_ext, 'FMKT_PROVIDER', False) is True


def mmcv_has_cuda_kernels() -> bool:
    """Whether the installed mmcv was compiled with its CUDA kernels."""
    from mmcv.ops import get_compiling_cuda_version
    return get_compiling_cuda_version() != 'not available'


def install() -> bool:
    """Put :class:`RoutedExt` in every loaded ``mmcv.ops`` module when mmcv has no CUDA kernels.

    Returns:
        Whether the stand-in is in place (False with mmcv-lite, whose ``_ext`` is Fix 12's
        routes already, and with a CUDA build of mmcv).
    """
    try:
        import mmcv.ops  # noqa: F401  (loads every op module)
        from mmcv import _ext
    except ImportError:  # mmcv-lite with the provider switched off (FMKT_MMCV_EXT=0)
        return False
    if mmcv_is_lite() or mmcv_has_cuda_kernels():
        return False
    routed = None
    for module in op_modules():
        if module.ext_module is _ext:
            routed = routed or RoutedExt(_ext)
            module.ext_module = routed
        elif isinstance(module.ext_module, RoutedExt):
            routed = module.ext_module
    return routed is not None


def op_modules() -> List[types.ModuleType]:
    """The loaded ``mmcv.ops`` modules that call the compiled ops through ``ext_module``."""
    return [module for name, module in list(sys.modules.items())
            if name.startswith('mmcv.ops.') and module is not None
            and hasattr(module, 'ext_module')]


def fix_mmcv_lite_ext() -> bool:
    """Fix 12: mmcv-lite has no compiled ``mmcv._ext``, so ``import mmcv.ops`` fails.

    Upstream: mmcv 2.1.0 has no wheels for current torch, and the pure-python mmcv-lite 2.1.0
    ships no ``mmcv._ext``: ``import mmcv.ops`` (so ``import mmdet.models``) fails with "No
    module named 'mmcv._ext'". The provider (``mmcv_ext.py``) answers it where no compiled module
    exists. The plugin's install registers its finder at interpreter start
    (``fmkt_mmcv_ext_hook.pth``); this registers it where that did not run (a checkout on
    ``PYTHONPATH``, ``python -S``).

    Versions: mmcv-lite 2.1.0, any torch.
    Fails without it (tests/test_mmcv_ops_route.py):
        test_without_the_hook_mmcv_lite_has_no_ops
    Returns whether mmcv-lite's ``_ext`` is the provider.
    """
    try:
        import fmkt_mmcv_ext_hook
    except ImportError:  # the plugin's package without its install (nothing to answer from)
        return False
    fmkt_mmcv_ext_hook.register()
    try:
        return mmcv_is_lite()
    except ImportError:  # no mmcv at all, or FMKT_MMCV_EXT=0 with mmcv-lite
        return False


def fix_mmcv_ops_without_cuda_kernels() -> bool:
    """Fix 9: mmcv built without CUDA kernels stops on the first CUDA tensor ("implementation
    for device cuda:0 not found"); the problem and the routes are this module's docstring.

    Versions: mmcv 2.1.0 compiled without CUDA (``FORCE_CUDA=0`` or no GPU at build time).
    Fails without it (tests/test_mmcv_ops_route.py):
        test_an_op_without_route_fails_at_once_naming_the_op_and_the_switch
    Returns whether the routed stand-in is in place.
    """
    return install()
