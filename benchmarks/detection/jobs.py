"""Units of work of the detection benchmark: train the teacher (cached), train one method with
one seed through mmengine's ``Runner`` and score it with mmdet's ``CocoMetric``; for FM-KT also
export the student and score the exported detector, through the functions that the project's
tools run (``fmkt_plugin.apis.convert`` and ``.test``: ``tools/convert_fmkt_ckpt_to_student.py``,
``tools/test.py``). Each job is a plain dict, runnable in a worker process; results are cached
as JSON next to their key, so an interrupted benchmark resumes where it stopped."""
import contextlib
import copy
import os
import os.path as osp
import shutil
import sys
import time
from typing import Callable

from ..common.files import REPO
from ..common.store import config_key, entry_path, load_record, save_record

__all__ = ['CONFIGS', 'METHODS', 'METHOD_LABELS', 'run_job', 'job_options', 'method_config',
           'job_key']

#: the pair config (teacher, student) and the distillation configs, relative to the repo root.
PAIR_CONFIG = 'configs/_base_/pairs/retinanet_r34w_r18_fpn_fmnist-det.py'
CONFIGS = {
    'teacher': PAIR_CONFIG,
    'student': PAIR_CONFIG,
    'pkd': 'configs/baselines/pkd_retinanet_r34w_r18_fpn_fmnist-det.py',
    'fmkt': 'configs/fmkt/fmkt_retinanet_r34w_r18_fpn_fmnist-det.py',
}
#: trained methods (``fmkt_export`` is scored from the ``fmkt`` run's checkpoint).
METHODS = ('student', 'pkd', 'fmkt')
METHOD_LABELS = {
    'teacher': 'teacher (R-34, width 32)',
    'student': 'student alone (R-18, width 16)',
    'pkd': 'PKD',
    'fmkt': 'FM-KT (FPN)',
    'fmkt_export': 'FM-KT (FPN), exported student via tools/test.py',
}
CACHE_VERSION = 1


def job_options(job: dict) -> dict:
    """cfg-options of a job: the scene set, the evaluation split, the budget and the seed."""
    root = job['scenes_root']
    split = job['eval_split']
    iters = int(job['iters'])
    warmup = max(1, min(int(job.get('warmup_iters', 50)), iters // 4 or 1))
    opts = {
        'randomness': dict(seed=int(job['seed']), deterministic=False),
        'train_cfg.max_iters': iters,
        'train_cfg.val_interval': iters,
        'param_scheduler': [
            dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup),
            dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup, end=max(iters,
                                                                                warmup + 1),
                 T_max=max(1, iters - warmup), eta_min_ratio=0.01),
        ],
        'default_hooks.checkpoint.interval': iters,
        'default_hooks.logger.interval': max(1, min(50, iters)),
        'env_cfg.dist_cfg.backend': 'gloo',
        'log_level': 'WARNING',
    }
    if job.get('score_thr') is not None:  # the smoke keeps every detection for the metric
        for part in ('architecture', 'teacher'):
            opts[f'model.{part}.test_cfg.score_thr'] = float(job['score_thr'])
    if job.get('lr') is not None:
        opts['optim_wrapper.optimizer.lr'] = float(job['lr'])
    if job.get('amp'):  # mixed precision on CUDA: the classification benchmark's wrapper
        from ..common.device import optim_wrapper_cfg
        wrapper = optim_wrapper_cfg({}, 'cuda', job['amp'])
        opts.update({f'optim_wrapper.{k}': v for k, v in wrapper.items() if k != 'optimizer'})
    for loader, data_split in (('train_dataloader', 'train'), ('val_dataloader', split),
                               ('test_dataloader', split)):
        opts[f'{loader}.batch_size'] = int(job['batch_size'])
        opts[f'{loader}.dataset.data_root'] = root + os.sep
        opts[f'{loader}.dataset.ann_file'] = f'annotations/instances_{data_split}.json'
        opts[f'{loader}.dataset.data_prefix'] = dict(img=f'{data_split}/')
    ann = osp.join(root, 'annotations', f'instances_{split}.json')
    opts['val_evaluator.ann_file'] = ann
    opts['test_evaluator.ann_file'] = ann
    if job['kind'] == 'run' and job['method'] in ('pkd', 'fmkt'):
        opts['model.teacher_ckpt'] = job['teacher']['ckpt']
    if job['kind'] == 'run' and job['method'] == 'fmkt' and job.get('ema_momentum'):
        opts['custom_hooks'] = [dict(type='EpochSeedHook'),
                                dict(type='FlowEMAHook', momentum=float(job['ema_momentum']))]
    return opts


def method_config(job: dict):
    """The full config of a job (a ``Config``): the method's config file with the job's
    options; for the teacher and the student alone, the pair's detector as a plain mmdet
    model."""
    from fmkt_plugin.apis import load_config
    what = 'teacher' if job['kind'] == 'teacher' else job['method']
    cfg = load_config(osp.join(REPO, CONFIGS[what]), job_options(job))
    if what in ('teacher', 'student'):
        detector = cfg.model['teacher' if what == 'teacher' else 'architecture']
        cfg.model = copy.deepcopy(detector)
        cfg.pop('find_unused_parameters', None)
        cfg.custom_hooks = [h for h in cfg.get('custom_hooks', [])
                            if h.get('type') != 'FlowEMAHook']
    return cfg


def job_key(job: dict) -> str:
    """Cache key: the job's resolved config, the scene set and (for distillation) the
    teacher's key."""
    cfg = method_config(dict(job, scenes_root='<scenes>', teacher=dict(ckpt='<teacher>')))
    return config_key(job['kind'], job.get('method'), cfg.to_dict(), job['scenes_key'],
                      job['eval_split'], (job.get('teacher') or {}).get('key'), CACHE_VERSION)


def _progress_hook(name: str, every: int, report: Callable[[str], None]):
    """An mmengine hook that reports the training iteration and loss every ``every`` iters."""
    from mmengine.hooks import Hook

    class ProgressHook(Hook):
        priority = 'LOWEST'

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            it = runner.iter + 1
            if it % every == 0 or it == runner.max_iters:
                loss = float(outputs['loss'].detach()) if outputs and 'loss' in outputs else \
                    float('nan')
                report(f'{name}: iter {it}/{runner.max_iters}, loss {loss:.3f}')

    return ProgressHook()


def _metrics(raw: dict) -> dict:
    # CocoMetric returns no bbox keys when no image has a detection above the score threshold
    # (an untrained detector): that is a score of 0.
    return {'mAP': 100.0 * float(raw.get('coco/bbox_mAP', 0.0)),
            'mAP50': 100.0 * float(raw.get('coco/bbox_mAP_50', 0.0)),
            'mAP75': 100.0 * float(raw.get('coco/bbox_mAP_75', 0.0))}


def _train_and_test(job: dict, work_dir: str, report: Callable[[str], None]) -> dict:
    """Train the job's model with mmengine's Runner, then score it on the evaluation split."""
    from mmengine.runner import Runner

    from fmkt_plugin.apis import build_runner_config

    cfg = method_config(job)
    if job['kind'] == 'run' and job['method'] == 'fmkt':
        # keep the detections too: the exported student must reproduce them
        cfg.test_evaluator = [cfg.test_evaluator, dict(
            type='DumpDetResults', out_file_path=osp.join(work_dir, 'predictions.pkl'))]
    os.makedirs(work_dir, exist_ok=True)
    cfg_path = osp.join(work_dir, 'config.py')
    cfg.dump(cfg_path)
    runner_cfg = build_runner_config(cfg_path, work_dir=work_dir, no_validate=True)
    runner_cfg.experiment_name = f'{job["id"]}-{os.getpid()}-{time.time_ns()}'
    runner = Runner.from_cfg(runner_cfg)
    runner.register_hook(_progress_hook(job['id'], job.get('report_every', 50), report))
    start = time.perf_counter()
    runner.train()
    train_s = time.perf_counter() - start
    iters = runner.iter
    ckpt = osp.join(work_dir, f'iter_{iters}.pth')
    if not osp.isfile(ckpt):
        raise RuntimeError(f'{job["id"]}: training wrote no checkpoint {ckpt}')
    del runner
    # Scored from the saved checkpoint by tools/test.py, as a user would: for FM-KT the
    # checkpoint holds the averaged flows (FlowEMAHook), which the test runner swaps in.
    start = time.perf_counter()
    from fmkt_plugin.apis.test import main as test_main
    raw = test_main([cfg_path, ckpt, '--work-dir', osp.join(work_dir, 'test'),
                                  '--out', osp.join(work_dir, 'metrics.json')])
    test_s = time.perf_counter() - start
    return dict(config=cfg_path, ckpt=ckpt, train_time_s=train_s, eval_time_s=test_s,
                iters=iters, **_metrics(raw))


def _export_and_test(job: dict, record: dict, work_dir: str) -> dict:
    """Export the FM-KT student and score it through the project's tools."""
    start = time.perf_counter()
    out = osp.join(work_dir, 'student')
    from fmkt_plugin.apis.convert import main as convert_main
    from fmkt_plugin.apis.test import main as test_main
    exported = convert_main([record['config'], record['ckpt'], out])
    metrics_file = osp.join(work_dir, 'student_metrics.json')
    preds = osp.join(work_dir, 'student_predictions.pkl')
    raw = test_main([exported['config'], exported['checkpoint'], '--work-dir',
                                  osp.join(work_dir, 'student_test'), '--out', metrics_file,
                                  '--cfg-options', f'test_evaluator.1.out_file_path={preds}'])
    seconds = time.perf_counter() - start
    return dict(config=exported['config'], ckpt=exported['checkpoint'], mode=exported['mode'],
                eval_time_s=seconds, **compare_predictions(
                    osp.join(work_dir, 'predictions.pkl'), preds), **_metrics(raw))


def compare_predictions(path_a: str, path_b: str) -> dict:
    """Largest differences between two ``DumpDetResults`` files of the same images: box
    coordinates (px), scores, and the number of images whose labels or detection counts
    differ."""
    import mmengine
    import torch
    a = {r['img_id']: r['pred_instances'] for r in mmengine.load(path_a)}
    b = {r['img_id']: r['pred_instances'] for r in mmengine.load(path_b)}
    if set(a) != set(b):
        raise RuntimeError(f'{path_a} and {path_b} hold different images')
    box, score, mismatched, count = 0.0, 0.0, 0, 0
    for img_id, pa in a.items():
        pb = b[img_id]
        count += len(pa['scores'])
        if len(pa['scores']) != len(pb['scores']) or not torch.equal(pa['labels'],
                                                                     pb['labels']):
            mismatched += 1
            continue
        if len(pa['scores']):
            box = max(box, float((pa['bboxes'] - pb['bboxes']).abs().max()))
            score = max(score, float((pa['scores'] - pb['scores']).abs().max()))
    return dict(max_box_diff=box, max_score_diff=score, images_mismatched=mismatched,
                detections=count)


def run_job(job: dict, messages=None) -> dict:
    """The record of one job (``kind``, ``method``, ``seed``, budget, scenes, ``cache_dir``,
    ``threads``; for distillation the ``teacher``'s record), cached or run, progress lines to
    ``messages``: mAP, mAP50, mAP75 (%), times, paths, and for FM-KT ``export`` (the exported
    student's metrics through ``tools/test.py``)."""
    import torch

    import fmkt_plugin  # noqa: F401  (compat fixes before mmrazor is imported)

    def report(text: str) -> None:
        if messages is not None:
            messages.put((job['id'], text))

    torch.set_num_threads(int(job.get('threads', 1)))
    key = job_key(job)
    folder = entry_path(job['cache_dir'], 'teachers' if job['kind'] == 'teacher' else 'runs',
                        job['id'], key)
    cached = load_record(osp.join(folder, 'record.json'), needs=('ckpt', ))
    if cached:
        return cached
    if osp.isdir(folder):  # an interrupted run: start over
        shutil.rmtree(folder)
    os.makedirs(folder)
    with open(osp.join(folder, 'log.txt'), 'w') as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        record = _train_and_test(job, osp.join(folder, 'work'), report)
        if job['kind'] == 'run' and job['method'] == 'fmkt':
            record['export'] = _export_and_test(job, record, osp.join(folder, 'work'))
    record.update(kind=job['kind'], method=job.get('method', 'teacher'), seed=job['seed'],
                  key=key, id=job['id'], threads=int(job.get('threads', 1)),
                  pid=os.getpid(), python=sys.version.split()[0])
    return save_record(osp.join(folder, 'record.json'), record)
