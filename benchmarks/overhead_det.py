"""Training-step cost of FPN-level FM-KT relative to PKD, on CPU.

Both models come from the shipped COCO configs (same student, teacher, data preprocessor and
optimizer settings); the only difference is FM-KT's ``FlowFPN`` neck and its per-step losses.
One ``train_step`` (teacher backbone + FPN, student forward + backward, optimizer step) is timed
for each, in interleaved rounds (:func:`benchmarks.common.timing.interleaved_times`) so that load
changes on a shared machine hit both alike; the median of the per-round ratios is reported.

Usage::

    python -m benchmarks.overhead_det [--family retinanet|faster-rcnn] [--size 256]
        [--batch-size 2] [--repeats 5]
"""
import argparse
import os.path as osp
import statistics
from typing import Dict, Optional

import torch

import fmkt_plugin  # noqa: F401  (compat fixes before mmrazor is imported)
from benchmarks.common.files import REPO
from benchmarks.common.timing import interleaved_times, paired_ratio, timing_config

__all__ = ['CONFIGS', 'build_train_model', 'det_overhead_ratio']

#: family -> (FM-KT config, PKD config), relative to the repository root.
CONFIGS = {
    'retinanet': ('configs/fmkt/fmkt_retinanet_x101_r50_fpn_2x_coco.py',
                  'configs/baselines/pkd_retinanet_x101_r50_fpn_2x_coco.py'),
    'faster-rcnn': ('configs/fmkt/fmkt_faster-rcnn_r101_r50_fpn_2x_coco.py',
                    'configs/baselines/pkd_faster-rcnn_r101_r50_fpn_2x_coco.py'),
}


def build_train_model(config: str):
    """Build the distillation model and its optimizer wrapper of ``config``, offline.

    Pretrained backbones and the teacher checkpoint are not loaded (random weights cost the
    same to run); the student gets mmdet's initialisation and the learning rate is made tiny
    so that repeated steps on one random batch stay finite (an SGD step costs the same at any
    learning rate).
    """
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


def det_overhead_ratio(family: str = 'retinanet',
                       size: int = 256,
                       batch_size: int = 2,
                       repeats: int = 5,
                       warmup: int = 1,
                       verbose: bool = True) -> Dict[str, float]:
    """Median train-step time of FM-KT (FPN) over PKD for one detector family.

    Args:
        family: ``'retinanet'`` (X-101 -> R-50) or ``'faster-rcnn'`` (R-101 -> R-50).
        size: square image side in pixels.
        batch_size: images per step.
        repeats: timed steps per model (the median is used).
        warmup: untimed steps per model first.
        verbose: print the figures.

    Returns:
        ``{'fmkt_s', 'pkd_s', 'ratio'}``: median seconds per step, and the median over the
        rounds of FM-KT's step time over PKD's.
    """
    from mmdet.testing import demo_mm_inputs

    if family not in CONFIGS:
        raise ValueError(f'family must be one of {sorted(CONFIGS)}, got {family!r}')
    torch.manual_seed(0)
    data = demo_mm_inputs(batch_size=batch_size, image_shapes=(3, size, size), num_items=[3] *
                          batch_size, num_classes=80)
    models = {name: build_train_model(cfg) for name, cfg in zip(('fmkt', 'pkd'), CONFIGS[family])}
    times = interleaved_times({name: (lambda m=model, w=wrapper: m.train_step(data, w))
                               for name, (model, wrapper) in models.items()}, repeats, warmup)
    result = {f'{name}_s': statistics.median(ts) for name, ts in times.items()}
    result['ratio'] = paired_ratio(times, 'fmkt', 'pkd')
    if verbose:
        print(f'{family} R-50 student, {size}x{size}, batch {batch_size}, '
              f'{torch.get_num_threads()} threads, median of {repeats}: '
              f'FM-KT {result["fmkt_s"]:.3f} s/step, PKD {result["pkd_s"]:.3f} s/step, '
              f'ratio {result["ratio"]:.3f} (target <= 1.25)')
    return result


def main(argv: Optional[list] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--family', choices=sorted(CONFIGS), default='retinanet')
    parser.add_argument('--size', type=int, default=256)
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=1)
    args = parser.parse_args(argv)
    return det_overhead_ratio(args.family, args.size, args.batch_size, args.repeats,
                              args.warmup)


if __name__ == '__main__':
    main()
