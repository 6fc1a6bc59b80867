"""Fix 9: mmcv built without CUDA kernels, used on a GPU.

Upstream problem: mmcv 2.1.0 has no wheels for current torch, so it is built from source, and a
build made on a machine without a GPU (or with ``FORCE_CUDA=0``) has CPU kernels only. Its ops
dispatch by device inside the compiled ``mmcv._ext`` module; a CUDA tensor then stops with
"implementation for device cuda:0 not found" in the first iteration. mmdet 3.3 reaches three such
ops in the shipped detection configs: ``nms`` (every detector's test path and Faster R-CNN's RPN,
through ``batched_nms``), ``roi_align_forward/backward`` (Faster R-CNN's RoI extractor) and
``sigmoid_focal_loss_forward/backward`` (RetinaNet's ``FocalLoss`` takes the mmcv op whenever the
prediction is on CUDA).

The fix: where mmcv reports no CUDA kernels (``get_compiling_cuda_version() == 'not available'``),
the ``ext_module`` global of every ``mmcv.ops`` module is replaced by :class:`RoutedExt`, which
passes CPU calls through unchanged and routes CUDA calls of those ops to torchvision's kernels
(nms, RoIAlign) or to a torch implementation of mmcv's own focal-loss kernel. Any other op called
on a CUDA tensor fails at once with an error that names the op and the bootstrap switch that builds
mmcv's CUDA kernels. :func:`force_routes` sends CPU tensors down the routes too, so that the
routes are tested against mmcv's CPU kernels on a machine without a GPU.
"""
import contextlib
import sys
import types
from typing import Callable, Dict, Iterator, List, Optional

import torch

__all__ = ['RoutedExt', 'ROUTED_OPS', 'install', 'force_routes', 'mmcv_has_cuda_kernels',
           'op_modules']

_FLT_MIN = torch.finfo(torch.float32).tiny  # mmcv's kernels clamp the logs at FLT_MIN
_FORCE: List[Optional[list]] = []  # stack of force_routes() contexts (each an optional call log)
BUILD_HINT = ('rebuild mmcv with its CUDA kernels: FMKT_MMCV_CUDA=1 bash scripts/bootstrap.sh '
              '(FMKT_MMCV_CUDA=auto, the default, does this on a machine where torch sees a GPU)')


# ---------------------------------------------------------------------------------------------
# The routes: same arguments and in-place outputs as the mmcv._ext functions they replace
# ---------------------------------------------------------------------------------------------
def _nms(bboxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
         offset: int) -> torch.Tensor:
    """mmcv's ``nms``: indices kept, by decreasing score (equal scores in mmcv's order).

    ``offset`` 1 counts pixels inclusively (width = x2 - x1 + 1); moving x2, y2 by the offset
    gives torchvision the same areas and intersections.
    """
    from torchvision.ops import nms
    if bboxes.numel() == 0:
        return bboxes.new_zeros(0, dtype=torch.long)
    if offset:
        bboxes = torch.cat([bboxes[:, :2], bboxes[:, 2:4] + offset], dim=1)
    # mmcv visits boxes in the order of scores.sort(0, descending=True), which is not stable;
    # torchvision sorts stably. Sorting first, as mmcv does, gives equal scores mmcv's order.
    order = scores.sort(0, descending=True)[1]
    return order[nms(bboxes[order], scores[order], float(iou_threshold))]


def _check_avg_pool(pool_mode: int) -> None:
    if pool_mode != 1:
        raise RuntimeError("mmcv op 'roi_align' with pool_mode='max' was called on a CUDA tensor, "
                           'but this mmcv has no CUDA kernels and torchvision has no max-pooled '
                           f'RoIAlign to route it to; {BUILD_HINT}')


def _roi_align_forward(input, rois, output, argmax_y, argmax_x, aligned_height: int,
                       aligned_width: int, spatial_scale: float, sampling_ratio: int,
                       pool_mode: int, aligned: bool) -> None:
    _check_avg_pool(pool_mode)
    # same sampling grid as mmcv's: sampling_ratio 0 is adaptive (ceil(roi size / bins)), and
    # aligned shifts the RoI by half a pixel (both come from Detectron's RoIAlign)
    output.copy_(torch.ops.torchvision.roi_align(input, rois, float(spatial_scale),
                                                 int(aligned_height), int(aligned_width),
                                                 int(sampling_ratio), bool(aligned)))


def _roi_align_backward(grad_output, rois, argmax_y, argmax_x, grad_input, aligned_height: int,
                        aligned_width: int, spatial_scale: float, sampling_ratio: int,
                        pool_mode: int, aligned: bool) -> None:
    _check_avg_pool(pool_mode)
    batch, channels, height, width = grad_input.shape
    grad_input.copy_(torch.ops.torchvision._roi_align_backward(
        grad_output, rois, float(spatial_scale), int(aligned_height), int(aligned_width), batch,
        channels, height, width, int(sampling_ratio), bool(aligned)))


def _focal_terms(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor):
    """Sigmoid, positive/negative masks and per-sample weights, as mmcv's kernel forms them:
    target == num_classes (background) is negative for every class; weight is indexed by the
    target class."""
    p = 1.0 / (1.0 + torch.exp(-input))
    classes = torch.arange(input.size(1), device=input.device)
    positive = (target.unsqueeze(1) == classes).to(input.dtype)
    scale = weight[target].unsqueeze(1) if weight.numel() else None
    return p, positive, 1.0 - positive, scale


def _sigmoid_focal_loss_forward(input, target, weight, output, gamma: float,
                                alpha: float) -> None:
    p, pos, neg, scale = _focal_terms(input, target, weight)
    loss = (-alpha * pos * (1 - p).pow(gamma) * torch.log(p.clamp(min=_FLT_MIN))
            - (1 - alpha) * neg * p.pow(gamma) * torch.log((1 - p).clamp(min=_FLT_MIN)))
    output.copy_(loss if scale is None else loss * scale)


def _sigmoid_focal_loss_backward(input, target, weight, grad_input, gamma: float,
                                 alpha: float) -> None:
    # d loss / d input, written out as mmcv's CUDA kernel writes it
    p, pos, neg, scale = _focal_terms(input, target, weight)
    grad_p = (1 - p).pow(gamma) * (1 - p - gamma * p * torch.log(p.clamp(min=_FLT_MIN)))
    grad_n = p.pow(gamma) * (gamma * (1 - p) * torch.log((1 - p).clamp(min=_FLT_MIN)) - p)
    grad = -alpha * pos * grad_p - (1 - alpha) * neg * grad_n
    grad_input.copy_(grad if scale is None else grad * scale)


ROUTED_OPS: Dict[str, Callable] = {
    'nms': _nms,
    'roi_align_forward': _roi_align_forward,
    'roi_align_backward': _roi_align_backward,
    'sigmoid_focal_loss_forward': _sigmoid_focal_loss_forward,
    'sigmoid_focal_loss_backward': _sigmoid_focal_loss_backward,
}


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


def mmcv_has_cuda_kernels() -> bool:
    """Whether the installed mmcv was compiled with its CUDA kernels."""
    from mmcv.ops import get_compiling_cuda_version
    return get_compiling_cuda_version() != 'not available'


def install() -> bool:
    """Put :class:`RoutedExt` in every loaded ``mmcv.ops`` module when mmcv has no CUDA kernels.

    Returns:
        Whether the stand-in is in place (False with mmcv-lite or a CUDA build of mmcv).
    """
    try:
        import mmcv.ops  # noqa: F401  (loads every op module)
        from mmcv import _ext
    except ImportError:  # mmcv-lite: no compiled ops at all
        return False
    if mmcv_has_cuda_kernels():
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
