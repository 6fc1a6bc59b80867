"""``tools/train.py``: train a model (FM-KT distillation, a baseline or a plain model).

Command line (MMRazor / mmpretrain style)::

    CONFIG [--work-dir DIR] [--resume [auto|PATH]] [--overwrite] [--amp] [--auto-scale-lr]
           [--no-validate] [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

A work dir that holds another run's checkpoints is refused unless ``--resume`` continues that run
or ``--overwrite`` says to train over it; while a run trains, a lock in its work dir refuses a
second run on the same folder.
"""
import argparse
import contextlib
import glob
import os
import os.path as osp
from typing import Iterator, List, Optional

from mmengine.config import DictAction

from .annotations import check_detection_annotations
from .batchnorm_guard import guard_batchnorm_batches
from .config import build_runner_config, check_dataset_not_empty
from .image_lists import check_image_lists, check_images_exist

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
    parser.add_argument(
        '--overwrite', action='store_true',
        help="train into a work dir that holds another run's checkpoints (they are replaced)")
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
    if args.resume is None and not args.overwrite:
        check_fresh_work_dir(cfg.work_dir)
    # COCO-format annotation files: errors naming file, annotation and field now, not numpy's
    # once the dataloader is built (or a score against empty ground truth after training)
    check_detection_annotations(cfg, ('train', 'val'))
    check_image_lists(cfg, ('train', 'val'))  # a bad label: file and line, not int()'s error
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    check_logit_classes(runner.model)
    # torch's "Expected more than 1 value per channel" names neither layer nor setting
    loader = runner.cfg.get('train_dataloader') or {}
    guard_batchnorm_batches(runner.model, loader.get('batch_size'))
    if args.resume not in (None, 'auto'):
        # mmengine resumes with strict=False: a checkpoint of another model (KD's under an FM-KT
        # config) failed on the optimizer's parameter groups. Keys and shapes first, named.
        from .checkpoint import check_checkpoint_fits
        check_checkpoint_fits(runner.model, args.resume, args.config, field='--resume')
    return runner


def check_logit_classes(model) -> None:
    """Refuse a student and a teacher whose classifier heads differ in ``num_classes`` when the
    distiller records the teacher's head (logit distillation): the KD loss failed at the first
    step with a bare size mismatch."""
    model = getattr(model, 'module', model)
    distiller, teacher = getattr(model, 'distiller', None), getattr(model, 'teacher', None)
    student = getattr(model, 'architecture', None)
    recorders = getattr(getattr(distiller, 'teacher_recorders', None), 'recorders', {})
    if not any(str(getattr(r, 'source', '')).startswith('head') for r in recorders.values()):
        return
    classes = [getattr(getattr(m, 'head', None), 'num_classes', None) for m in (student, teacher)]
    if None not in classes and classes[0] != classes[1]:
        raise ValueError(
            f'model.architecture.head.num_classes={classes[0]}, but the teacher\'s head has '
            f'{classes[1]} classes: logit distillation compares the two heads, so both must '
            'have the same classes (set num_classes, or use a teacher trained on these classes)')


#: what mmengine's CheckpointHook writes into a work dir
_CHECKPOINTS = ('last_checkpoint', 'epoch_*.pth', 'iter_*.pth', 'best_*.pth')
LOCK_NAME = '.fmkt_train.lock'


def check_fresh_work_dir(work_dir: str) -> None:
    """Refuse a work dir that holds another run's checkpoints (a new run would overwrite them
    one by one, and ``--resume`` would then mix the two runs)."""
    for pattern in _CHECKPOINTS:
        found = sorted(glob.glob(osp.join(glob.escape(work_dir), pattern)))
        if found:
            raise FileExistsError(
                f'work dir {work_dir} holds checkpoints of an earlier run ({found[0]}): continue '
                'it with --resume, train into a new --work-dir, or pass --overwrite to replace '
                'them')


@contextlib.contextmanager
def work_dir_lock(work_dir: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<work_dir>/.fmkt_train.lock`` while training; a second run on
    the same work dir fails at once, naming it. The lock goes with the process (``flock``), so a
    killed run leaves nothing that blocks the next one."""
    import fcntl
    os.makedirs(work_dir, exist_ok=True)
    path = osp.join(work_dir, LOCK_NAME)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f'work dir {work_dir} is in use by another training run (it holds '
                               f'{path}); wait for it, or train into another --work-dir') from None
        os.ftruncate(fd, 0)
        os.write(fd, f'{os.getpid()}\n'.encode())
        yield
    finally:
        os.close(fd)


def main(argv: Optional[List[str]] = None):
    """Train as ``tools/train.py`` does; returns the runner after training."""
    runner = build_runner(argv)
    check_dataset_not_empty(runner, 'train')  # an empty dataset would "train" 0 iterations
    check_images_exist(runner, 'val')  # found at the first validation, after an epoch
    # one process of a run holds the lock (the ranks of a distributed run share the work dir)
    with work_dir_lock(runner.work_dir) if runner.rank == 0 else contextlib.nullcontext():
        runner.train()
    return runner
