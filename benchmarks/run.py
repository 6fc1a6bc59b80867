"""Fashion-MNIST benchmark of FM-KT against KD/DKD/DIST, plus the overhead benchmark.

Trains (and caches) the teachers, then every method on every teacher/student pair with every seed
of the chosen profile under the same budget, and writes ``results.json`` (every run),
``results.md`` (mean +- std table) and ``accuracy.png`` / ``fmkt_steps.png`` to
``<out>/<profile>/``. Progress and an ETA are printed while it runs.

Usage::

    python benchmarks/run.py --profile quick|default|full [--jobs 2] [--skip-overhead]

Profiles (see ``benchmarks/configs.py``): ``smoke`` (CI, a few hundred images), ``quick``
(1 seed, 1 epoch, about 3-4 minutes on 2 cores), ``default`` (3 seeds, 3 epochs, about 16 minutes
on 2 cores), ``full`` (more epochs, for a GPU). ``--holdout 5000`` trains on 55k images and
reports on the 5k held out (a validation split for tuning; the test split is then not read).
"""
import argparse
import multiprocessing as mp
import os
import os.path as osp
import platform
import queue as queue_lib
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Dict, List, Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import torch  # noqa: E402

import fmkt_plugin  # noqa: E402,F401  (compat fixes before any mmrazor import)
from benchmarks import configs as C  # noqa: E402
from benchmarks.data import IDX_BYTES, PACKAGE_DIR, prepare_fashion_mnist, sha256  # noqa: E402
from benchmarks.jobs import run_job  # noqa: E402
from benchmarks.report import summarize, write_json, write_markdown, write_plots  # noqa: E402

#: Relative cost of one epoch of each kind of job (student alone = 1), a prior for the ETA that
#: is rescaled by the measured speed as runs finish.
COST = dict(student=1.0, kd=1.1, dkd=1.1, dist=1.1, fmkt_kd=2.0, fmkt_dist=2.0, fmkt_theta=1.1,
            fmkt_fold=2.0, ofmkt=2.0, teacher_wide=4.0, teacher_deep=3.5)


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f'{seconds // 60:d}m{seconds % 60:02d}s'


def portable(obj, cache_dir: str):
    """``obj`` (nested dicts/lists) with every path inside the cache folder written as
    ``cache/...``, so that a published results.json names no path of the machine that made it."""
    if isinstance(obj, dict):
        return {k: portable(v, cache_dir) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable(v, cache_dir) for v in obj]
    if isinstance(obj, str) and osp.isabs(obj) and obj.startswith(osp.abspath(cache_dir) + os.sep):
        return osp.join('cache', osp.relpath(obj, cache_dir))
    return obj


def det_overhead_rows(repeats: int, say, size: int = 256, batch_size: int = 2) -> List[dict]:
    """Train-step time of FPN-level FM-KT over PKD for both COCO pairs (CPU), as rows of the
    overhead table. Runs last: it sets mmdet as the default scope."""
    from benchmarks.overhead_det import det_overhead_ratio
    rows = []
    for family in ('retinanet', 'faster-rcnn'):
        say(f'overhead: FM-KT (FPN) / PKD train step, {family}')
        result = det_overhead_ratio(family, size=size, batch_size=batch_size, repeats=repeats,
                                    warmup=1, verbose=False)
        rows.append(dict(key=f'train_fpn_{family}', ratio=result['ratio'], target='<= 1.25',
                         met=bool(result['ratio'] <= 1.25),
                         name=f'train step, FM-KT FPN level / PKD, {family} R-50 student '
                         f'({size} px, batch {batch_size})'))
    return rows


def plan_jobs(prof: dict, base: dict) -> List[dict]:
    """All jobs of a profile, teachers first, with their dependencies (``after``)."""
    jobs: List[dict] = []
    methods = list(prof['methods'])
    needs_teacher = any(m not in C.TEACHER_FREE for m in methods)
    if needs_teacher:
        for pair in prof['pairs']:
            jobs.append(dict(base, kind='teacher', id=f'teacher-{pair}', pair=pair, seed=0,
                             after=[], cost=COST[f'teacher_{pair}'] * prof['teacher_epochs']))
    if 'fmkt_theta' in methods and 'fmkt_kd' not in methods:
        raise ValueError('fmkt_theta needs fmkt_kd (its first stage) in the methods')
    for seed in prof['seeds']:
        for method in methods:
            pairs = prof['pairs']
            if method in C.TEACHER_FREE:
                # identical for every pair (same student, no teacher): run once, shown per pair
                pairs = pairs[:1]
            for pair in pairs:
                after = [] if method in C.TEACHER_FREE else [f'teacher-{pair}']
                epochs = prof['theta_epochs'] if method == 'fmkt_theta' else prof['epochs']
                if method == 'fmkt_theta':
                    after = after + [f'fmkt_kd-{pair}-s{seed}']
                jobs.append(dict(base, kind='run', id=f'{method}-{pair}-s{seed}', method=method,
                                 pair=pair, seed=seed, after=after,
                                 cost=COST[method] * epochs))
    # long jobs first among the ready ones; stage 1 of Theta early so stage 2 is not left last
    order = {m: i for i, m in enumerate(['fmkt_kd', 'fmkt_dist', 'fmkt_fold', 'ofmkt', 'dkd',
                                         'dist', 'kd', 'student', 'fmkt_theta'])}
    jobs.sort(key=lambda j: (j['kind'] != 'teacher', j.get('seed', 0),
                             order.get(j.get('method'), 0)))
    return jobs


class Progress:
    """Prints progress lines with the elapsed time and an ETA from the measured speed."""

    def __init__(self, jobs: List[dict], workers: int, extra_s: float = 0.0) -> None:
        self.total_cost = sum(j['cost'] for j in jobs)
        self.done_cost = 0.0
        self.measured_cost = 0.0
        self.measured_time = 0.0
        self.workers = workers
        self.extra_s = extra_s
        self.start = time.perf_counter()
        self.done = 0
        self.count = len(jobs)

    def finish(self, job: dict, record: dict) -> None:
        self.done += 1
        self.done_cost += job['cost']
        if not record.get('cached'):
            t = record.get('stage2_train_time_s', record.get('train_time_s', 0.0))
            self.measured_cost += job['cost']
            self.measured_time += t + record.get('eval_time_s', 0.0) + \
                record.get('cache_time_s', 0.0)

    def eta(self) -> Optional[float]:
        if self.measured_cost <= 0:
            return None
        per_unit = self.measured_time / self.measured_cost
        return (self.total_cost - self.done_cost) * per_unit / self.workers + self.extra_s

    def say(self, msg: str) -> None:
        eta = self.eta()
        head = (f'[{_fmt_time(time.perf_counter() - self.start)} | {self.done}/{self.count} '
                f'done | ETA {_fmt_time(eta) if eta is not None else "?"}]')
        print(f'{head} {msg}', flush=True)


def execute(jobs: List[dict], workers: int, progress: Progress) -> Dict[str, dict]:
    """Run the jobs respecting ``after``; in this process for one worker, else in a pool."""
    results: Dict[str, dict] = {}
    pending = list(jobs)

    def ready(job):
        return all(dep in results for dep in job['after'])

    def attach(job):
        job = dict(job)
        if job['kind'] == 'run':
            if job['method'] not in C.TEACHER_FREE:
                job['teacher'] = results[f'teacher-{job["pair"]}']
            if job['method'] == 'fmkt_theta':
                job['stage1'] = results[f'fmkt_kd-{job["pair"]}-s{job["seed"]}']
        return job

    def report(job, record):
        results[job['id']] = record
        progress.finish(job, record)
        what = 'teacher' if job['kind'] == 'teacher' else C.METHOD_LABELS[job['method']]
        extra = ''
        if record.get('top1_by_steps'):
            extra = ' (N=1..8: ' + ', '.join(f'{v:.2f}' for v in
                                              record['top1_by_steps'].values()) + ')'
        progress.say(f'{job["id"]}: {what} top-1 {record["top1"]:.2f}{extra}, '
                     f'train {record.get("stage2_train_time_s", record["train_time_s"]):.0f} s'
                     + (' (cached)' if record.get('cached') else ''))

    if workers <= 1:
        while pending:
            job = next(j for j in pending if ready(j))
            pending.remove(job)
            progress.say(f'start {job["id"]}')
            record = run_job(attach(job), _PrintQueue(progress))
            report(job, record)
        return results

    ctx = mp.get_context('spawn')
    manager = ctx.Manager()
    msgs = manager.Queue()
    running = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        while pending or running:
            for job in [j for j in pending if ready(j)]:
                if len(running) >= workers:
                    break
                pending.remove(job)
                running[pool.submit(run_job, attach(job), msgs)] = job
                progress.say(f'start {job["id"]}')
            if not running:
                raise RuntimeError(f'jobs with unmet dependencies: {[j["id"] for j in pending]}')
            done, _ = wait(list(running), timeout=2.0, return_when=FIRST_COMPLETED)
            _drain(msgs, progress)
            for fut in done:
                job = running.pop(fut)
                report(job, fut.result())
    manager.shutdown()
    return results


class _PrintQueue:
    """Queue stand-in for in-process runs: prints worker progress lines at once."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def put(self, item) -> None:
        self.progress.say(item[1])


def _drain(msgs, progress: Progress) -> None:
    while True:
        try:
            _, msg = msgs.get_nowait()
        except (queue_lib.Empty, EOFError, OSError):
            return
        progress.say(msg)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Fashion-MNIST FM-KT benchmark',
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__)
    parser.add_argument('--profile', default='default', choices=sorted(C.PROFILES))
    parser.add_argument('--out', default=osp.join(REPO, 'benchmark_results'),
                        help='results folder (default: benchmark_results/)')
    parser.add_argument('--cache-dir', default=None,
                        help='teacher/run cache (default: <out>/cache)')
    parser.add_argument('--jobs', type=int, default=None,
                        help='parallel runs (default: the profile\'s; 1 runs in-process)')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads per run (default: cores / jobs)')
    parser.add_argument('--seeds', type=int, nargs='+', default=None)
    parser.add_argument('--pairs', nargs='+', default=None, choices=sorted(C.PAIRS))
    parser.add_argument('--methods', nargs='+', default=None, choices=C.METHODS)
    parser.add_argument('--epochs', type=int, default=None, help='override student epochs')
    parser.add_argument('--holdout', type=int, default=0,
                        help='hold out this many training images as the evaluation split '
                        '(validation; the test split is not read)')
    parser.add_argument('--skip-overhead', action='store_true',
                        help='do not run the ResNet-34 -> ResNet-18 overhead benchmark')
    parser.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    prof = C.profile(args.profile)
    for key in ('seeds', 'pairs', 'methods'):
        if getattr(args, key) is not None:
            prof[key] = tuple(getattr(args, key))
    if args.epochs is not None:
        prof['epochs'] = args.epochs
    device = args.device
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    workers = args.jobs or (1 if device == 'cuda' else prof['jobs'])
    cores = os.cpu_count() or 1
    threads = args.threads or max(1, cores // workers)
    name = args.profile + ('-val' if args.holdout else '')
    out_dir = osp.join(args.out, name)
    cache_dir = args.cache_dir or osp.join(args.out, 'cache')
    data_root = osp.join(cache_dir, 'data', 'fashion_mnist')
    os.makedirs(out_dir, exist_ok=True)

    print(f'FM-KT Fashion-MNIST benchmark: profile {args.profile}, device {device}, '
          f'{workers} parallel run(s) x {threads} thread(s), out {out_dir}', flush=True)
    prepare_fashion_mnist(data_root)  # fails early, with the install command, if absent
    base = dict(data_root=data_root, cache_dir=cache_dir, train_size=prof['train_size'],
                test_size=prof['test_size'], teacher_epochs=prof['teacher_epochs'],
                epochs=prof['epochs'], theta_epochs=prof['theta_epochs'], threads=threads,
                holdout=args.holdout, device=device)
    jobs = plan_jobs(prof, base)
    ov_cfg = prof['overhead']
    ov_prior = 0.0 if args.skip_overhead else 60.0 + 20.0 * ov_cfg['repeats']
    progress = Progress(jobs, workers, extra_s=ov_prior)
    started = time.time()
    results = execute(jobs, workers, progress)
    train_wall = time.time() - started

    overhead = None
    if not args.skip_overhead:
        from benchmarks.overhead import run_overhead
        progress.extra_s = 0.0
        overhead = run_overhead(ov_cfg['size'], ov_cfg['batch'], ov_cfg['repeats'],
                                ov_cfg['warmup'], threads=min(cores, 2) if device == 'cpu'
                                else 0, progress=progress.say)
        overhead['ratios'] += det_overhead_rows(ov_cfg['repeats'], progress.say)
    runs = [r for r in results.values() if r['kind'] == 'run']
    teachers = [r for r in results.values() if r['kind'] == 'teacher']
    # teacher-free runs were trained once per seed; list them under every pair
    for r in list(runs):
        if r['method'] in C.TEACHER_FREE:
            for pair in prof['pairs'][1:]:
                runs.append(dict(r, pair=pair, shared_with=r['pair']))
    summary = summarize(runs, teachers, list(prof['pairs']), list(prof['methods']))
    first = runs[0] if runs else {}
    meta = dict(
        profile=args.profile, holdout=args.holdout,
        evaluated_on=('validation split held out of the training images' if args.holdout
                      else 'test split'),
        seeds=list(prof['seeds']), pairs=list(prof['pairs']), methods=list(prof['methods']),
        student_epochs=prof['epochs'], theta_epochs=prof['theta_epochs'],
        teacher_epochs=prof['teacher_epochs'], train_images=first.get('train_images'),
        test_images=first.get('test_images'), jobs=workers, threads=threads,
        device=(torch.cuda.get_device_name(0) if device == 'cuda' else
                f'{cores}-core CPU ({platform.processor() or platform.machine()})'),
        torch=torch.__version__, python=platform.python_version(),
        hparams=C.HPARAMS, started=time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started)),
        wall_time_s=time.time() - started, train_wall_time_s=train_wall,
        data=dict(package_dir=PACKAGE_DIR, sha256={
            n: sha256(osp.join(data_root, n)) for n in IDX_BYTES}),
        command=' '.join(['python', 'benchmarks/run.py'] + (argv if argv is not None
                                                             else sys.argv[1:])),
        overhead=overhead)
    payload = portable(dict(meta=meta, teachers=teachers, runs=runs, summary=summary), cache_dir)
    write_json(osp.join(out_dir, 'results.json'), payload)
    text = write_markdown(osp.join(out_dir, 'results.md'), summary, meta)
    plots = write_plots(out_dir, summary, runs)
    print('\n' + text)
    print(f'wrote {osp.join(out_dir, "results.json")}, results.md, '
          f'{", ".join(osp.basename(p) for p in plots)} in {_fmt_time(meta["wall_time_s"])}',
          flush=True)
    return payload


if __name__ == '__main__':
    main()
