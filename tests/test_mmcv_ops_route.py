"""The torch/torchvision routes for mmcv's ops (fmkt_plugin.compat.mmcv_ext): with mmcv-lite they
are mmcv._ext itself (compat Fix 12); with a compiled mmcv built without CUDA kernels they stand
in for it on CUDA tensors (Fix 9). On CPU, force_routes() sends CPU tensors down the routes.

nms and RoIAlign are compared with what mmcv's compiled CPU kernels gave on the same cases,
recorded once in tests/fixtures/mmcv_ops_reference.pt (tests/fixtures/mmcv_ops_cases.py), so no
compiled mmcv is needed here; where one is installed, its live outputs are compared with the
recording too. The focal loss, which mmcv has for CUDA only, is compared with mmdet's pure-torch
focal loss and with numerical gradients."""
import subprocess
import sys

import pytest
import torch
from fixtures import mmcv_ops_cases

import fmkt_plugin  # noqa: F401  (applies the compat fixes)
from fmkt_plugin import compat
from fmkt_plugin.compat import mmcv_ext, mmcv_fixes

LITE = mmcv_fixes.mmcv_is_lite()
REFERENCE = mmcv_ops_cases.load_reference()


def _stand_ins():
    import mmcv.ops  # noqa: F401  (mmcv.ops.nms is the function; the modules are in sys.modules)
    return [isinstance(sys.modules[f'mmcv.ops.{name}'].ext_module, mmcv_fixes.RoutedExt)
            for name in ('nms', 'roi_align', 'focal_loss')]


_AT_IMPORT = _stand_ins()  # before any test's fixture has touched the modules


def test_route_is_in_place_exactly_when_a_compiled_mmcv_has_no_cuda_kernels():
    routed = not LITE and not mmcv_fixes.mmcv_has_cuda_kernels()
    assert ('mmcv-ops-cuda-route' in compat.applied_fixes()) == routed
    assert ('mmcv-lite-ext' in compat.applied_fixes()) == LITE
    assert _AT_IMPORT == [routed] * 3
    assert mmcv_fixes.install() == routed  # idempotent: the modules keep the one stand-in


@pytest.fixture(autouse=True)
def routed(monkeypatch):
    """The stand-in in every mmcv.ops module, also where mmcv has CUDA kernels (then install()
    leaves mmcv as it is, and the routes are tested all the same). With mmcv-lite it wraps the
    provider, whose ops are the routes: force_routes() then only logs the calls."""
    from mmcv import _ext
    for module in mmcv_fixes.op_modules():
        if module.ext_module is _ext:
            monkeypatch.setattr(module, 'ext_module', mmcv_fixes.RoutedExt(_ext))


def test_the_recording_covers_every_case_and_comes_from_a_compiled_mmcv():
    assert sorted(REFERENCE['outputs']) == sorted(key for key, _ in mmcv_ops_cases.cases())
    assert REFERENCE['meta']['mmcv'] == '2.1.0'
    assert REFERENCE['meta']['ext'].startswith('_ext') and REFERENCE['meta']['ext'].endswith('.so')


def _expected_op_calls(key: str):
    return dict(nms=['nms'], batched_nms=['nms'],
                roi_align=['roi_align_forward', 'roi_align_backward'])[key.split('/')[0]]


@pytest.mark.parametrize('key, run', mmcv_ops_cases.cases(), ids=[k for k, _ in
                                                                 mmcv_ops_cases.cases()])
def test_routes_give_what_the_compiled_cpu_kernels_gave(key, run):
    """nms: the same indices (ties in mmcv's order) and boxes, exactly. RoIAlign (float64):
    outputs and input gradients within 1e-5 (the two kernels sum the samples in other
    orders)."""
    expected = REFERENCE['outputs'][key]
    if not LITE:  # a compiled mmcv is here: it still gives what was recorded
        _assert_same(key, run(), expected)
    calls = []
    with mmcv_fixes.force_routes(calls):
        got = run()
    assert calls == _expected_op_calls(key) or (key.startswith('nms/n0') and calls == [])
    _assert_same(key, got, expected)


def _assert_same(key, got, expected):
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert got[name].dtype == value.dtype, (key, name)
        if key.startswith('roi_align'):
            assert value.abs().sum() > 0
            torch.testing.assert_close(got[name], value, rtol=0, atol=1e-5)
        else:
            assert torch.equal(got[name], value), (key, name)


def test_roi_align_route_refuses_max_pooling_by_name():
    from mmcv.ops import roi_align
    feats, rois, _ = mmcv_ops_cases.roi_inputs()
    with mmcv_fixes.force_routes(), pytest.raises(NotImplementedError, match="'roi_align' with "
                                                "pool_mode.*FMKT_MMCV=full bash scripts/"):
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
    with mmcv_fixes.force_routes(calls):
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
    with mmcv_fixes.force_routes():
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
    b, _ = mmcv_ops_cases.boxes(4)
    if LITE:  # mmcv-lite: refused on any device, naming the way to the compiled mmcv
        with pytest.raises(NotImplementedError, match=r"mmcv op 'bbox_overlaps' is not available"
                           r".*FMKT_MMCV=full bash scripts/bootstrap.sh"):
            bbox_overlaps(b, b)
        return
    bbox_overlaps(b, b)  # CPU, not forced: mmcv's own kernel
    with mmcv_fixes.force_routes(), pytest.raises(
            RuntimeError, match=r"mmcv op 'bbox_overlaps' .* built without CUDA kernels"
            r".*FMKT_MMCV=full FMKT_MMCV_CUDA=1 bash scripts/bootstrap.sh"):
        bbox_overlaps(b, b)


def test_provider_answers_every_name_but_refuses_ops_it_has_no_route_for():
    assert hasattr(mmcv_ext, 'deform_conv_forward')  # so that import mmcv.ops passes hasattr
    with pytest.raises(NotImplementedError, match="'deform_conv_forward' is not available"):
        mmcv_ext.deform_conv_forward(torch.zeros(1))
    assert not hasattr(mmcv_ext, '__path__')  # a module, not a package
    assert mmcv_ext.nms is mmcv_ext.ROUTED_OPS['nms']
    assert mmcv_ext.get_compiling_cuda_version() == 'not available'


def test_cpu_calls_pass_through_to_the_compiled_kernel():
    ext = sys.modules['mmcv.ops.nms'].ext_module
    assert ext.nms.__name__ == 'nms'
    b, scores = mmcv_ops_cases.boxes(10)
    inds = ext.nms(b, scores, iou_threshold=0.5, offset=0)
    assert torch.equal(inds, ext._ext.nms(b, scores, iou_threshold=0.5, offset=0))
    assert ext.get_compiling_cuda_version() == ext._ext.get_compiling_cuda_version()
    # mmcv-lite: the module behind it is the provider file; a compiled one is never replaced
    assert sys.modules['mmcv._ext'].__file__.endswith('mmcv_ext.py') == LITE


_FRESH = """
import json, sys, torch
import {first}
from mmcv.ops import nms, RoIAlign
import mmcv._ext
b = torch.tensor([[0., 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]])
_, keep = nms(b, torch.tensor([.9, .8, .7]), 0.5)
out = RoIAlign((2, 2), 1.0, 0)(torch.ones(1, 1, 8, 8), torch.tensor([[0., 0, 0, 4, 4]]))
print(json.dumps([keep.tolist(), out.sum().item(), 'fmkt_plugin' in sys.modules,
                  getattr(mmcv._ext, 'FMKT_PROVIDER', False)]))
"""


@pytest.mark.slow
@pytest.mark.parametrize('first', ['mmdet.models', 'mmcv.ops', 'mmpretrain.models',
                                   'mmrazor; import fmkt_plugin'])
def test_a_fresh_interpreter_gets_working_ops_whatever_it_imports_first(first, tmp_path):
    """The start-up hook (fmkt_mmcv_ext_hook.pth) answers mmcv._ext before anything imports the
    plugin; a script that imports only mmdet never loads it."""
    out = subprocess.run([sys.executable, '-c', _FRESH.format(first=first)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    import json
    keep, total, plugin_loaded, provider = json.loads(out.stdout.strip().splitlines()[-1])
    assert keep == [0, 2] and total == 4.0
    assert plugin_loaded == ('fmkt_plugin' in first) and provider == LITE


@pytest.mark.slow
def test_without_the_hook_mmcv_lite_has_no_ops(tmp_path):
    """What the fix is for: FMKT_MMCV_EXT=0 switches the finder off, and mmcv-lite alone cannot
    import mmcv.ops (a compiled mmcv does not need the finder, and is unaffected)."""
    import os
    out = subprocess.run([sys.executable, '-c', 'import mmdet.models'], cwd=tmp_path,
                         env=dict(os.environ, FMKT_MMCV_EXT='0'), capture_output=True, text=True,
                         timeout=300)
    if LITE:
        assert out.returncode != 0 and "No module named 'mmcv._ext'" in out.stderr
    else:
        assert out.returncode == 0, out.stderr[-2000:]
