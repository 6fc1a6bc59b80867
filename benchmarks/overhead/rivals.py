"""Overhead of DiffKD and RDR on ResNet-34 -> ResNet-18 (their cluster configs, random weights,
timed as :mod:`.resnet`): train step over KD, and inference of their deployed students over the
plain ResNet-18."""
import copy
import os.path as osp
from typing import Dict

import torch

from ..common.device import quiet_logs
from ..common.files import REPO
from ..common.timing import interleaved_times, random_cls_batch, ratio_table
from ..common.timing import timing_config as _load
from .resnet import KD_CONFIG, SAME, infer_fn, preprocessed, train_step_fn, where

__all__ = ['OVERHEAD_RATIOS', 'TRAIN_KEYS', 'INFER_KEYS', 'build_overhead_models',
           'run_rival_overhead']

DIFFKD_CONFIG = osp.join(REPO, 'configs', 'baselines', 'diffkd_res34_res18_in1k.py')
RDR_CONFIG = osp.join(REPO, 'configs', 'baselines', 'rdr_res34_res18_in1k.py')

#: (key, label, numerator, denominator, target text and check, if any) of the overhead table.
OVERHEAD_RATIOS = [
    ('train_diffkd', 'train step, DiffKD (layer4, 5 DDIM steps) + KD / KD', 'diffkd', 'kd', ()),
    ('train_rdr', 'train step, RDR (4 branches on layer4.1.conv2) + KD / KD', 'rdr', 'kd', ()),
    ('infer_diffkd', 'inference, DiffKD student (plain ResNet-18: the denoiser is training '
     'only) / plain', 'diffkd_student', 'plain', SAME),
    ('infer_rdr_unfolded', 'inference, RDR student before folding (4 branches) / plain',
     'rdr_unfolded', 'plain', ()),
    ('infer_rdr_folded', 'inference, RDR student folded (plain ResNet-18) / plain',
     'rdr_folded', 'plain', SAME),
]
TRAIN_KEYS = ('kd', 'diffkd', 'rdr')
INFER_KEYS = ('plain', 'diffkd_student', 'rdr_unfolded', 'rdr_folded')


def build_overhead_models() -> Dict[str, torch.nn.Module]:
    """KD, DiffKD and RDR algorithms (``TRAIN_KEYS``) and the inference students
    (``INFER_KEYS``): the plain ResNet-18, DiffKD's deployed student (a plain ResNet-18), the
    RDR student with its branches, and that student folded into a plain ResNet-18 (its extra
    branches perturbed first, so the fold is not trivial)."""
    from mmrazor.registry import MODELS

    import fmkt_plugin  # noqa: F401
    from fmkt_plugin.rivals.rdr import rdr_plain_student_state
    quiet_logs()
    kd_cfg = _load(KD_CONFIG)
    torch.manual_seed(0)
    models = {'kd': MODELS.build(kd_cfg.model),
              'diffkd': MODELS.build(_load(DIFFKD_CONFIG).model),
              'rdr': MODELS.build(_load(RDR_CONFIG).model)}
    arch = kd_cfg.model.architecture
    models['plain'] = MODELS.build(copy.deepcopy(arch))
    models['diffkd_student'] = MODELS.build(copy.deepcopy(arch))
    for m in models.values():
        m.init_weights()
    rdr_student = copy.deepcopy(models['rdr'].student)
    with torch.no_grad():
        for rep in (m for m in rdr_student.modules() if hasattr(m, 'fold')):
            for branch in rep.branches[1:]:
                branch.bn.weight.normal_(std=0.1)
    models['rdr_unfolded'] = rdr_student
    models['rdr_folded'] = MODELS.build(copy.deepcopy(arch))
    models['rdr_folded'].load_state_dict(rdr_plain_student_state(rdr_student), strict=True)
    return models


def run_rival_overhead(size: int = 224, batch: int = 8, repeats: int = 5, warmup: int = 2,
                       device: str = 'cpu', progress=None) -> dict:
    """``dict(setting, median_s, times_s, ratios)``: the rows of :data:`OVERHEAD_RATIOS`
    (``key, name, ratio, target, met``) on one random batch."""
    say = progress or (lambda msg: None)
    say('rival overhead: building ResNet-34 -> ResNet-18 models')
    models = {k: m.to(device) for k, m in build_overhead_models().items()}
    data = random_cls_batch(batch, size)
    train_fns = {name: train_step_fn(models[name], data, device) for name in TRAIN_KEYS}
    say('rival overhead: train steps')
    times = interleaved_times(train_fns, repeats, warmup)
    inputs = preprocessed(models['plain'], data['inputs'], device)
    say('rival overhead: inference')
    times.update(interleaved_times({k: infer_fn(models[k], inputs) for k in INFER_KEYS},
                                   repeats * 2, warmup))
    return ratio_table(f'ResNet-34 -> ResNet-18, {size} px, batch {batch}, {where(device)}, '
                       f'torch {torch.__version__}', times, OVERHEAD_RATIOS)
