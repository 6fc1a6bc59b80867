"""Overhead of FM-KT on a ViT student: the train step of the FM-KT authors' DeiT recipe
(DeiT-III-S -> DeiT-T, their FM-KT preset on the logits + ViTKD on the tokens) over ViTKD alone,
both from their shipped configs (random weights), timed as :mod:`.resnet` times its rows."""
import os.path as osp

import torch

from ..common.device import quiet_logs
from ..common.files import REPO
from ..common.timing import interleaved_times, random_cls_batch, ratio_table
from ..common.timing import timing_config as _load
from .resnet import train_step_fn, where

__all__ = ['VIT_RATIOS', 'run_vit_overhead']

FMKT_VITKD_CONFIG = osp.join(REPO, 'configs', 'fmkt', 'deit3-small_deit-tiny_vitkd_in1k.py')
VITKD_CONFIG = osp.join(REPO, 'configs', 'baselines', 'vitkd_deit3-small_deit-tiny_in1k.py')

#: (key, label, numerator, denominator, target) of the overhead table.
VIT_RATIOS = [
    ('train_vit_fmkt', "train step, FM-KT (the authors' preset, N=8) + ViTKD / ViTKD, "
     'DeiT-III-S -> DeiT-T', 'fmkt_vitkd', 'vitkd', ()),
]


def run_vit_overhead(size: int = 224, batch: int = 8, repeats: int = 5, warmup: int = 2,
                     device: str = 'cpu', progress=None) -> dict:
    """``dict(setting, median_s, times_s, ratios)``: the rows of :data:`VIT_RATIOS` on one
    random batch (Mixup/CutMix of the configs' preprocessor included, as in training)."""
    from mmrazor.registry import MODELS

    import fmkt_plugin  # noqa: F401
    say = progress or (lambda msg: None)
    say('ViT overhead: building DeiT-III-S -> DeiT-T models')
    quiet_logs()
    torch.manual_seed(0)
    models = {'fmkt_vitkd': MODELS.build(_load(FMKT_VITKD_CONFIG).model),
              'vitkd': MODELS.build(_load(VITKD_CONFIG).model)}
    data = random_cls_batch(batch, size)
    fns = {}
    for name, model in models.items():
        model.init_weights()
        fns[name] = train_step_fn(model.to(device), data, device)
    say('ViT overhead: train steps')
    times = interleaved_times(fns, repeats, warmup)
    return ratio_table(f'DeiT-III-S -> DeiT-T, {size} px, batch {batch}, {where(device)}, '
                       f'torch {torch.__version__}', times, VIT_RATIOS)
