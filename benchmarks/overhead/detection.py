"""Train-step cost of FPN-level FM-KT relative to PKD, on CPU, from the shipped COCO configs
(same student, teacher, data preprocessor and optimizer; FM-KT adds its ``FlowFPN`` neck and
per-step losses), timed in interleaved rounds, random weights shared by both students."""
import os.path as osp
import statistics
from typing import Dict, List

import torch

import fmkt_plugin  # noqa: F401  (compat fixes before mmrazor is imported)

from ..common.files import REPO
from ..common.timing import interleaved_times, paired_ratio, ratio_record, timing_config

__all__ = ['CONFIGS', 'build_train_model', 'share_student_weights', 'det_overhead_ratio',
           'det_overhead_rows']

#: family -> (FM-KT config, PKD config), relative to the repository root.
CONFIGS = {
    'retinanet': ('configs/fmkt/fmkt_retinanet_x101_r50_fpn_2x_coco.py',
                  'configs/baselines/pkd_retinanet_x101_r50_fpn_2x_coco.py'),
    'faster-rcnn': ('configs/fmkt/fmkt_faster-rcnn_r101_r50_fpn_2x_coco.py',
                    'configs/baselines/pkd_faster-rcnn_r101_r50_fpn_2x_coco.py'),
}


def build_train_model(config: str):
    """The distillation model of ``config`` and its optimizer wrapper, offline: no pretrained
    weights, mmdet's initialisation, a tiny learning rate (repeated steps on one random batch
    stay finite; an SGD step costs the same at any rate)."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import init_default_scope

    from fmkt_plugin.registry import MODELS

    cfg = timing_config(osp.join(REPO, config), {'model.architecture.backbone.init_cfg': None,
                                                 'optim_wrapper.optimizer.lr': 1e-6})
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    model.architecture.init_weights()
    model.train()
    return model, build_optim_wrapper(model, cfg.optim_wrapper)


def share_student_weights(fmkt, pkd) -> None:
    """Give the FM-KT student PKD's student weights (``FlowFPN`` keeps the FPN as ``neck.fpn``;
    its flows keep their zero-initialised output, so they start as the identity). Both students
    then propose the same boxes: with their own random weights the two Faster R-CNNs pooled RoIs
    of other sizes, and mmcv's RoIAlign samples more points in a larger RoI, so the ratio also
    carried work that was not FM-KT's."""
    own = fmkt.student.state_dict()
    mapped = {}
    for key, value in pkd.student.state_dict().items():
        target = key if key in own else 'neck.fpn.' + key[len('neck.'):]
        if target not in own:
            raise RuntimeError(f'the FM-KT student has no counterpart of {key}')
        mapped[target] = value
    missing, _ = fmkt.student.load_state_dict(mapped, strict=False)
    if any(not key.startswith('neck.flows.') for key in missing):
        raise RuntimeError(f'FM-KT student weights that PKD\'s student lacks: {missing}')


def det_overhead_ratio(family: str = 'retinanet', size: int = 256, batch_size: int = 2,
                       repeats: int = 5, warmup: int = 1) -> Dict[str, float]:
    """``{'fmkt_s', 'pkd_s', 'ratio'}``: median seconds per train step of FM-KT (FPN) and PKD
    on ``family`` (``'retinanet'``: X-101 -> R-50, ``'faster-rcnn'``: R-101 -> R-50) with
    ``batch_size`` square ``size`` px images, and the median per-round ratio."""
    from mmdet.testing import demo_mm_inputs

    if family not in CONFIGS:
        raise ValueError(f'family must be one of {sorted(CONFIGS)}, got {family!r}')
    torch.manual_seed(0)
    data = demo_mm_inputs(batch_size=batch_size, image_shapes=(3, size, size), num_items=[3] *
                          batch_size, num_classes=80)
    models = {name: build_train_model(cfg) for name, cfg in zip(('fmkt', 'pkd'), CONFIGS[family])}
    share_student_weights(models['fmkt'][0], models['pkd'][0])
    times = interleaved_times({name: (lambda m=model, w=wrapper: m.train_step(data, w))
                               for name, (model, wrapper) in models.items()}, repeats, warmup)
    result = {f'{name}_s': statistics.median(ts) for name, ts in times.items()}
    result['ratio'] = paired_ratio(times, 'fmkt', 'pkd')
    return result


def det_overhead_rows(repeats: int, say, size: int = 256, batch_size: int = 2) -> List[dict]:
    """Rows of the overhead table for both COCO families. Runs last: it sets mmdet as the
    default scope."""
    rows = []
    for family in CONFIGS:
        say(f'overhead: FM-KT (FPN) / PKD train step, {family}')
        ratio = det_overhead_ratio(family, size, batch_size, repeats, warmup=1)['ratio']
        rows.append(ratio_record(
            f'train_fpn_{family}', f'train step, FM-KT FPN level / PKD, {family} R-50 student '
            f'({size} px, batch {batch_size})', ratio, '<= 1.25', lambda r: r <= 1.25))
    return rows
