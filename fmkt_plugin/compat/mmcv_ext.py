"""Fix 12: mmcv 2.1.0 has no compiled ops for current torch; this module stands in for them.

Upstream problem: mmdet 3.3 and mmrazor 1.0 need mmcv 2.1.0 (mmdet asserts ``< 2.2.0``), whose
last wheels are for torch 2.1; on current torch it has to be built from source (about 25 minutes
on 2 cores, C++20 and nvcc for the CUDA kernels, and a wheel tied to one torch build). The
pure-python ``mmcv-lite`` 2.1.0 ships every ``mmcv/ops/*.py`` but no compiled ``mmcv._ext``, and
each op module runs ``ext_loader.load_ext('_ext', [names])`` at import, which is
``importlib.import_module('mmcv._ext')`` plus ``hasattr`` for every name; so with mmcv-lite alone
``import mmcv.ops`` (and with it ``import mmdet.models``) fails with "No module named
'mmcv._ext'".

The fix: where no compiled ``mmcv._ext`` is installed, this file is imported *as*
``mmcv._ext`` by the import finder in ``fmkt_mmcv_ext_hook`` (registered at interpreter start
by the ``fmkt_mmcv_ext_hook.pth`` file that the plugin's install puts in site-packages, and
again by ``import fmkt_plugin``). It answers the ops the shipped configs reach with torch and
torchvision kernels, on CPU and CUDA alike: ``nms`` (every detector's test path, Faster R-CNN's
RPN), ``roi_align_forward/backward`` (Faster R-CNN's RoI extractor) and
``sigmoid_focal_loss_forward/backward`` (RetinaNet's focal loss on CUDA tensors), plus the two
version queries. Every other name answers ``hasattr`` (so ``import mmcv.ops`` works) with a
function that refuses when called, naming the op and the way to the compiled mmcv. A compiled
``mmcv._ext`` (an mmcv built from source or installed by mim) is found first and used unchanged.

The same routes serve Fix 9 (``mmcv_fixes.py``): a compiled mmcv without CUDA kernels, called on
CUDA tensors.

This file runs inside ``import mmcv.ops``, before mmcv, mmdet or the plugin are importable:
it imports nothing but torch (torchvision when an op is called).
"""
from typing import Callable, Dict

import torch

__all__ = ['ROUTED_OPS', 'FMKT_PROVIDER', 'BUILD_HINT', 'get_compiler_version',
           'get_compiling_cuda_version']

#: marks this module when it is loaded as ``mmcv._ext`` (a compiled module has no such name)
FMKT_PROVIDER = True
_FLT_MIN = torch.finfo(torch.float32).tiny  # mmcv's kernels clamp the logs at FLT_MIN
BUILD_HINT = ('the compiled mmcv has it: FMKT_MMCV=full bash scripts/bootstrap.sh builds mmcv '
              '2.1.0 with its CPU kernels, and its CUDA kernels where torch sees a GPU '
              '(FMKT_MMCV_CUDA=1 forces them); see docs/get_started.md')


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
        raise NotImplementedError("mmcv op 'roi_align' with pool_mode='max' has no route: "
                                  f'torchvision has no max-pooled RoIAlign; {BUILD_HINT}')


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
# What mmcv.ops asks of mmcv._ext besides the ops
# ---------------------------------------------------------------------------------------------
def get_compiler_version() -> str:
    """What ``mmcv.ops.get_compiler_version`` reports: no compiler was involved."""
    return 'none (mmcv-lite; fmkt_plugin torch/torchvision ops)'


def get_compiling_cuda_version() -> str:
    """``'not available'``, as mmcv answers for a build without CUDA kernels: nothing here was
    compiled for CUDA (the routes still run on CUDA tensors)."""
    return 'not available'


def _refusal(name: str) -> Callable:
    def refuse(*args, **kwargs):
        raise NotImplementedError(
            f"mmcv op '{name}' is not available: mmcv-lite has no compiled ops and fmkt_plugin "
            f'answers only {", ".join(sorted(ROUTED_OPS))} with torch/torchvision; {BUILD_HINT}')

    refuse.__name__ = name
    return refuse


globals().update(ROUTED_OPS)  # mmcv.ops looks the ops up by their mmcv names


def __getattr__(name: str) -> Callable:
    # dunder lookups (__path__, __file__, ...) must keep failing: this is a module, not a package
    if name.startswith('__'):
        raise AttributeError(name)
    return _refusal(name)
