"""Train a model (FM-KT distillation, a baseline or a plain model) from an OpenMMLab config.

Usage:
    python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|PATH]] [--amp]
                          [--auto-scale-lr]
                          [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm}]
"""
import argparse
import os
import os.path as osp
import sys

# Make the repository importable when the plugin is not installed (e.g. a plain checkout).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

import fmkt_plugin  # noqa: E402,F401  (applies compat fixes before mmrazor is imported)
from fmkt_plugin.apis import build_runner_config  # noqa: E402
from fmkt_plugin.apis.annotations import check_detection_annotations  # noqa: E402
from fmkt_plugin.apis.config import check_dataset_not_empty  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model with fmkt_plugin')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and checkpoints')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or from the latest checkpoint in the work dir '
        'when no path (or "auto") is given')
    parser.add_argument('--amp', action='store_true', help='enable automatic mixed precision')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate linearly by the actual total batch size over the '
        "config's auto_scale_lr.base_batch_size")
    parser.add_argument(
        '--no-validate', action='store_true', help='do not evaluate during training')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value pairs (xxx=yyy, a.b=[1,2])')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    # torch < 2.0 launchers pass --local_rank, torch >= 2.0 (torchrun) --local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_runner(argv=None):
    """Parse the command line and build the mmengine Runner (without training)."""
    args = parse_args(argv)
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    cfg = build_runner_config(
        args.config,
        work_dir=args.work_dir,
        cfg_options=args.cfg_options,
        launcher=args.launcher,
        amp=args.amp,
        resume=args.resume,
        no_validate=args.no_validate,
        auto_scale_lr=args.auto_scale_lr)
    # COCO-format annotation files: errors naming file, annotation and field now, not numpy's
    # once the dataloader is built (or a score against empty ground truth after training)
    check_detection_annotations(cfg, ('train', 'val'))
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def main(argv=None):
    runner = build_runner(argv)
    check_dataset_not_empty(runner, 'train')  # an empty dataset would "train" 0 iterations
    runner.train()
    return runner


if __name__ == '__main__':
    main()
