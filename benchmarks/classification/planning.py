"""Planning: the run's setting (profile with command-line overrides, device, precision,
parallelism) and its jobs, plain dicts: ``kind`` (``'teacher'`` or ``'run'``), ``id``, ``after``
(ids it needs), ``cost`` (ETA prior: epochs x the method's relative cost) and what
:mod:`benchmarks.classification.jobs` needs.
"""
import os
from typing import Dict, List, Optional

from ..common.device import effective_amp, select_device
from . import configs
from .methods import METHODS, applies, get, method_picks
from .tuning import grid_points, tuned_methods

__all__ = ['TEACHER_COST', 'resolve_profile', 'resolve_setting', 'plan_jobs', 'plan_tune_jobs']

#: ETA prior of one teacher epoch, relative to one student-alone epoch.
TEACHER_COST = {'wide': 4.0, 'deep': 3.5, 'vit': 3.0, 'cnn-vit': 4.0}

def resolve_profile(name: str, seeds=None, pairs=None, methods=None,
                    epochs: Optional[int] = None, tune: bool = False) -> dict:
    """The profile ``name`` with the command-line overrides, ``methods`` resolved (None: all)
    and checked; ``tune``: the profile's ``tune_seeds`` unless ``seeds`` are given.

    Raises:
        ValueError: unknown profile, pair or method, or a later stage without its first.
    """
    prof = configs.profile(name)
    if tune:
        prof['seeds'] = prof['tune_seeds']
    for key, value in (('seeds', seeds), ('pairs', pairs), ('methods', methods)):
        if value is not None:
            prof[key] = tuple(value)
    if prof['methods'] is None:
        prof['methods'] = tuple(METHODS)
    for method in prof['methods']:
        stage_of = get(method).stage_of
        if stage_of and stage_of not in prof['methods']:
            raise ValueError(f'{method} needs {stage_of} (its first stage) in the methods')
    for pair in prof['pairs']:
        if pair not in configs.PAIRS:
            raise ValueError(f'unknown pair {pair!r}; choose from {sorted(configs.PAIRS)}')
    if epochs is not None:
        prof['epochs'] = epochs
    return prof


def resolve_setting(prof: dict, device: str = 'auto', jobs: Optional[int] = None,
                    threads: Optional[int] = None, amp: Optional[str] = 'profile') -> dict:
    """Device, precision and parallelism of a run.

    On CUDA the profile's ``jobs`` runs share the one GPU (1 thread each); on the CPU the cores
    are split between the parallel runs. ``amp='profile'`` takes the profile's precision, which
    the CPU ignores (fp32).
    """
    device = select_device(device)
    amp = effective_amp(prof.get('amp') if amp == 'profile' else amp, device)
    workers = jobs or prof['jobs']
    cores = os.cpu_count() or 1
    if threads is None:
        threads = 1 if device == 'cuda' else max(1, cores // workers)
    return dict(device=device, amp=amp, workers=workers, threads=threads, cores=cores)


def _teacher_jobs(prof: dict, base: dict, methods: List[str]) -> List[dict]:
    """A teacher job per pair that a planned method distils from."""
    jobs = []
    for pair in prof['pairs']:
        users = [m for m in methods if get(m).teacher and applies(m, pair)]
        if not users:
            continue
        # the rivals read the teacher's last-stage maps (tokens): cached once with the logits
        maps = any(get(m).teacher_maps for m in users)
        epochs = configs.teacher_epochs(pair, prof['teacher_epochs'])
        jobs.append(dict(base, kind='teacher', id=f'teacher-{pair}', pair=pair, seed=0,
                         after=[], maps=maps, teacher_epochs=epochs,
                         cost=TEACHER_COST.get(pair, 4.0) * epochs))
    return jobs


def _run_job(prof: dict, base: dict, method: str, pair: str, seed: int, settings: dict,
             suffix: str = '') -> dict:
    record = get(method)
    after = [f'teacher-{pair}'] if record.teacher else []
    epochs = prof['epochs']
    if record.stage_of:
        epochs = prof['theta_epochs']
        after.append(f'{record.stage_of}-{pair}-s{seed}{suffix}')
    return dict(base, kind='run', id=f'{method}-{pair}-s{seed}{suffix}', method=method,
                pair=pair, seed=seed, after=after, settings=dict(settings),
                cost=record.cost * epochs)


def _method_pairs(prof: dict, method: str) -> tuple:
    """The pairs ``method`` runs on: those of its families; a teacher-free method once per
    family (the pairs of a family share their student), shown under each of its pairs."""
    pairs = [p for p in prof['pairs'] if applies(method, p)]
    if get(method).teacher:
        return tuple(pairs)
    first = {}
    for pair in pairs:
        first.setdefault(configs.family(pair), pair)
    return tuple(first.values())


def _order(jobs: List[dict]) -> List[dict]:
    """Teachers first; then per seed first stages, long jobs, short jobs and later stages, so
    that no long job is left for the end."""
    def key(job):
        if job['kind'] == 'teacher':
            return (0, 0, 0.0)
        record = get(job['method'])
        staged = job.get('keep_ensemble', False)
        return (1, job['seed'], -job['cost'] - (100.0 if staged else 0.0)
                + (1000.0 if record.stage_of else 0.0))
    return sorted(jobs, key=key)


def plan_jobs(prof: dict, base: dict, picks: Optional[Dict[str, dict]] = None) -> List[dict]:
    """All jobs of a benchmark profile, teachers first, with their dependencies (``after``).

    Args:
        prof: a resolved profile (:func:`resolve_profile`).
        base: entries every job carries (data, cache, budgets, device...).
        picks: tuned settings per method (see :mod:`benchmarks.classification.tuning`).
    """
    picks = picks or {}
    methods = list(prof['methods'])
    jobs = _teacher_jobs(prof, base, methods)
    for seed in prof['seeds']:
        for method in methods:
            for pair in _method_pairs(prof, method):
                jobs.append(_run_job(prof, base, method, pair, seed,
                                     method_picks(method, picks, pair)))
    # a first stage keeps its student's ensemble logits only when a later stage is planned
    later = {get(m).stage_of for m in methods if get(m).stage_of}
    for job in jobs:
        if job['kind'] == 'run' and job['method'] in later:
            job['keep_ensemble'] = True
    return _order(jobs)


def plan_tune_jobs(prof: dict, base: dict) -> List[dict]:
    """The jobs of the tune mode: every tuned method's grid points on every seed and pair.

    Every job carries ``tune=True`` and ``trial`` (its index in the method's grid points);
    the runs evaluate on the validation split only (``base['holdout']`` must be set).

    Raises:
        ValueError: without a holdout, or without any method to tune.
    """
    if not base.get('holdout'):
        raise ValueError('tuning evaluates on the validation split: give --holdout N (N > 0)')
    methods = tuned_methods(prof['methods'])
    if not methods:
        raise ValueError(f'none of {list(prof["methods"])} has a tuning grid')
    base = dict(base, tune=True)
    jobs = _teacher_jobs(prof, base, methods)
    for seed in prof['seeds']:
        for method in methods:
            for trial, setting in enumerate(grid_points(method)):
                for pair in _method_pairs(prof, method):
                    job = _run_job(prof, base, method, pair, seed, setting, f'-t{trial}')
                    jobs.append(dict(job, trial=trial))
    return _order(jobs)
