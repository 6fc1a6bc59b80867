"""The units of work of the benchmark, each a plain dict runnable in a worker process: train a
teacher, or train one method on one pair with one seed; records are cached under their key.

Pairing: a run's data order and flips depend on its seed and epoch alone
(:meth:`TensorLoader.draws`) and the model is built right after seeding, so for a seed every
method sees the same data from the same initial backbone (``data_digest`` lets the report check).
"""
import os.path as osp
import time
from typing import Callable, Dict, List, Optional

import torch

from ..common.store import config_key, intact, load_record, save_record
from . import configs
from .data import Split, TensorLoader, load_fashion_mnist
from .engine import (
    build_model,
    cached_features,
    cached_logits,
    cached_maps,
    evaluate,
    flow_heads,
    load_state,
    predict_logits,
    read_state,
    save_state,
    set_seed,
    train_model,
)
from .methods import get, method_cfg, method_hparams

__all__ = ['run_job', 'train_indices', 'test_indices', 'teacher_key', 'run_key',
           'TestSplitForbidden']

_DATA: Dict[tuple, Dict[str, Split]] = {}
SUBSET_SEED = 1234


class TestSplitForbidden(RuntimeError):
    """The test split was reached while tuning."""


class _ForbiddenSplit:
    """Stands where the test split would be while tuning: any use raises."""

    def __getattr__(self, name):
        raise TestSplitForbidden('the test split is never read while tuning (use --holdout)')

    def __len__(self):
        raise TestSplitForbidden('the test split is never read while tuning (use --holdout)')


def _data(data_root: str, with_test: bool = True) -> Dict[str, Split]:
    key = (data_root, with_test)
    if key not in _DATA:
        if with_test:
            _DATA[key] = load_fashion_mnist(data_root)
        else:  # tuning: the test images are not even loaded
            _DATA[key] = dict(load_fashion_mnist(data_root, splits=('train', )),
                              test=_ForbiddenSplit())
    return _DATA[key]


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
    """Cache key of a teacher: config, optimisation (the pair's), budget, data and seed."""
    cfg = configs.teacher_cfg(job['pair'])
    hp = configs.pair_hparams(job['pair'], teacher=True)
    return config_key('teacher', cfg.to_dict(), hp['optimizer'], hp['one_cycle'],
                      hp['clip_grad'], hp['batch_size'], job['teacher_epochs'],
                      job['train_size'], job['test_size'], job['seed'], job.get('holdout', 0))


def _hparams(job: dict) -> dict:
    return method_hparams(job['method'], overrides=job.get('settings') or {}, pair=job['pair'])


def run_key(job: dict) -> str:
    """Cache key of a student run: method config and settings, budget, data, seed, precision,
    teacher key and first-stage key."""
    hp = _hparams(job)
    maps = '<maps>' if get(job['method']).teacher_maps else None
    cfg = method_cfg(job['method'], job['pair'], teacher_cache='<teacher>', hparams=hp,
                     teacher_maps=maps)
    parts = ['run', job['method'], job['pair'], cfg.to_dict(), hp, job['epochs'],
             job.get('theta_epochs'), job['train_size'], job['test_size'], job['seed'],
             job.get('holdout', 0), (job.get('teacher') or {}).get('key'),
             (job.get('stage1') or {}).get('key')]
    if job.get('amp'):
        parts.append(job['amp'])
    return config_key(*parts)


def _loaders(job: dict, seed: int):
    holdout = job.get('holdout', 0)
    if job.get('tune') and not holdout:
        raise TestSplitForbidden('tuning evaluates on the validation split: give --holdout N')
    data = _data(job['data_root'], with_test=not job.get('tune'))
    bs = configs.HPARAMS['batch_size']
    train = TensorLoader(data['train'], bs, indices=train_indices(job['train_size'], holdout),
                         shuffle=True, flip=True, seed=seed)
    if holdout:  # validation split carved from the training images: the test split is not read
        test = TensorLoader(data['train'], 1000, indices=_holdout(holdout))
    else:
        test = TensorLoader(data['test'], 1000, indices=test_indices(job['test_size']))
    return data, train, test


def _teacher_maps(job: dict, meta: dict, model=None) -> None:
    """Cache the teacher's last-stage maps (or, for a pair base that lists
    ``teacher_features``, those modules' outputs: a ViT's tokens) of the training images when a
    planned method reads them (``job['maps']``) and they are not cached yet; ``meta`` gets
    their file."""
    maps = meta['ckpt'][:-len('.pth')] + '.maps.pt'
    cached = intact(maps)
    if cached:
        meta['maps'] = maps
    if cached or not job.get('maps'):
        return
    data, train, _ = _loaders(job, job['seed'])
    if model is None:
        model = build_model(configs.teacher_cfg(job['pair']))
        load_state(model, meta['ckpt'])
        model.to(job.get('device', 'cpu'))
    t0 = time.perf_counter()
    sources = configs.pair_option(job['pair'], 'teacher_features')
    if sources:
        cached_features(model, data['train'], train.indices.tolist(), maps, sources)
    else:
        cached_maps(model, data['train'], train.indices.tolist(), maps)
    meta.update(maps=maps, maps_time_s=time.perf_counter() - t0)


def run_teacher(job: dict, progress: Callable[[str], None]) -> dict:
    """Train (or load from the cache) the teacher of ``job['pair']``, and cache its logits (and,
    with ``job['maps']``, its last-stage maps) on the training images."""
    key = teacher_key(job)
    base = osp.join(job['cache_dir'], 'teachers', f'{job["pair"]}-s{job["seed"]}-{key}')
    meta = load_record(base + '.json', needs=('ckpt', 'logits'))
    if meta:
        had_maps = 'maps' in meta
        _teacher_maps(job, meta)
        if 'maps' in meta and not had_maps:
            save_record(base + '.json', meta)
        return meta
    set_seed(job['seed'])
    data, train, test = _loaders(job, job['seed'])
    model = build_model(configs.teacher_cfg(job['pair'])).to(job.get('device', 'cpu'))
    stats = train_model(model, train, job['teacher_epochs'], progress=progress,
                        tag=f'teacher {job["pair"]}',
                        hparams=configs.pair_hparams(job['pair'], teacher=True))
    top1 = evaluate(model, test)
    save_state(model, base + '.pth', dict(pair=job['pair'], seed=job['seed']))
    t0 = time.perf_counter()
    cached_logits(model, data['train'], train.indices.tolist(), base + '.logits.pt')
    meta = dict(kind='teacher', pair=job['pair'], seed=job['seed'], key=key, top1=top1,
                epochs=job['teacher_epochs'], params=sum(p.numel() for p in model.parameters()),
                train_time_s=stats['train_time_s'], cache_time_s=time.perf_counter() - t0,
                ckpt=base + '.pth', logits=base + '.logits.pt',
                device=job.get('device', 'cpu'))
    _teacher_maps(job, meta, model)
    return save_record(base + '.json', meta)


def _init_from_stage1(model: torch.nn.Module, stage1_ckpt: str) -> None:
    """Plain student <- first-stage FM-KT student: backbone as is, ``head.fc`` <-
    ``step_head.fc``."""
    state = read_state(stage1_ckpt, 'FM-KT^Theta stage-1 checkpoint')
    prefix = 'architecture.'
    student = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    mapped = {k: v for k, v in student.items() if k.startswith('backbone.')}
    mapped['head.fc.weight'] = student['head.step_head.fc.weight']
    mapped['head.fc.bias'] = student['head.step_head.fc.bias']
    missing, unexpected = model.student.load_state_dict(mapped, strict=False)
    if unexpected or any(not k.startswith('head.') for k in missing):
        raise RuntimeError(f'FM-KT^Theta init: missing {missing}, unexpected {unexpected}')


#: the exporter's mode of each deploy step (``Method.deploy``) of a flow head
_THETA_MODES = dict(fold='theta-fold', theta='theta')


def _deployed_student(deploy: str, model: torch.nn.Module, pair: str,
                      model_cfg: dict) -> torch.nn.Module:
    """The plain student (``LinearClsHead``) a method deploys (``Method.deploy``), asked of the
    model as the exporter (``fmkt_plugin.apis.export``) asks it: the flow head's
    ``theta_export`` (``fold``: the affine flow folded into the linear head; ``theta``: the
    plain head ``theta_fc`` trained alongside the flow head), or the algorithm's
    ``deployable_student_state`` (``rdr``: RDR's branches folded) of the student's state and
    the method's ``model_cfg``."""
    student = getattr(model, 'student', model)
    device = next(student.parameters()).device
    plain = build_model(method_cfg('student', pair))
    if deploy == 'rdr':
        state = type(model).deployable_student_state(model_cfg, student.state_dict())
    elif deploy in _THETA_MODES:
        head_cfg = model_cfg['architecture']['head']
        if deploy == 'theta' and not head_cfg.get('theta'):
            raise ValueError('deploy theta: the student head has no theta_fc (head.theta unset)')
        export = student.head.theta_export(student, head_cfg)
        if export['mode'] != _THETA_MODES[deploy]:
            raise ValueError(f'deploy {deploy}: the flow head exports as {export["mode"]!r}, '
                             f'not {_THETA_MODES[deploy]!r}')
        state = export['state']
    else:
        raise ValueError(f'unknown deploy step {deploy!r} (expected fold, rdr or theta)')
    plain.load_state_dict(state, strict=True)
    return plain.to(device)


def _job_cfg(job: dict, hp: dict):
    """The model config of a student job: its method on its pair with ``hp``, the teacher (or,
    for a later stage, its first stage's ensemble) served from the cache."""
    method = get(job['method'])
    teacher_cache = None
    if method.stage_of:
        teacher_cache = job['stage1']['ensemble_logits']
    elif method.teacher:
        teacher_cache = job['teacher']['logits']
    maps = None
    if method.teacher_maps:
        maps = job['teacher'].get('maps')
        if not maps:
            raise RuntimeError(f'{method.name} reads the teacher\'s maps, but teacher '
                               f'{job["pair"]} has none cached (its job needs maps=True)')
    return method_cfg(method.name, job['pair'], teacher_cache=teacher_cache, hparams=hp,
                      teacher_maps=maps)


def _build(job: dict, hp: dict):
    """Seed and build the job's model; returns ``(model, data, train, test)``."""
    cfg = _job_cfg(job, hp)
    set_seed(job['seed'])
    data, train, test = _loaders(job, job['seed'])
    model = build_model(cfg)
    return model, data, train, test


def _train(job: dict, hp: dict, progress: Callable[[str], None]):
    """Build, seed and train the job's model; returns ``(model, data, train, test, stats)``."""
    method = get(job['method'])
    model, data, train, test = _build(job, hp)
    epochs, lr_scale = job['epochs'], 1.0
    if method.stage_of:
        epochs, lr_scale = job['theta_epochs'], hp['theta']['lr_scale']
        if hp['theta']['init_from_stage1']:
            _init_from_stage1(model, job['stage1']['ckpt'])
    model.to(job.get('device', 'cpu'))
    stats = train_model(model, train, epochs, lr_scale=lr_scale,
                        flow_lr_mult=hp['flow_lr_mult'][method.lr_mult_key], progress=progress,
                        tag=f'{method.name} {job["pair"]} s{job["seed"]}', amp=job.get('amp'),
                        hparams=hp)
    return model, data, train, test, dict(stats, epochs=epochs)


def _evaluate(job: dict, hp: dict, model, test) -> dict:
    """Top-1 at the trained N (headline) and at the analysis N, and for a method with a
    ``deploy`` step the deployed plain student's top-1 (the headline then), the trained
    model's and their largest logit difference."""
    by_steps, out = {}, {}
    if flow_heads(model):
        headline = hp['flow']['num_steps']
        for n in sorted(set(job.get('eval_steps', (1, 2, 4, 8))) | {headline}):
            by_steps[str(n)] = evaluate(model, test, num_steps=n)
        out['top1'] = by_steps[str(headline)]
        out['headline_steps'] = headline
    else:
        out['top1'] = evaluate(model, test)
    deploy = get(job['method']).deploy
    if deploy:
        student = getattr(model, 'student', model)
        # the deploy step reads the student's and the method's parts, not the teacher's
        model_cfg = method_cfg(job['method'], job['pair'], teacher_cache='<cached>',
                               hparams=hp).model.to_dict()
        plain = _deployed_student(deploy, model, job['pair'], model_cfg)
        images = test.split.images[test.indices[:1000]]
        gap = (predict_logits(plain, images) - predict_logits(student, images)).abs().max()
        out.update(top1=evaluate(plain, test), trained_top1=out['top1'],
                   deploy_max_abs_logit_diff=float(gap),
                   deployed_params=sum(p.numel() for p in plain.parameters()))
    return dict(out, top1_by_steps=by_steps)


def _missing_steps(job: dict, record: dict) -> List[int]:
    """The analysis step counts the job asks for that a (cached) flow run lacks."""
    if not record.get('headline_steps'):
        return []
    have = {int(n) for n in record.get('top1_by_steps') or {}}
    return sorted(set(job.get('eval_steps', ())) - have)


def _keep_ensemble(job: dict, record: dict, model, data, train, base: str) -> None:
    """Cache the student's ensemble logits on the training images for the later stage."""
    student = getattr(model, 'student', model)
    t1 = time.perf_counter()
    cached_logits(student, data['train'], train.indices.tolist(), base + '.ensemble.pt')
    record.update(ensemble_logits=base + '.ensemble.pt',
                  ensemble_cache_time_s=time.perf_counter() - t1)


def _stage_records(job: dict, record: dict, model, data, train, base: str) -> None:
    """Keep the trained model of a flow run or a first stage (later profiles evaluate more N
    or start a later stage from it without training it again), and what a planned later
    stage needs; account a later stage's budget with its first stage."""
    method = get(job['method'])
    if not job.get('tune') and (job.get('keep_ensemble') or flow_heads(model)):
        save_state(model, base + '.pth', dict(method=method.name, pair=job['pair'],
                                              seed=job['seed']))
        record['ckpt'] = base + '.pth'
        if job.get('keep_ensemble'):
            _keep_ensemble(job, record, model, data, train, base)
    if method.stage_of:
        s1 = job['stage1']
        record.update(
            stage1_top1=s1['top1'], stage1_epochs=s1['epochs'], stage2_epochs=record['epochs'],
            stage2_train_time_s=record['train_time_s'],
            # budget: stage 1 training + caching its ensemble + stage 2 training
            train_time_s=s1['train_time_s'] + s1.get('ensemble_cache_time_s', 0.0)
            + record['train_time_s'], epochs=s1['epochs'] + record['epochs'])


def _complete(job: dict, record: dict, base: str) -> Optional[dict]:
    """A cached record with what this job asks for beyond it (analysis N, the ensemble for a
    later stage) added from its kept model; None when that needs training again."""
    steps = _missing_steps(job, record)
    ensemble = (job.get('keep_ensemble') and not job.get('tune')
                and not intact(record.get('ensemble_logits') or ''))
    if not steps and not ensemble:
        return record
    if not intact(record.get('ckpt') or ''):
        return None
    hp = _hparams(job)
    model, data, train, test = _build(job, hp)
    load_state(model, record['ckpt'])
    model.to(job.get('device', 'cpu'))
    for n in steps:
        record['top1_by_steps'][str(n)] = evaluate(model, test, num_steps=n)
    if ensemble:
        _keep_ensemble(job, record, model, data, train, base)
    return dict(save_record(base + '.json', record), cached=True)


def run_student(job: dict, progress: Callable[[str], None]) -> dict:
    """Train and evaluate one method on one pair with one seed (or return the cached result,
    completed from its kept model where the job asks for more)."""
    method, pair, seed = job['method'], job['pair'], job['seed']
    key = run_key(job)
    base = osp.join(job['cache_dir'], 'runs', f'{method}-{pair}-s{seed}-{key}')
    record = load_record(base + '.json')
    if record:
        record = _complete(job, record, base)
        if record is not None:
            return record
    hp = _hparams(job)
    model, data, train, test, stats = _train(job, hp, progress)
    t0 = time.perf_counter()
    scores = _evaluate(job, hp, model, test)
    student = getattr(model, 'student', model)
    record = dict(
        kind='run', method=method, pair=pair, seed=seed, key=key,
        settings=job.get('settings') or {}, trial=job.get('trial'), **scores,
        epochs=stats['epochs'], train_time_s=stats['train_time_s'],
        eval_time_s=time.perf_counter() - t0, last_loss=stats['last_loss'],
        iters=stats['iters'], student_params=sum(p.numel() for p in student.parameters()),
        train_images=train.num_images, test_images=test.num_images,
        data_digest=train.digest(0), device=job.get('device', 'cpu'), amp=job.get('amp'))
    _stage_records(job, record, model, data, train, base)
    return save_record(base + '.json', record)


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
