"""Detection benchmark: FM-KT (FPN) against PKD and the student alone, scored by bbox mAP.

Writes a COCO-format set of Fashion-MNIST scenes (cached), trains the RetinaNet teacher once
(cached), then for every seed the student alone, PKD and FM-KT (FPN) at the same budget, all
through mmengine's ``Runner`` with the configs
``configs/{_base_/pairs,baselines,fmkt}/*retinanet_r34w_r18_fpn_fmnist-det.py``, scores each with
mmdet's ``CocoMetric`` and, for FM-KT, exports the student with
``tools/convert_fmkt_ckpt_to_student.py`` and scores it again through ``tools/test.py``.
Writes ``results.json``, ``results.md`` (table, paired differences with 95% t intervals) and
``det_map.png`` to ``<out>/det-<profile>/``; prints progress lines with an ETA.

Usage::

    python -m benchmarks.detection.run [--profile smoke|default|gpu] [--split test|val]
        [--jobs 2] [--seeds 0 1 2] [--iters N] [--out benchmark_results]

Profiles: ``smoke`` (a few iterations on a handful of scenes, for the tests), ``default``
(3 seeds on 2 CPU cores, about 20 minutes), ``gpu`` (more scenes, iterations and seeds; for
one GPU). ``--split val`` scores on the validation scenes (for choosing settings); the test
scenes are then not read.
"""
import argparse
import os
import os.path as osp
import time
from dataclasses import asdict
from typing import Dict, List

from ..common.cli import check_int_arg
from ..common.device import device_name, effective_amp, select_device
from ..common.eta import Progress, SpeedBook, fmt_time
from ..common.executor import execute
from ..common.files import REPO, write_json
from ..common.fmnist import data_facts, prepare_fashion_mnist, read_fashion_mnist
from ..common.provenance import portable, run_facts
from .jobs import METHOD_LABELS, METHODS, run_job
from .report import summarize, verdict, write_markdown, write_plot
from .scenes import SceneSpec, write_scene_set

__all__ = ['PROFILES', 'plan_jobs', 'main']

PROFILES: Dict[str, dict] = {
    'smoke': dict(scenes={'train': 8, 'val': 4, 'test': 4}, seeds=(0, ), teacher_iters=2,
                  iters=2, batch_size=4, jobs=1, warmup_iters=1, report_every=1, score_thr=0.0),
    # sized for 2 CPU cores: batch 8 (half the COCO recipe's per-GPU 16), a teacher of 600 and
    # students of 300 iterations; 300 test scenes
    'default': dict(scenes={'train': 2000, 'val': 300, 'test': 300}, seeds=(0, 1, 2),
                    teacher_iters=600, iters=300, batch_size=8, jobs=2, warmup_iters=50,
                    report_every=50),
    'gpu': dict(scenes={'train': 20000, 'val': 1000, 'test': 2000}, seeds=(0, 1, 2, 3, 4),
                teacher_iters=12000, iters=6000, batch_size=32, jobs=1, warmup_iters=500,
                report_every=500),
}
SCENE_SEED = 0
#: relative cost of one training iteration (student alone = 1), a prior for the ETA that is
#: rescaled by the measured speed as jobs finish.
COST = dict(teacher=2.5, student=1.0, pkd=1.6, fmkt=2.0)
EVAL_COST = 0.15  # per evaluated image and scoring (one forward, NMS, pycocotools)


def plan_jobs(prof: dict, base: dict) -> List[dict]:
    """The teacher job, then every method for every seed (``after``: dependencies)."""
    evals = base['eval_images']
    jobs = []
    if any(m != 'student' for m in prof['methods']):
        jobs.append(dict(base, kind='teacher', id='teacher', seed=0, iters=prof['teacher_iters'],
                         after=[], cost=COST['teacher'] * prof['teacher_iters'] +
                         EVAL_COST * evals))
    order = {'fmkt': 0, 'pkd': 1, 'student': 2}
    for seed in prof['seeds']:
        for method in sorted(prof['methods'], key=order.get):
            n_evals = 2 if method == 'fmkt' else 1
            jobs.append(dict(base, kind='run', id=f'{method}-s{seed}', method=method,
                             seed=seed, iters=prof['iters'],
                             after=[] if method == 'student' else ['teacher'],
                             cost=COST[method] * prof['iters'] + EVAL_COST * evals * n_evals))
    return jobs


def _attach(job: dict, results: Dict[str, dict]) -> dict:
    """The job as it runs: a distillation run gets the teacher's record."""
    job = {k: v for k, v in job.items() if k not in ('after', 'cost')}
    if job['kind'] == 'run' and job['method'] != 'student':
        job['teacher'] = results['teacher']
    return job


def _describe(job: dict, record: dict) -> str:
    what = 'teacher' if job['kind'] == 'teacher' else METHOD_LABELS[job['method']]
    extra = ''
    if 'export' in record:
        extra = f'; exported student mAP {record["export"]["mAP"]:.2f}'
    return (f'{job["id"]}: {what} mAP {record["mAP"]:.2f}, mAP50 {record["mAP50"]:.2f}{extra}, '
            f'train {record["train_time_s"]:.0f} s')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='FM-KT (FPN) detection benchmark',
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__)
    parser.add_argument('--profile', default='default', choices=sorted(PROFILES))
    parser.add_argument('--split', default='test', choices=['test', 'val'],
                        help='scenes to score on (val: for choosing settings)')
    parser.add_argument('--out', default=osp.join(REPO, 'benchmark_results'),
                        help='results folder (default: benchmark_results/)')
    parser.add_argument('--cache-dir', default=None,
                        help='scenes, teacher and run cache (default: <out>/cache/det)')
    parser.add_argument('--jobs', type=int, default=None, help='parallel runs')
    parser.add_argument('--threads', type=int, default=None,
                        help='torch threads per run (default: cores / jobs)')
    parser.add_argument('--seeds', type=int, nargs='+', default=None)
    parser.add_argument('--methods', nargs='+', default=None, choices=METHODS)
    parser.add_argument('--iters', type=int, default=None, help='student training iterations')
    parser.add_argument('--teacher-iters', type=int, default=None)
    parser.add_argument('--train-scenes', type=int, default=None)
    parser.add_argument('--lr', type=float, default=None, help='override the optimizer lr')
    parser.add_argument('--ema-momentum', type=float, default=None,
                        help="override FM-KT's FlowEMAHook momentum")
    parser.add_argument('--tag', default='', help='suffix of the output folder name')
    parser.add_argument('--amp', default='none', choices=['none', 'fp16', 'bf16'],
                        help='mixed precision of the training runs on CUDA (ignored on the CPU)')
    args = parser.parse_args(argv)
    for field in ('iters', 'teacher_iters', 'train_scenes'):  # before any work starts
        if getattr(args, field) is not None:
            check_int_arg(parser, getattr(args, field), f'--{field.replace("_", "-")}',
                          min_value=1)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    prof = dict(PROFILES[args.profile], methods=tuple(args.methods or METHODS))
    for key, value in (('seeds', args.seeds), ('iters', args.iters),
                       ('teacher_iters', args.teacher_iters)):
        if value is not None:
            prof[key] = tuple(value) if key == 'seeds' else value
    if args.train_scenes is not None:
        prof['scenes'] = dict(prof['scenes'], train=args.train_scenes)
    device = select_device('auto')
    workers = args.jobs or (1 if device == 'cuda' else prof['jobs'])
    threads = args.threads or max(1, (os.cpu_count() or 1) // workers)
    name = f'det-{args.profile}' + ('-val' if args.split == 'val' else '') + \
        (f'-{args.tag}' if args.tag else '')
    out_dir = osp.join(args.out, name)
    cache_dir = args.cache_dir or osp.join(args.out, 'cache', 'det')
    os.makedirs(out_dir, exist_ok=True)
    print(f'FM-KT detection benchmark: profile {args.profile}, scored on the {args.split} '
          f'scenes, device {device}, {workers} parallel run(s) x {threads} thread(s), out '
          f'{out_dir}', flush=True)

    started = time.time()
    data_root = osp.join(args.out, 'cache', 'data', 'fashion_mnist')
    prepare_fashion_mnist(data_root)  # fails early, with the install command, if absent
    spec = SceneSpec()
    scenes = write_scene_set(cache_dir, lambda: read_fashion_mnist(data_root),
                             num_images=prof['scenes'], spec=spec, seed=SCENE_SEED)
    print(f'scenes {scenes.key}: ' + ', '.join(
        f'{s} {prof["scenes"][s]} images / {scenes.num_objects[s]} garments'
        for s in prof['scenes']) + f' ({time.time() - started:.0f} s)', flush=True)

    base = dict(scenes_root=scenes.root, scenes_key=scenes.key, eval_split=args.split,
                cache_dir=cache_dir, threads=threads, batch_size=prof['batch_size'],
                warmup_iters=prof['warmup_iters'], report_every=prof['report_every'],
                eval_images=prof['scenes'][args.split], lr=args.lr,
                ema_momentum=args.ema_momentum, score_thr=prof.get('score_thr'),
                amp=effective_amp(None if args.amp == 'none' else args.amp, device))
    jobs = plan_jobs(prof, base)
    speeds = SpeedBook(osp.join(cache_dir, 'speeds.json'),
                       f'{device_name(device)}, {workers} run(s) x {threads} thread(s)'
                       + (f', {base["amp"]}' if base['amp'] else ''), device, defaults={})
    results = execute(jobs, workers, Progress(jobs, workers, speeds), run_job, _attach,
                      _describe)

    teacher = results.get('teacher', {})
    runs = []
    for record in results.values():
        if record['kind'] != 'run':
            continue
        runs.append(record)
        if 'export' in record:
            exp = record['export']
            runs.append(dict(exp, kind='run', method='fmkt_export', seed=record['seed'],
                             train_time_s=0.0, id=record['id'] + '-export'))
    summary = summarize(runs, teacher)
    meta = dict(
        profile=args.profile, split=args.split,
        evaluated_on=('validation scenes' if args.split == 'val' else 'test scenes'),
        seeds=list(prof['seeds']), methods=list(prof['methods']), iters=prof['iters'],
        teacher_iters=prof['teacher_iters'], batch_size=prof['batch_size'],
        train_images=prof['scenes']['train'], eval_images=prof['scenes'][args.split],
        scenes=dict(key=scenes.key, num_images=prof['scenes'], num_objects=scenes.num_objects,
                    spec=asdict(spec), seed=SCENE_SEED), canvas=spec.canvas,
        jobs=workers, threads=threads, lr=args.lr, ema_momentum=args.ema_momentum,
        amp=base['amp'], data=data_facts(data_root),
        **run_facts(device, started, 'benchmarks.detection.run', argv))
    payload = portable(dict(meta=meta, teacher=teacher, runs=runs, summary=summary),
                       {'cache': cache_dir, 'out': args.out, 'repo': REPO})
    write_json(osp.join(out_dir, 'results.json'), payload)
    text = write_markdown(osp.join(out_dir, 'results.md'), summary, meta)
    write_plot(osp.join(out_dir, 'det_map.png'), summary)
    print('\n' + text, flush=True)
    print(verdict(summary))
    print(f'wrote {out_dir}/results.json, results.md, det_map.png in '
          f'{fmt_time(meta["wall_time_s"])}', flush=True)
    return payload


if __name__ == '__main__':
    main()
