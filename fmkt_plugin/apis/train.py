"""``tools/train.py``: train a model (FM-KT distillation, a baseline or a plain model).

Command line (MMRazor / mmpretrain style)::

    CONFIG [--work-dir DIR] [--resume [auto|PATH]] [--amp] [--auto-scale-lr] [--no-validate]
           [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]
"""
import argparse
import os
from typing import List, Optional

from mmengine.config import DictAction

from .annotations import check_detection_annotations
from .config import build_runner_config, check_dataset_not_empty

__all__ = ['parse_args', 'build_runner', 'main']

LAUNCHERS = ['none', 'pytorch', 'slurm', 'mpi']


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """``--launcher`` and the local-rank flag every distributed launcher passes."""
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none', help='job launcher')
    # torch < 2.0 launchers pass --local_rank, torch >= 2.0 (torchrun) --local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def set_local_rank(args: argparse.Namespace) -> argparse.Namespace:
    """Export ``--local-rank`` as ``LOCAL_RANK`` unless the launcher has set it already."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line of ``tools/train.py`` (``sys.argv[1:]`` when ``argv`` is None)."""
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
    add_launcher_args(parser)
    return set_local_rank(parser.parse_args(argv))


def build_runner(argv: Optional[List[str]] = None):
    """Parse the command line and build the mmengine ``Runner`` (without training)."""
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


def main(argv: Optional[List[str]] = None):
    """Train as ``tools/train.py`` does; returns the runner after training."""
    runner = build_runner(argv)
    check_dataset_not_empty(runner, 'train')  # an empty dataset would "train" 0 iterations
    runner.train()
    return runner
