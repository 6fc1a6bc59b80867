"""Runs planned jobs respecting their dependencies: in this process for one worker, else in a
pool of spawned worker processes (each with its own torch threads, or sharing one GPU)."""
import multiprocessing as mp
import queue as queue_lib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Dict, List

from .eta import Progress
from .jobs import run_job
from .methods import get

__all__ = ['execute']


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


def _attach(job: dict, results: Dict[str, dict]) -> dict:
    """The job with the records it depends on (its teacher, its first stage)."""
    job = dict(job)
    if job['kind'] == 'run':
        method = get(job['method'])
        if method.teacher:
            job['teacher'] = results[f'teacher-{job["pair"]}']
        if method.stage_of:
            job['stage1'] = results[next(d for d in job['after']
                                         if d.startswith(method.stage_of + '-'))]
    return job


def _report(job: dict, record: dict, progress: Progress) -> None:
    progress.finish(job, record)
    what = 'teacher' if job['kind'] == 'teacher' else get(job['method']).label
    extra = ''
    if record.get('top1_by_steps'):
        extra = ' (' + ', '.join(f'N={n}: {v:.2f}' for n, v in
                                 record['top1_by_steps'].items()) + ')'
    train = record.get('stage2_train_time_s', record['train_time_s'])
    progress.say(f'{job["id"]}: {what} top-1 {record["top1"]:.2f}{extra}, train {train:.0f} s'
                 + (' (cached)' if record.get('cached') else ''))


def _in_process(jobs: List[dict], progress: Progress) -> Dict[str, dict]:
    results: Dict[str, dict] = {}
    pending = list(jobs)
    while pending:
        job = next((j for j in pending if all(d in results for d in j['after'])), None)
        if job is None:
            raise RuntimeError(f'jobs with unmet dependencies: {[j["id"] for j in pending]}')
        pending.remove(job)
        progress.begin(job)
        progress.say(f'start {job["id"]}')
        results[job['id']] = run_job(_attach(job, results), _PrintQueue(progress))
        _report(job, results[job['id']], progress)
    return results


def _in_pool(jobs: List[dict], workers: int, progress: Progress) -> Dict[str, dict]:
    results: Dict[str, dict] = {}
    pending = list(jobs)
    ctx = mp.get_context('spawn')
    manager = ctx.Manager()
    msgs = manager.Queue()
    running = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        while pending or running:
            for job in [j for j in pending if all(d in results for d in j['after'])]:
                if len(running) >= workers:
                    break
                pending.remove(job)
                running[pool.submit(run_job, _attach(job, results), msgs)] = job
                progress.begin(job)
                progress.say(f'start {job["id"]}')
            if not running:
                raise RuntimeError(f'jobs with unmet dependencies: {[j["id"] for j in pending]}')
            done, _ = wait(list(running), timeout=2.0, return_when=FIRST_COMPLETED)
            _drain(msgs, progress)
            for fut in done:
                job = running.pop(fut)
                results[job['id']] = fut.result()
                _report(job, results[job['id']], progress)
    manager.shutdown()
    return results


def execute(jobs: List[dict], workers: int, progress: Progress) -> Dict[str, dict]:
    """Run the jobs respecting ``after``; returns ``{job id: record}``."""
    if workers <= 1:
        return _in_process(jobs, progress)
    return _in_pool(jobs, workers, progress)
