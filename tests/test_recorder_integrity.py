"""Every recorder of every shipped distillation config hands the loss the tensor its module
produced: nothing later in the forward pass (an in-place module, or an in-place tensor op such
as a residual block's ``out += identity``) overwrites it. compat Fix 14 covers in-place modules;
this checks the rest on the real models."""
import glob
import os.path as osp

import pytest
import torch
from helpers import REPO, build_random_teacher_model

CONFIGS = sorted(
    osp.relpath(p, osp.join(REPO, 'configs'))
    for p in glob.glob(osp.join(REPO, 'configs', 'fmkt', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'baselines', '*.py'))
    if p.endswith(('_in1k.py', '_cifar100.py')) and 'ofmkt' not in p)


def _tensors(obj):
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if hasattr(obj, 'estimates'):  # a flow's result record
        return _tensors(tuple(obj))
    return []


def overwritten_recordings(model, inputs, data_samples):
    """``[(recorder, source)]`` whose recorded tensors differ, after the loss forward, from
    copies taken when their module ran."""
    from mmrazor.models.task_modules import ModuleInputsRecorder, ModuleOutputsRecorder
    copies, handles, watched = {}, [], []
    for side in ('student_recorders', 'teacher_recorders'):
        manager = getattr(model.distiller, side)
        root = model.student if side == 'student_recorders' else model.teacher
        for name, rec in manager.recorders.items():
            if not isinstance(rec, (ModuleOutputsRecorder, ModuleInputsRecorder)):
                continue
            module = root.get_submodule(rec.source)
            key = (side, name)
            copies[key] = []
            # ModuleInputsRecorder subclasses ModuleOutputsRecorder
            outputs = not isinstance(rec, ModuleInputsRecorder)

            def hook(mod, args, out, key=key, outputs=outputs):
                copies[key].append([t.detach().clone()
                                    for t in _tensors(out if outputs else args)])

            handles.append(module.register_forward_hook(hook))
            watched.append((key, rec))
    try:
        model.train()
        model.loss(inputs, data_samples)
    finally:
        for h in handles:
            h.remove()
    bad = []
    for key, rec in watched:
        assert len(rec.data_buffer) == len(copies[key]), key
        for got, want in zip(rec.data_buffer, copies[key]):
            if not all(torch.equal(a, b) for a, b in zip(_tensors(got), want)):
                bad.append((key[1], rec.source))
    return bad


@pytest.mark.slow
@pytest.mark.parametrize('config', CONFIGS)
def test_no_recorded_tensor_is_overwritten(config):
    from mmpretrain.structures import DataSample
    _, model = build_random_teacher_model(config)
    classes = 100 if 'cifar' in config else 1000
    size = 32 if 'cifar' in config else 64
    torch.manual_seed(0)
    inputs = torch.randn(4, 3, size, size)
    samples = [DataSample().set_gt_label(i % classes) for i in range(4)]
    assert overwritten_recordings(model, inputs, samples) == []


def test_the_check_sees_an_in_place_op_after_the_recorded_module():
    """A recorder on a BatchNorm whose output a residual ``out += identity`` overwrites."""
    from mmengine.model import BaseModel
    from mmrazor.models.algorithms import SingleTeacherDistill

    class Block(BaseModel):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = torch.nn.Conv2d(3, 3, 1), torch.nn.BatchNorm2d(3)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = self.bn(self.conv(inputs))
            out += inputs  # in place: the recorded BN output changes
            return dict(loss=out.mean()) if mode == 'loss' else out

    distiller = dict(type='ConfigurableDistiller',
                     student_recorders=dict(bn=dict(type='ModuleOutputs', source='bn')),
                     teacher_recorders=dict(bn=dict(type='ModuleOutputs', source='bn')),
                     distill_losses=dict(loss_mse=dict(type='MSEMetric')),
                     loss_forward_mappings=dict(loss_mse=dict(
                         preds_S=dict(from_student=True, recorder='bn'),
                         preds_T=dict(from_student=False, recorder='bn'))))
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmrazor'):  # an earlier test may have set mmdet
        model = SingleTeacherDistill(architecture=Block(), teacher=Block(), distiller=distiller)
    bad = overwritten_recordings(model, torch.randn(2, 3, 4, 4), None)
    assert ('bn', 'bn') in bad
