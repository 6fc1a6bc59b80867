"""Evaluate a checkpoint: a distillation model (its student with the flow head) or an exported
student, from an OpenMMLab config.

Usage:
    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
                         [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm}]
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

import fmkt_plugin  # noqa: E402,F401  (applies compat fixes before mmrazor is imported)
from fmkt_plugin.apis import build_runner_config  # noqa: E402
from fmkt_plugin.apis.annotations import check_detection_annotations  # noqa: E402
from fmkt_plugin.apis.checkpoint import check_checkpoint_fits  # noqa: E402
from fmkt_plugin.apis.config import check_dataset_not_empty  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (evaluate) a model with fmkt_plugin')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file or URL')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='dump the evaluation metrics to this JSON/pickle file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value pairs (xxx=yyy, a.b=[1,2])')
    parser.add_argument(
        '--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmengine.runner import Runner

    cfg = build_runner_config(
        args.config,
        work_dir=args.work_dir,
        cfg_options=args.cfg_options,
        launcher=args.launcher,
        load_from=args.checkpoint)
    if cfg.get('test_dataloader', None) is None:
        raise ValueError(f'{args.config}: the config has no test_dataloader to evaluate on')
    check_detection_annotations(cfg, ('test', ))  # e.g. no ground truth to score against
    runner = Runner.from_cfg(cfg)
    # mmengine loads it with strict=False: a checkpoint of another model would be evaluated
    # on random weights with only a log line. Compare keys and shapes first.
    check_checkpoint_fits(runner.model, args.checkpoint, args.config)
    check_dataset_not_empty(runner, 'test')
    metrics = runner.test()
    if args.out:
        import mmengine
        mmengine.dump(metrics, args.out)
    return metrics


if __name__ == '__main__':
    main()
