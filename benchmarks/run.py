"""Fashion-MNIST benchmark of FM-KT against KD/DKD/DIST, plus the overhead benchmark
(:mod:`benchmarks.overhead`): the application on top of both.

Trains (and caches) the teachers, then every method on every teacher/student pair with every seed
of the chosen profile under the same budget, and writes ``results.json`` (every run),
``results.md`` (tables, paired differences with 95% intervals and verdicts) and
``accuracy.png`` / ``verdicts.png`` (forest plot) / ``fmkt_steps.png`` to ``<out>/<profile>/``.
Progress and an ETA are printed while it runs.

Usage (from the repository root)::

    python -m benchmarks.run --profile smoke|quick|default|full|gpu [--jobs 2] [--skip-overhead]
    python -m benchmarks.run --tune [--profile default] [--holdout 5000] [--seeds 0 1]
    python -m benchmarks.run --render benchmark_results/default/results.json

Profiles (see ``benchmarks/classification/configs.py``): ``smoke`` (CI, a few hundred
images), ``quick`` (1 seed, 1 epoch), ``default`` (the main job: the headline comparison,
5 paired seeds, 3 epochs, at most 25 minutes on 2 cores), ``extended`` (the rivals, the other
FM-KT^Theta forms, the feature level, the capacity control and the N analysis at the same
budget, reusing the main job's runs), ``full`` (more epochs), ``gpu`` (6 seeds, 6 epochs, bf16
autocast, 12 runs sharing one CUDA GPU).
``--holdout 5000`` trains on 55k images and reports on the 5k held out (the validation split;
the test split is then not read). ``--tune`` runs every method's grid
(``benchmarks/classification/tuning.py``) on the validation split and writes the picks to
``benchmarks/classification/tuned.json``, which the benchmark then applies (``--untuned``
ignores them).
``--render`` re-renders ``results.md`` and the plots next to a ``results.json``.
"""
import argparse
import json
import os
import os.path as osp
import time
from typing import List, Optional

from .classification.assembly import base_meta, split_records, write_benchmark, write_tune
from .classification.data import NUM_TRAIN, prepare_fashion_mnist
from .classification.executor import execute
from .classification.jobs import train_indices
from .classification.methods import METHODS
from .classification.planning import plan_jobs, plan_tune_jobs, resolve_profile, resolve_setting
from .classification.report import summarize, tune_markdown, write_markdown, write_plots
from .classification.tuning import TUNED_FILE, load_picks
from .common.cli import check_int_arg
from .common.device import AMP_DTYPES, device_name
from .common.eta import Progress, SpeedBook
from .common.files import write_text
from .overhead import run_table
from .overhead.report import overhead_markdown

__all__ = ['parse_args', 'main', 'render']

#: validation images held out of the training split by ``--tune`` when ``--holdout`` is not given
TUNE_HOLDOUT = 5000


def parse_args(argv=None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    from .classification.configs import PAIRS, PROFILES
    parser = argparse.ArgumentParser(description='Fashion-MNIST FM-KT benchmark',
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__)
    add = parser.add_argument
    add('--profile', default='default', choices=sorted(PROFILES))
    add('--out', default='benchmark_results', help='results folder (default: benchmark_results/)')
    add('--cache-dir', default=None, help='teacher/run cache (default: <out>/cache)')
    add('--jobs', type=int, default=None, help='parallel runs (default: the profile\'s)')
    add('--threads', type=int, default=None, help='torch threads per run (default: cores / jobs)')
    add('--seeds', type=int, nargs='+', default=None)
    add('--pairs', nargs='+', default=None, choices=sorted(PAIRS))
    add('--methods', nargs='+', default=None, choices=METHODS)
    add('--epochs', type=int, default=None, help='override student epochs')
    add('--holdout', type=int, default=None,
        help='hold out this many training images as the evaluation split (validation; the test '
        f'split is not read). Default 0, or {TUNE_HOLDOUT} with --tune')
    add('--tune', action='store_true', help='tune every method on the validation split and '
        'write the picks file')
    add('--tuned', default=None, help=f'picks file (default {osp.relpath(TUNED_FILE)}; with '
        '--tune: where the picks are written)')
    add('--untuned', action='store_true', help='ignore the picks file (HPARAMS as they are)')
    add('--skip-overhead', action='store_true',
        help='do not run the ResNet-34 -> ResNet-18 overhead benchmark')
    add('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    add('--amp', default='profile', choices=['profile', 'none'] + sorted(AMP_DTYPES),
        help='mixed precision of the runs on CUDA (default: the profile\'s; off on the CPU)')
    add('--render', metavar='RESULTS_JSON', default=None,
        help='only re-render results.md and the plots next to this results.json')
    args = parser.parse_args(argv)
    if args.holdout is None:
        args.holdout = TUNE_HOLDOUT if args.tune else 0
    _check_numbers(parser, args)
    if args.tune and args.holdout <= 0:
        parser.error('--tune evaluates on the validation split: --holdout must be > 0')
    args.amp = None if args.amp == 'none' else args.amp
    return args


def _check_numbers(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse numbers that would run something else than asked, before any work starts."""
    for field in ('epochs', 'jobs', 'threads'):
        value = getattr(args, field)
        if value is not None:
            check_int_arg(parser, value, f'--{field}', min_value=1)
    for seed in args.seeds or ():
        check_int_arg(parser, seed, '--seeds', ' (a seed seeds numpy, which takes [0, 2**32 - 1])',
                   min_value=0, max_value=2**32 - 1)
    check_int_arg(parser, args.holdout, '--holdout',
               f' (the held-out images are taken from the {NUM_TRAIN} images of the '
               'Fashion-MNIST training split, so it must be smaller than that; 0: no holdout)',
               min_value=0, max_value=NUM_TRAIN - 1)
    from .classification.configs import profile
    train_size = profile(args.profile)['train_size']
    if args.holdout and train_indices(train_size, args.holdout).numel() == 0:
        parser.error(f'--holdout {args.holdout} leaves no training image: the {args.profile} '
                     f'profile trains on {train_size} of the {NUM_TRAIN} images and the holdout '
                     'takes them all; hold out fewer')


def _overhead_prior(prof: dict, skip: bool) -> float:
    return 0.0 if skip else 90.0 + 30.0 * prof['overhead']['repeats']


def _prepare(args):
    """Profile, setting, folders and the jobs' common entries."""
    prof = resolve_profile(args.profile, args.seeds, args.pairs, args.methods, args.epochs,
                           tune=args.tune)
    setting = resolve_setting(prof, args.device, args.jobs, args.threads, args.amp)
    name = 'tune' if args.tune else args.profile + ('-val' if args.holdout else '')
    out_dir = osp.join(args.out, name)
    cache_dir = args.cache_dir or osp.join(args.out, 'cache')
    data_root = osp.join(cache_dir, 'data', 'fashion_mnist')
    os.makedirs(out_dir, exist_ok=True)
    base = dict(data_root=data_root, cache_dir=cache_dir, train_size=prof['train_size'],
                test_size=prof['test_size'], teacher_epochs=prof['teacher_epochs'],
                epochs=prof['epochs'], theta_epochs=prof['theta_epochs'],
                threads=setting['threads'], holdout=args.holdout, device=setting['device'],
                amp=setting['amp'], eval_steps=tuple(prof['eval_steps']))
    return prof, setting, out_dir, cache_dir, data_root, base


def _speed_book(cache_dir: str, setting: dict) -> SpeedBook:
    key = (f'{device_name(setting["device"])}, {setting["workers"]} run(s) x '
           f'{setting["threads"]} thread(s)' + (f', {setting["amp"]}' if setting['amp'] else ''))
    return SpeedBook(osp.join(cache_dir, 'speeds.json'), key, setting['device'])


def _overhead_text(meta: dict) -> str:
    return overhead_markdown(meta['overhead']) if meta.get('overhead') else ''


def render(path: str) -> dict:
    """Re-render ``results.md`` and the plots next to a ``results.json``; return its payload."""
    with open(path) as f:
        payload = json.load(f)
    out_dir, meta = osp.dirname(path), payload['meta']
    if 'trials' in payload:  # a tune run's results
        write_text(osp.join(out_dir, 'results.md'), tune_markdown(payload['trials'], meta))
        return payload
    summary = summarize(payload['runs'], payload['teachers'], meta['pairs'], meta['methods'])
    print(write_markdown(osp.join(out_dir, 'results.md'), summary, meta, _overhead_text(meta)))
    write_plots(out_dir, summary, payload['runs'])
    return payload


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the benchmark (or the tune mode) and return the written payload."""
    args = parse_args(argv)
    if args.render:
        return render(args.render)
    prof, setting, out_dir, cache_dir, data_root, base = _prepare(args)
    picks = {} if (args.untuned or args.tune) else load_picks(args.tuned)
    print(f'FM-KT Fashion-MNIST {"tuning" if args.tune else "benchmark"}: profile '
          f'{args.profile}, device {setting["device"]}'
          + (f' ({setting["amp"]} autocast)' if setting['amp'] else '')
          + f', {setting["workers"]} parallel run(s) x {setting["threads"]} thread(s), out '
          f'{out_dir}', flush=True)
    prepare_fashion_mnist(data_root)  # fails early, with the install command, if absent
    jobs = plan_tune_jobs(prof, base) if args.tune else plan_jobs(prof, base, picks)
    skip_overhead = args.skip_overhead or args.tune
    speeds = _speed_book(cache_dir, setting)
    progress = Progress(jobs, setting['workers'], speeds, _overhead_prior(prof, skip_overhead))
    started = time.time()
    results = execute(jobs, setting['workers'], progress)
    speeds.save()
    runs, teachers = split_records(results, list(prof['pairs']))
    meta = base_meta(args, prof, setting, runs, data_root, started, argv)
    if args.tune:
        return write_tune(out_dir, cache_dir, meta, runs, teachers, args.tuned or TUNED_FILE)
    meta['train_wall_time_s'] = time.time() - started
    progress.extra_s = 0.0
    meta['overhead'] = None if skip_overhead else run_table(
        prof['overhead'], setting['device'], setting['amp'],
        threads=min(setting['cores'], 2) if setting['device'] == 'cpu' else 0, say=progress.say)
    meta.update(picks=picks, wall_time_s=time.time() - started,
                runs_trained=sum(not r.get('cached') for r in runs + teachers),
                runs_total=len(runs) + len(teachers))
    payload = write_benchmark(out_dir, cache_dir, meta, runs, teachers, _overhead_text(meta))
    print(f'profile {args.profile}: wall time {_minutes(meta["wall_time_s"])} (training '
          f'{_minutes(meta["train_wall_time_s"])}, {meta["runs_trained"]} of '
          f'{meta["runs_total"]} runs trained, the rest from the run cache); results in '
          f'{out_dir}', flush=True)
    return payload


def _minutes(seconds: float) -> str:
    return f'{int(seconds // 60)} min {int(round(seconds % 60)):02d} s'


if __name__ == '__main__':
    main()
