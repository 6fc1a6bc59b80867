"""``tools/test.py``: evaluate a checkpoint, a distillation model (its student with the flow
head) or an exported student.

Command line (MMRazor / mmpretrain style)::

    CONFIG CHECKPOINT [--work-dir DIR] [--out FILE] [--cfg-options KEY=VALUE ...]
                      [--launcher {none,pytorch,slurm,mpi}]
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmengine.config import DictAction

from .annotations import check_detection_annotations
from .checkpoint import check_checkpoint_fits
from .config import build_runner_config, check_dataset_not_empty
from .train import add_launcher_args, set_local_rank

__all__ = ['parse_args', 'main']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line of ``tools/test.py`` (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description='Test (evaluate) a model with fmkt_plugin')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file or URL')
    parser.add_argument('--work-dir', help='the dir to save logs and metrics')
    parser.add_argument('--out', help='dump the evaluation metrics to this JSON/pickle file')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value pairs (xxx=yyy, a.b=[1,2])')
    add_launcher_args(parser)
    return set_local_rank(parser.parse_args(argv))


#: the formats ``mmengine.dump`` writes, by extension (it chooses the format from it)
_DUMP_FORMATS = ('.json', '.yaml', '.yml', '.pkl', '.pickle')


def _check_out(out: Optional[str]) -> None:
    if out is None:
        return
    if not out.lower().endswith(_DUMP_FORMATS):
        raise ValueError(f'--out {out}: the metrics are written as JSON, YAML or pickle, chosen by '
                         f'the extension; name a file ending in one of {", ".join(_DUMP_FORMATS)}')
    folder = osp.dirname(osp.abspath(out))
    if not osp.isdir(folder):
        raise FileNotFoundError(f'--out {out}: the folder {folder} does not exist')


def main(argv: Optional[List[str]] = None) -> dict:
    """Evaluate as ``tools/test.py`` does; returns the metrics."""
    args = parse_args(argv)
    _check_out(args.out)  # before the evaluation, not after it
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
