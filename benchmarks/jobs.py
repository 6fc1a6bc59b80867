"""The units of work of the benchmark: train a teacher (cached), train one method on one pair
with one seed (result cached), each runnable in a worker process.

A job is a plain dict (picklable); :func:`run_job` dispatches on ``job['kind']``. Results are
dicts written as JSON next to their cache key, so an interrupted benchmark resumes where it
stopped and a rerun with the same profile only re-renders the report.
"""
import json
import os
import os.path as osp
import time
from typing import Callable, Dict, Optional

import torch

from . import configs as C
from .data import Split, TensorLoader, load_fashion_mnist
from .engine import (
    build_model,
    cached_logits,
    config_key,
    evaluate,
    flow_heads,
    predict_logits,
    save_state,
    set_seed,
    train_model,
)

__all__ = ['run_job', 'train_indices', 'test_indices', 'teacher_key', 'run_key']

_DATA: Dict[str, Dict[str, Split]] = {}
SUBSET_SEED = 1234


def _data(data_root: str) -> Dict[str, Split]:
    if data_root not in _DATA:
        _DATA[data_root] = load_fashion_mnist(data_root)
    return _DATA[data_root]


def _subset(n_total: int, size: Optional[int]) -> torch.Tensor:
    if size is None or size >= n_total:
        return torch.arange(n_total)
    gen = torch.Generator().manual_seed(SUBSET_SEED)
    return torch.randperm(n_total, generator=gen)[:size].sort().values


def _holdout(holdout: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(SUBSET_SEED + 1)
    return torch.randperm(60000, generator=gen)[:holdout].sort().values


def train_indices(size: Optional[int], holdout: int = 0) -> torch.Tensor:
    """Rows of the 60k training split used for training: all unless a profile sets
    ``train_size``, minus the ``holdout`` validation rows."""
    rows = _subset(60000, size)
    if holdout:
        keep = torch.ones(60000, dtype=torch.bool)
        keep[_holdout(holdout)] = False
        rows = rows[keep[rows]]
    return rows


def test_indices(size: Optional[int]) -> torch.Tensor:
    """Rows of the 10k test split used (all unless a profile sets ``test_size``)."""
    return _subset(10000, size)


def teacher_key(job: dict) -> str:
    cfg = C.teacher_cfg(job['pair'])
    return config_key('teacher', cfg.to_dict(), C.HPARAMS['optimizer'], C.HPARAMS['one_cycle'],
                      C.HPARAMS['clip_grad'], C.HPARAMS['batch_size'],
                      job['teacher_epochs'], job['train_size'], job['test_size'], job['seed'],
                      job.get('holdout', 0))


def run_key(job: dict) -> str:
    """Cache key of a student run: method config, budget, data, seed and teacher key."""
    cfg = C.method_cfg(job['method'], job['pair'], teacher_cache='<teacher>')
    return config_key('run', job['method'], job['pair'], cfg.to_dict(), C.HPARAMS, job['epochs'],
                      job.get('theta_epochs'), job['train_size'], job['test_size'], job['seed'],
                      job.get('holdout', 0),
                      (job.get('teacher') or {}).get('key'), (job.get('stage1') or {}).get('key'))


def _loaders(job: dict, seed: int):
    data = _data(job['data_root'])
    bs = C.HPARAMS['batch_size']
    holdout = job.get('holdout', 0)
    train = TensorLoader(data['train'], bs, indices=train_indices(job['train_size'], holdout),
                         shuffle=True, flip=True, seed=seed)
    if holdout:  # validation split carved from the training images: the test split is not read
        test = TensorLoader(data['train'], 1000, indices=_holdout(holdout))
    else:
        test = TensorLoader(data['test'], 1000, indices=test_indices(job['test_size']))
    return data, train, test


def _write_json(path: str, obj: dict) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path + '.part', 'w') as f:
        json.dump(obj, f, indent=1)
    os.replace(path + '.part', path)


def _read_json(path: str) -> Optional[dict]:
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)
    return None


def run_teacher(job: dict, progress: Callable[[str], None]) -> dict:
    """Train (or load from the cache) the teacher of ``job['pair']``."""
    key = teacher_key(job)
    base = osp.join(job['cache_dir'], 'teachers', f'{job["pair"]}-s{job["seed"]}-{key}')
    meta = _read_json(base + '.json')
    if meta and osp.isfile(meta['ckpt']) and osp.isfile(meta['logits']):
        meta['cached'] = True
        return meta
    set_seed(job['seed'])
    data, train, test = _loaders(job, job['seed'])
    model = build_model(C.teacher_cfg(job['pair'])).to(job.get('device', 'cpu'))
    stats = train_model(model, train, job['teacher_epochs'], progress=progress,
                        tag=f'teacher {job["pair"]}')
    top1 = evaluate(model, test)
    save_state(model, base + '.pth', dict(pair=job['pair'], seed=job['seed']))
    t0 = time.perf_counter()
    cached_logits(model, data['train'], train.indices.tolist(), base + '.logits.pt')
    meta = dict(kind='teacher', pair=job['pair'], seed=job['seed'], key=key, top1=top1,
                epochs=job['teacher_epochs'], params=sum(p.numel() for p in model.parameters()),
                train_time_s=stats['train_time_s'], cache_time_s=time.perf_counter() - t0,
                ckpt=base + '.pth', logits=base + '.logits.pt', cached=False)
    _write_json(base + '.json', meta)
    return meta


def _init_theta_student(model: torch.nn.Module, stage1_ckpt: str) -> None:
    """Plain student <- stage-1 FM-KT student: backbone as is, ``head.fc`` <- ``step_head.fc``."""
    state = torch.load(stage1_ckpt, map_location='cpu', weights_only=True)['state_dict']
    prefix = 'architecture.'
    student = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    mapped = {k: v for k, v in student.items() if k.startswith('backbone.')}
    mapped['head.fc.weight'] = student['head.step_head.fc.weight']
    mapped['head.fc.bias'] = student['head.step_head.fc.bias']
    missing, unexpected = model.student.load_state_dict(mapped, strict=False)
    if unexpected or any(not k.startswith('head.') for k in missing):
        raise RuntimeError(f'FM-KT^Theta init: missing {missing}, unexpected {unexpected}')


def _folded_student(model: torch.nn.Module, pair: str) -> torch.nn.Module:
    """The plain student (``LinearClsHead``) carrying the trained backbone and the folded flow
    head of an FM-KT student with an affine meta-encoder."""
    from fmkt_plugin.models.heads import fold_flow_head, plain_student_state
    student = getattr(model, 'student', model)
    weight, bias = fold_flow_head(student.head)
    plain = build_model(C.method_cfg('student', pair))
    plain.load_state_dict(plain_student_state(student, weight, bias), strict=True)
    return plain.to(weight.device)


def run_student(job: dict, progress: Callable[[str], None]) -> dict:
    """Train and evaluate one method on one pair with one seed (or return the cached result)."""
    method, pair, seed = job['method'], job['pair'], job['seed']
    key = run_key(job)
    base = osp.join(job['cache_dir'], 'runs', f'{method}-{pair}-s{seed}-{key}')
    record = _read_json(base + '.json')
    if record and (method != 'fmkt_kd' or osp.isfile(record.get('ensemble_logits', ''))):
        record['cached'] = True
        return record

    teacher_cache = None
    if method == 'fmkt_theta':
        teacher_cache = job['stage1']['ensemble_logits']
    elif method not in C.TEACHER_FREE:
        teacher_cache = job['teacher']['logits']
    cfg = C.method_cfg(method, pair, teacher_cache=teacher_cache)
    set_seed(seed)
    data, train, test = _loaders(job, seed)
    model = build_model(cfg)
    epochs = job['epochs']
    lr_scale = 1.0
    if method == 'fmkt_theta':
        epochs = job['theta_epochs']
        lr_scale = C.HPARAMS['theta']['lr_scale']
        if C.HPARAMS['theta']['init_from_stage1']:
            _init_theta_student(model, job['stage1']['ckpt'])
    model.to(job.get('device', 'cpu'))
    flow_lr_mult = C.HPARAMS['flow_lr_mult']['ofmkt' if method == 'ofmkt' else 'fmkt']
    stats = train_model(model, train, epochs, lr_scale=lr_scale, flow_lr_mult=flow_lr_mult,
                        progress=progress, tag=f'{method} {pair} s{seed}')

    t0 = time.perf_counter()
    by_steps = {}
    if flow_heads(model):
        for n in C.HPARAMS['eval_steps']:
            by_steps[str(n)] = evaluate(model, test, num_steps=n)
        top1 = by_steps[str(C.HPARAMS['headline_steps'])]
    else:
        top1 = evaluate(model, test)
    student = getattr(model, 'student', model)
    folded = {}
    if method == 'fmkt_fold':
        # the deployed student: plain classifier with the N=8 ensemble folded into its head
        plain = _folded_student(model, pair)
        top1 = evaluate(plain, test)
        images = test.split.images[test.indices[:1000]]
        gap = (predict_logits(plain, images) - predict_logits(student, images)).abs().max()
        folded = dict(ensemble_top1=by_steps[str(C.HPARAMS['headline_steps'])],
                      fold_max_abs_logit_diff=float(gap),
                      deployed_params=sum(p.numel() for p in plain.parameters()))
    eval_time = time.perf_counter() - t0
    record = dict(
        kind='run', method=method, pair=pair, seed=seed, key=key, top1=top1,
        top1_by_steps=by_steps, epochs=epochs, train_time_s=stats['train_time_s'],
        eval_time_s=eval_time, last_loss=stats['last_loss'], iters=stats['iters'],
        student_params=sum(p.numel() for p in student.parameters()),
        train_images=train.num_images, test_images=test.num_images, cached=False, **folded)
    if method == 'fmkt_kd':
        # Stage 1 of FM-KT^Theta: keep the student and its N=8 ensemble on all training images.
        save_state(model, base + '.pth', dict(method=method, pair=pair, seed=seed))
        t1 = time.perf_counter()
        cached_logits(student, data['train'], train.indices.tolist(), base + '.ensemble.pt')
        record.update(ckpt=base + '.pth', ensemble_logits=base + '.ensemble.pt',
                      ensemble_cache_time_s=time.perf_counter() - t1)
    if method == 'fmkt_theta':
        s1 = job['stage1']
        record.update(
            stage1_top1=s1['top1'], stage1_epochs=s1['epochs'], stage2_epochs=epochs,
            stage2_train_time_s=stats['train_time_s'],
            # budget: stage 1 training + caching its ensemble + stage 2 training
            train_time_s=s1['train_time_s'] + s1.get('ensemble_cache_time_s', 0.0)
            + stats['train_time_s'], epochs=s1['epochs'] + epochs)
    _write_json(base + '.json', record)
    return record


def run_job(job: dict, queue=None) -> dict:
    """Run a teacher or student job in this process; progress lines go to ``queue``."""
    torch.set_num_threads(job.get('threads', 1))
    import fmkt_plugin  # noqa: F401

    def progress(msg: str) -> None:
        if queue is not None:
            queue.put((job['id'], msg))

    if job['kind'] == 'teacher':
        return run_teacher(job, progress)
    return run_student(job, progress)
