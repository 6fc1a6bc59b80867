"""COCO detection with FPN-level FM-KT: FlowFPN, FlowEMAHook, the detection configs end to end
(tiny COCO-format set, mmdet's CocoDataset and CocoMetric), and the exported student."""
import contextlib
import glob
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from fixtures.smoke import DET_IMAGE_SIZE, DET_TEACHERS, random_checkpoint, tiny_det_options
from helpers import (
    REPO,
    assert_trained_stably,
    changed_params,
    config_path,
    flatten,
    load_tool,
    scalar_history,
    snapshot,
    write_child_config,
)
from mmrazor.models.task_modules import ModuleOutputsRecorder

DET_CONFIGS = sorted(
    osp.relpath(p, osp.join(REPO, 'configs'))
    for p in glob.glob(osp.join(REPO, 'configs', 'fmkt', '*_coco.py')) +
    glob.glob(osp.join(REPO, 'configs', 'baselines', 'pkd_*_coco.py')))

TEACHERS = DET_TEACHERS
IMAGE_SIZE = DET_IMAGE_SIZE


def _family(config: str) -> str:
    return next(f for f in TEACHERS if f'_{f}_' in osp.basename(config))


def _small_fpn(**kwargs):
    from fmkt_plugin.models.necks import FlowFPN
    neck = dict(type='FPN', in_channels=[8, 16, 32, 64], out_channels=16, num_outs=5)
    return FlowFPN(neck=neck, **kwargs)


def _backbone_feats(batch: int = 2, size: int = 32):
    torch.manual_seed(0)
    return [torch.randn(batch, c, size // 2**i, size // 2**i) for i, c in enumerate((8, 16, 32,
                                                                                     64))]


def _perturb_flows(neck, scale: float = 0.1) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for flow in neck.flows.values():
            for p in flow.parameters():
                p.add_(scale * torch.randn_like(p))


# ------------------------------------------------------------------------------------------
# FlowFPN
# ------------------------------------------------------------------------------------------
def test_flow_fpn_starts_as_the_wrapped_fpn():
    from mmdet.registry import MODELS as DET_MODELS
    neck = _small_fpn()
    neck.init_weights()
    # _scope_: build in mmdet whatever default scope earlier tests left current
    plain = DET_MODELS.build(dict(_scope_='mmdet', type='FPN', in_channels=[8, 16, 32, 64],
                                  out_channels=16, num_outs=5))
    plain.load_state_dict(neck.fpn.state_dict())
    feats = _backbone_feats()
    outs, ref = neck(feats), plain(feats)
    assert len(outs) == 5 and sorted(neck.flows) == ['0', '1', '2', '3', '4']
    for got, want in zip(outs, ref):
        assert torch.equal(got, want)  # zero initial velocity: the flows start as identity


def test_flow_fpn_transports_only_its_levels_and_exposes_step_estimates():
    from mmrazor.models.task_modules import ModuleOutputsRecorder
    neck = _small_fpn(flow=dict(num_steps=3, meta_encoder=dict(type='mlp')), flow_levels=(0, 2))
    neck.init_weights()
    _perturb_flows(neck)
    recorders = {lv: ModuleOutputsRecorder(f'flows.{lv}') for lv in (0, 2)}
    for r in recorders.values():
        r.initialize(neck)
    feats = _backbone_feats()
    raw = neck.fpn(feats)
    with contextlib.ExitStack() as stack:
        for r in recorders.values():
            stack.enter_context(r)
        outs = neck(feats)
    assert not torch.allclose(outs[0], raw[0]) and not torch.allclose(outs[2], raw[2])
    for level in (1, 3, 4):
        assert torch.equal(outs[level], raw[level])
    for level, r in recorders.items():
        est, transported = r.get_record_data()
        assert est.shape == (3, ) + tuple(raw[level].shape)
        assert torch.equal(outs[level], transported)
    # the transported maps carry gradients back into the flows and the FPN
    sum(o.sum() for o in outs).backward()
    assert neck.flows['0'].meta_encoder.out.weight.grad is not None
    assert neck.fpn.fpn_convs[0].conv.weight.grad is not None


def test_flow_fpn_eval_uses_test_steps():
    neck = _small_fpn(flow=dict(num_steps=(1, 2), test_num_steps=5), flow_levels=(1, ))
    neck.eval()
    recorder = ModuleOutputsRecorder('flows.1')
    recorder.initialize(neck)
    with torch.no_grad(), recorder:
        neck(_backbone_feats(batch=1))
    assert recorder.get_record_data(data_idx=0).shape[0] == 5


@pytest.mark.parametrize('kwargs, field', [
    (dict(flow_levels=(0, 5)), 'flow_levels'),
    (dict(flow_levels=(1, 1)), 'flow_levels'),
    (dict(flow_levels=()), 'flow_levels'),
    (dict(flow=dict(in_channels=8)), 'flow.in_channels'),
    (dict(flow=dict(num_steps=0)), 'num_steps'),
    (dict(in_channels=32), r'in_channels=32, but the wrapped FPN outputs 16 channels'),
])
def test_flow_fpn_rejects_bad_config(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _small_fpn(**kwargs)


def test_flow_fpn_is_an_mmdet_neck():
    from mmdet.registry import MODELS as DET_MODELS
    neck = DET_MODELS.build(dict(
        _scope_='mmdet',
        type='FlowFPN',
        neck=dict(type='FPN', in_channels=[8, 16, 32, 64], out_channels=16, num_outs=5)))
    assert type(neck).__name__ == 'FlowFPN'
    assert neck.flows['0'].num_steps_choices == (4, )  # FPN-level FM-KT default: 4 steps


def test_fmkt_fpn_distill_is_fpn_teacher_distill_with_fmkt_checks():
    from mmrazor.models.algorithms import FpnTeacherDistill

    from fmkt_plugin.models.algorithms import FMKTDistill, FMKTFpnDistill
    # the teacher runs backbone + neck only; construction and loss checks are FM-KT's
    assert FMKTFpnDistill.loss is FpnTeacherDistill.loss
    assert FMKTFpnDistill.__init__ is FMKTDistill.__init__
    assert FMKTFpnDistill.parse_losses is FMKTDistill.parse_losses


# ------------------------------------------------------------------------------------------
# FlowEMAHook
# ------------------------------------------------------------------------------------------
class _Student(torch.nn.Module):

    def __init__(self):
        super().__init__()
        self.neck = _small_fpn(flow_levels=(0, 1))
        self.head = torch.nn.Conv2d(16, 1, 1)


def _fake_runner(model, resume=False):
    return SimpleNamespace(model=model, iter=0, epoch=0, _resume=resume)


def test_flow_ema_hook_averages_only_the_flows_and_swaps_them_for_evaluation():
    from fmkt_plugin.engine import FlowEMAHook
    model = torch.nn.Module()
    model.architecture = _Student()
    hook = FlowEMAHook(momentum=0.5)
    runner = _fake_runner(model)
    hook.before_run(runner)
    assert sorted(hook._names.values()) == ['architecture.neck.flows.0',
                                            'architecture.neck.flows.1']
    key = 'architecture.neck.flows.0.meta_encoder.out.weight'
    hook.after_train_iter(runner, 0)  # first update copies
    w0 = model.state_dict()[key].clone()
    with torch.no_grad():
        model.architecture.neck.flows['0'].meta_encoder.out.weight.add_(1.0)
        model.architecture.head.weight.add_(1.0)
    raw = snapshot(model)
    hook.after_train_iter(runner, 1)
    expected_ema = 0.5 * w0 + 0.5 * raw[key]

    hook.before_val_epoch(runner)
    torch.testing.assert_close(model.state_dict()[key], expected_ema)
    assert torch.equal(model.state_dict()['architecture.head.weight'],
                       raw['architecture.head.weight'])  # only the flows are averaged
    hook.after_val_epoch(runner)
    assert changed_params(raw, model) == 0

    # checkpoints hold the averaged flows as weights, the raw ones in ema_state_dict
    checkpoint = {'state_dict': {k: v.clone() for k, v in model.state_dict().items()}}
    hook.before_save_checkpoint(runner, checkpoint)
    torch.testing.assert_close(checkpoint['state_dict'][key], expected_ema)
    torch.testing.assert_close(checkpoint['ema_state_dict']['module.flow0.meta_encoder.out.weight'],
                               raw[key])

    # loading (not resuming) starts a new average from the saved, averaged weights
    fresh = torch.nn.Module()
    fresh.architecture = _Student()
    new_hook = FlowEMAHook(momentum=0.5)
    new_runner = _fake_runner(fresh)
    new_hook.before_run(new_runner)
    new_hook.after_load_checkpoint(new_runner, checkpoint)
    torch.testing.assert_close(
        new_hook.ema_model.module.state_dict()['flow0.meta_encoder.out.weight'], expected_ema)

    # resuming restores the raw weights and the average
    resume_hook = FlowEMAHook(momentum=0.5)
    resume_runner = _fake_runner(fresh, resume=True)
    resume_hook.before_run(resume_runner)
    resume_hook.after_load_checkpoint(resume_runner, checkpoint)
    torch.testing.assert_close(checkpoint['state_dict'][key], raw[key])
    torch.testing.assert_close(
        resume_hook.ema_model.module.state_dict()['flow0.meta_encoder.out.weight'],
        expected_ema)


def test_flow_ema_hook_needs_a_flow():
    from fmkt_plugin.engine import FlowEMAHook
    with pytest.raises(ValueError, match='no FM-KT flow'):
        FlowEMAHook().before_run(_fake_runner(torch.nn.Linear(2, 2)))


# ------------------------------------------------------------------------------------------
# Configs end to end on a tiny COCO-format set
# ------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def tiny_coco(tmp_path_factory):
    from fixtures import write_coco_detection
    paths = write_coco_detection(str(tmp_path_factory.mktemp('coco')),
                                 num_images={'train': 4, 'val': 2}, image_size=IMAGE_SIZE)
    import json
    with open(paths['val']) as f:
        val = json.load(f)
    assert len(val['images']) == 2 and len(val['annotations']) >= 2
    return paths


@pytest.fixture(scope='module')
def det_teacher_ckpt(tmp_path_factory):
    """Writes (once per family) a randomly initialised teacher checkpoint of the config's
    teacher architecture, standing in for the published one."""
    out = tmp_path_factory.mktemp('det_teachers')
    cache = {}

    def get(family: str) -> str:
        if family not in cache:
            cache[family] = random_checkpoint(TEACHERS[family],
                                              str(out / f'{family}_teacher.pth'))
        return cache[family]

    return get


def _predict(model, batch):
    model.eval()
    with torch.no_grad():
        out = model.test_step(batch)
    return [(s.pred_instances.bboxes, s.pred_instances.scores, s.pred_instances.labels)
            for s in out]


@pytest.mark.slow
@pytest.mark.parametrize('config', DET_CONFIGS)
def test_detection_config_trains_evaluates_and_exports(config, tiny_coco, det_teacher_ckpt,
                                                       tmp_path):
    from mmengine.runner import Runner
    from mmengine.runner.checkpoint import _load_checkpoint

    family = _family(config)
    is_fmkt = osp.basename(config).startswith('fmkt_')
    cfg = write_child_config(tmp_path, osp.join(REPO, 'configs', config),
                             tiny_det_options(tiny_coco, family, det_teacher_ckpt(family)))
    runner = load_tool('train').build_runner([cfg, '--work-dir', str(tmp_path / 'work')])
    model = runner.model
    assert type(model).__name__ == ('FMKTFpnDistill' if is_fmkt else 'FpnTeacherDistill')
    model.init_weights()
    student_before = snapshot(model.architecture)
    teacher_before = snapshot(model.teacher)
    runner.train()

    assert runner.iter == 2  # 4 images, batch 2, one epoch
    prefix = 'loss_fmkt_fpn' if is_fmkt else 'loss_pkd_fpn'
    for level in range(4):
        values = scalar_history(runner, f'train/distill.{prefix}{level}')
        assert len(values) == 2
    assert_trained_stably(runner, [f'train/distill.{prefix}{level}' for level in range(4)])
    assert changed_params(student_before, model.architecture) > 0
    assert changed_params(teacher_before, model.teacher) == 0
    # validation ran through mmdet's CocoDataset + CocoMetric (pycocotools bbox mAP)
    mAP = scalar_history(runner, 'val/coco/bbox_mAP')
    assert len(mAP) == 1 and 0.0 <= mAP[0] <= 1.0
    if not is_fmkt:
        return

    neck = model.architecture.neck
    assert type(neck).__name__ == 'FlowFPN' and sorted(neck.flows) == ['0', '1', '2', '3']
    ckpt_path = str(tmp_path / 'work' / 'epoch_1.pth')
    ckpt = _load_checkpoint(ckpt_path, map_location='cpu')
    key = 'architecture.neck.flows.0.meta_encoder.out.weight'
    raw = ckpt['ema_state_dict']['module.flow0.meta_encoder.out.weight']
    assert not torch.equal(ckpt['state_dict'][key], raw)  # the EMA flows are the weights
    torch.testing.assert_close(raw, model.state_dict()[key])

    result = load_tool('convert_fmkt_ckpt_to_student').main(
        [cfg, ckpt_path, str(tmp_path / 'student')])
    test_tool = load_tool('test')
    student_runner = Runner.from_cfg(test_tool.build_runner_config(
        result['config'], work_dir=str(tmp_path / 'eval'), load_from=result['checkpoint']))
    student = student_runner.model
    assert type(student).__name__ in ('FasterRCNN', 'RetinaNet')
    assert type(student.neck).__name__ == 'FlowFPN'
    student_runner.load_checkpoint(result['checkpoint'])

    runner.load_checkpoint(ckpt_path)  # the distillation model as saved (EMA flows)
    batch = next(iter(runner.build_dataloader(runner.cfg.test_dataloader)))
    expected = _predict(model, batch)
    got = _predict(student, batch)
    assert sum(len(s) for _, s, _ in expected) > 0
    for (eb, es, el), (gb, gs, gl) in zip(expected, got):
        torch.testing.assert_close(gb, eb, atol=1e-5, rtol=0)
        torch.testing.assert_close(gs, es, atol=1e-5, rtol=0)
        assert torch.equal(gl, el)

    metrics = test_tool.main([result['config'], result['checkpoint'],
                              '--work-dir', str(tmp_path / 'eval2')])
    assert 0.0 <= metrics['coco/bbox_mAP'] <= 1.0


@pytest.mark.slow
def test_fmkt_fpn_distill_checks_student_and_teacher(tiny_coco, det_teacher_ckpt, tmp_path):
    from fmkt_plugin.apis import load_config
    from fmkt_plugin.registry import MODELS
    config = osp.join(REPO, 'configs', 'fmkt', 'fmkt_faster-rcnn_r101_r50_fpn_2x_coco.py')
    options = {'model.architecture.backbone.init_cfg': None}

    cfg = load_config(config, dict(options, **{'model.teacher_ckpt': None}))
    cfg.model.architecture.neck = cfg.model.architecture.neck.neck  # plain FPN: no flow
    cfg.model.distiller.student_recorders = dict(fpn=dict(type='ModuleOutputs', source='neck'))
    cfg.model.distiller.distill_losses = {}
    cfg.model.distiller.loss_forward_mappings = {}
    with pytest.raises(ValueError, match='needs a student with an FM-KT flow'):
        MODELS.build(cfg.model)

    # a checkpoint of another teacher architecture is an error, not a warning
    cfg = load_config(config, dict(options, **{'model.teacher_ckpt':
                                               det_teacher_ckpt('retinanet')}))
    with pytest.raises(RuntimeError, match='does not match the teacher architecture'):
        MODELS.build(cfg.model)


@pytest.mark.slow
def test_det_overhead_benchmark_runs():
    import math

    from benchmarks.overhead.detection import det_overhead_ratio
    result = det_overhead_ratio('faster-rcnn', size=64, batch_size=1, repeats=1, warmup=0)
    assert all(math.isfinite(v) and v > 0 for v in result.values())
    assert result['ratio'] == result['fmkt_s'] / result['pkd_s']


@pytest.mark.slow
def test_det_overhead_students_share_weights_and_features():
    """The timed FM-KT and PKD students start equal: PKD's weights in FM-KT's student and
    identity flows, so both give the same FPN maps (and so the same proposals to pool)."""
    from benchmarks.overhead.detection import CONFIGS, build_train_model, share_student_weights
    (fmkt, _), (pkd, _) = (build_train_model(c) for c in CONFIGS['faster-rcnn'])
    x = torch.rand(1, 3, 64, 64)
    fmkt.eval()
    pkd.eval()
    with torch.no_grad():
        before = [(a - b).abs().max() for a, b in zip(fmkt.student.extract_feat(x),
                                                      pkd.student.extract_feat(x))]
        share_student_weights(fmkt, pkd)
        after = [(a - b).abs().max() for a, b in zip(fmkt.student.extract_feat(x),
                                                     pkd.student.extract_feat(x))]
    assert max(before) > 0 and max(after) == 0


@pytest.mark.slow
@pytest.mark.parametrize('config', [c for c in DET_CONFIGS if c.endswith('_2x_coco.py')])
def test_detection_config_trains_and_evaluates_through_the_cuda_routes(config, tiny_coco,
                                                                      det_teacher_ckpt,
                                                                      tmp_path):
    """A train step and an evaluation with every mmcv op sent down the routes that stand in
    for mmcv's CUDA kernels (fmkt_plugin.compat.mmcv_fixes): an op these configs reach without a
    route would stop the run with an error naming it. (RetinaNet's FocalLoss takes the mmcv op
    on CUDA tensors only; that route is tested in tests/test_mmcv_ops_route.py.)"""
    from mmcv import _ext

    from fmkt_plugin.compat import mmcv_fixes
    family = _family(config)
    cfg = write_child_config(tmp_path, osp.join(REPO, 'configs', config),
                             tiny_det_options(tiny_coco, family, det_teacher_ckpt(family)))
    runner = load_tool('train').build_runner([cfg, '--work-dir', str(tmp_path / 'work')])
    routed = mmcv_fixes.RoutedExt(_ext)
    with pytest.MonkeyPatch.context() as mp:
        for module in mmcv_fixes.op_modules():
            mp.setattr(module, 'ext_module', routed)
        with mmcv_fixes.force_routes([]) as calls:
            runner.train()
    assert runner.iter == 2
    assert_trained_stably(runner)
    assert len(scalar_history(runner, 'val/coco/bbox_mAP')) == 1
    expected = {'nms'} | ({'roi_align_forward', 'roi_align_backward'}
                          if family == 'faster-rcnn' else set())
    assert set(calls) == expected


@pytest.mark.parametrize('fmkt, pkd', [
    ('fmkt/fmkt_faster-rcnn_r101_r50_fpn_2x_coco.py',
     'baselines/pkd_faster-rcnn_r101_r50_fpn_2x_coco.py'),
    ('fmkt/fmkt_retinanet_x101_r50_fpn_2x_coco.py',
     'baselines/pkd_retinanet_x101_r50_fpn_2x_coco.py'),
    ('fmkt/fmkt_retinanet_r34w_r18_fpn_fmnist-det.py',
     'baselines/pkd_retinanet_r34w_r18_fpn_fmnist-det.py'),
])
def test_fmkt_and_pkd_of_a_pair_differ_only_in_the_distillation(fmkt, pkd):
    """Same data, schedule, optimizer (gradient clipping included) and runtime: the resolved
    configs differ in the algorithm, the student's neck (FlowFPN), the distiller and FM-KT's
    hooks (flow EMA), besides the helper variables of the method files."""
    from fmkt_plugin.apis import load_config
    a, b = (flatten(load_config(config_path(c)).to_dict()) for c in (fmkt, pkd))
    differ = {k for k in set(a) | set(b) if a.get(k, '<none>') != b.get(k, '<none>')}
    allowed = ('model.type', 'model.architecture.neck', 'model.distiller.', 'custom_hooks',
               'flow.', 'levels', 'fmkt_fpn_hooks', 'fpn_', 'pkd_weight')
    assert not [k for k in differ if not k.startswith(allowed)], sorted(differ)
