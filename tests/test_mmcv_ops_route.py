"""fmkt_plugin.compat.mmcv_ops: the routes that stand in for mmcv's CUDA kernels when mmcv was
built with CPU kernels only. On CPU, force_routes() sends CPU tensors down the routes, and each
route is compared with mmcv's own CPU kernel (nms, RoIAlign) or, for the focal loss, which mmcv
has for CUDA only, with mmdet's pure-torch focal loss and with numerical gradients."""
import pytest
import torch

import fmkt_plugin  # noqa: F401  (applies the compat fixes)
from fmkt_plugin import compat
from fmkt_plugin.compat import mmcv_ops


def _stand_ins():
    import sys

    import mmcv.ops  # noqa: F401  (mmcv.ops.nms is the function; the modules are in sys.modules)
    return [isinstance(sys.modules[f'mmcv.ops.{name}'].ext_module, mmcv_ops.RoutedExt)
            for name in ('nms', 'roi_align', 'focal_loss')]


_AT_IMPORT = _stand_ins()  # before any test's fixture has touched the modules


def test_route_is_in_place_exactly_when_mmcv_has_no_cuda_kernels():
    routed = not mmcv_ops.mmcv_has_cuda_kernels()
    assert ('mmcv-ops-cuda-route' in compat.applied_fixes()) == routed
    assert _AT_IMPORT == [routed] * 3
    assert mmcv_ops.install() == routed  # idempotent: the modules keep the one stand-in


@pytest.fixture(autouse=True)
def routed(monkeypatch):
    """The stand-in in every mmcv.ops module, also where mmcv has CUDA kernels (then install()
    leaves mmcv as it is, and the routes are tested all the same)."""
    from mmcv import _ext
    for module in mmcv_ops.op_modules():
        if module.ext_module is _ext:
            monkeypatch.setattr(module, 'ext_module', mmcv_ops.RoutedExt(_ext))


def _boxes(n: int, seed: int = 0, ties: bool = False):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 40
    wh = torch.rand(n, 2, generator=g) * 20 + 1
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(n, generator=g)
    if ties:  # equal scores, and exact duplicates of boxes
        scores = (scores * 4).floor() / 4
        boxes[n // 2:] = boxes[:n - n // 2]
    return boxes, scores


@pytest.mark.parametrize('n, ties', [(0, False), (1, False), (30, False), (30, True)])
@pytest.mark.parametrize('iou', [0.0, 0.5, 1.0])
@pytest.mark.parametrize('offset', [0, 1])
def test_nms_route_keeps_mmcv_indices(n, ties, iou, offset):
    from mmcv.ops import nms
    boxes, scores = _boxes(n, ties=ties)
    dets, keep = nms(boxes, scores, iou, offset=offset)
    calls = []
    with mmcv_ops.force_routes(calls):
        dets_r, keep_r = nms(boxes, scores, iou, offset=offset)
    assert calls == ['nms']
    assert torch.equal(keep_r, keep) and torch.equal(dets_r, dets)
    assert keep_r.dtype == torch.long


def test_batched_nms_route_keeps_mmcv_result():
    from mmcv.ops import batched_nms
    boxes, scores = _boxes(60, seed=3, ties=True)
    labels = torch.arange(60) % 3
    cfg = dict(type='nms', iou_threshold=0.3)
    dets, keep = batched_nms(boxes, scores, labels, cfg)
    with mmcv_ops.force_routes():
        dets_r, keep_r = batched_nms(boxes, scores, labels, cfg)
    assert torch.equal(keep_r, keep) and torch.equal(dets_r, dets)


def _roi_case():
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 3, 16, 20, generator=g, dtype=torch.float64)
    xy = torch.rand(6, 2, generator=g) * 50
    wh = torch.rand(6, 2, generator=g) * 30 + 0.5
    rois = torch.cat([torch.tensor([[0.], [1.], [0.], [1.], [0.], [1.]]), xy, xy + wh], dim=1)
    return feats, rois.double()


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
def test_roi_align_route_matches_mmcv_in_values_and_gradients(aligned, sampling_ratio):
    from mmcv.ops import roi_align
    feats, rois = _roi_case()
    grad_out = torch.randn(6, 3, 7, 5, generator=torch.Generator().manual_seed(2),
                           dtype=torch.float64)

    def run():
        x = feats.clone().requires_grad_()
        out = roi_align(x, rois, (7, 5), 0.25, sampling_ratio, 'avg', aligned)
        out.backward(grad_out)
        return out.detach(), x.grad

    out, grad = run()
    calls = []
    with mmcv_ops.force_routes(calls):
        out_r, grad_r = run()
    assert calls == ['roi_align_forward', 'roi_align_backward']
    assert grad.abs().sum() > 0
    torch.testing.assert_close(out_r, out, rtol=0, atol=1e-5)
    torch.testing.assert_close(grad_r, grad, rtol=0, atol=1e-5)


def test_roi_align_route_refuses_max_pooling_by_name():
    from mmcv.ops import roi_align
    feats, rois = _roi_case()
    with mmcv_ops.force_routes(), pytest.raises(RuntimeError, match="'roi_align' with pool_mode"
                                                ".*FMKT_MMCV_CUDA=1 bash scripts/bootstrap.sh"):
        roi_align(feats, rois, (7, 5), 0.25, 0, 'max', True)


def _focal_case(dtype=torch.float32):
    g = torch.Generator().manual_seed(4)
    logits = torch.randn(12, 5, generator=g, dtype=dtype) * 3
    target = torch.randint(0, 6, (12,), generator=g)  # 5 = background (no class positive)
    target[0] = 5
    return logits, target


@pytest.mark.parametrize('dtype, rtol', [(torch.float64, 0), (torch.float32, 1e-5)])
@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
def test_focal_loss_route_matches_mmdet_pure_torch_focal_loss(reduction, dtype, rtol):
    """1e-6 absolute in float64; in float32 the two formulas (log of the sigmoid, as mmcv's
    kernel, against mmdet's BCE with logits) differ by float rounding, relative 1e-5."""
    import torch.nn.functional as F
    from mmcv.ops import sigmoid_focal_loss
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    logits, target = _focal_case(dtype)
    one_hot = F.one_hot(target, 6)[:, :5].to(dtype)

    x = logits.clone().requires_grad_()
    calls = []
    with mmcv_ops.force_routes(calls):
        loss = sigmoid_focal_loss(x, target, 2.0, 0.25, None, reduction)
        loss.sum().backward()
    assert calls == ['sigmoid_focal_loss_forward', 'sigmoid_focal_loss_backward']

    y = logits.clone().requires_grad_()
    ref = py_sigmoid_focal_loss(y, one_hot, None, 2.0, 0.25, 'none')
    # mmcv's 'mean' divides the sum by the number of samples, not of elements
    ref = dict(none=ref, sum=ref.sum(), mean=ref.sum() / len(ref))[reduction]
    ref.sum().backward()
    torch.testing.assert_close(loss, ref, rtol=rtol, atol=1e-6)
    torch.testing.assert_close(x.grad, y.grad, rtol=rtol, atol=1e-6)


def test_focal_loss_route_gradient_is_the_derivative_of_its_loss_with_class_weights():
    from mmcv.ops import sigmoid_focal_loss
    logits, target = _focal_case(torch.float64)
    target = target.clamp(max=4)  # mmcv indexes the class weight by target: no background here
    weight = torch.tensor([0.5, 1.0, 2.0, 1.5, 0.25], dtype=torch.float64)
    x = logits.clone().requires_grad_()
    with mmcv_ops.force_routes():
        assert torch.autograd.gradcheck(
            lambda v: sigmoid_focal_loss(v, target, 1.5, 0.3, weight, 'sum'), (x,))
        loss = sigmoid_focal_loss(x, target, 1.5, 0.3, weight, 'none')
    p = torch.sigmoid(logits)
    pos = torch.nn.functional.one_hot(target, 5).double()
    expected = -(0.3 * pos * (1 - p)**1.5 * torch.log(p) +
                 0.7 * (1 - pos) * p**1.5 * torch.log(1 - p)) * weight[target, None]
    torch.testing.assert_close(loss, expected, rtol=1e-10, atol=1e-12)


def test_an_op_without_route_fails_at_once_naming_the_op_and_the_switch():
    from mmcv.ops import bbox_overlaps
    boxes, _ = _boxes(4)
    bbox_overlaps(boxes, boxes)  # CPU, not forced: mmcv's own kernel
    with mmcv_ops.force_routes(), pytest.raises(
            RuntimeError, match=r"mmcv op 'bbox_overlaps' .* built without CUDA kernels"
            r".*FMKT_MMCV_CUDA=1 bash scripts/bootstrap.sh"):
        bbox_overlaps(boxes, boxes)


def test_cpu_calls_pass_through_to_the_compiled_kernel():
    import sys
    ext = sys.modules['mmcv.ops.nms'].ext_module
    assert ext.nms.__name__ == 'nms'
    boxes, scores = _boxes(10)
    inds = ext.nms(boxes, scores, iou_threshold=0.5, offset=0)
    assert torch.equal(inds, ext._ext.nms(boxes, scores, iou_threshold=0.5, offset=0))
    assert ext.get_compiling_cuda_version() == ext._ext.get_compiling_cuda_version()
