"""Runs planned jobs respecting their dependencies: in this process for one worker, else in a
pool of spawned worker processes (each with its own torch threads, or sharing one GPU).

A job is a plain dict with a unique ``id``, the ids it waits for (``after``) and a ``cost``
(for the ETA, see :mod:`~benchmarks.common.eta`). A benchmark gives the function that runs one
job, ``run_job(job, queue) -> record`` (a module-level function, so that a spawned worker can
import it; it puts ``(job id, text)`` progress lines on ``queue``), how a job receives the
records it depends on (``attach``) and the line that announces a finished job (``describe``).
"""
import multiprocessing as mp
import queue as queue_lib
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Dict, List

from .eta import Progress

__all__ = ['execute']

RunJob = Callable[[dict, Any], dict]
Attach = Callable[[dict, Dict[str, dict]], dict]
Describe = Callable[[dict, dict], str]


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


def _unmet(pending: List[dict]) -> RuntimeError:
    return RuntimeError(f'jobs with unmet dependencies: {[j["id"] for j in pending]}')


def _started(job: dict, progress: Progress) -> None:
    progress.begin(job)
    progress.say(f'start {job["id"]}')


def _finished(job: dict, record: dict, progress: Progress, describe: Describe) -> None:
    progress.finish(job, record)
    progress.say(describe(job, record) + (' (cached)' if record.get('cached') else ''))


def _in_process(jobs: List[dict], progress: Progress, run_job: RunJob, attach: Attach,
                describe: Describe) -> Dict[str, dict]:
    results: Dict[str, dict] = {}
    pending = list(jobs)
    while pending:
        job = next((j for j in pending if all(d in results for d in j['after'])), None)
        if job is None:
            raise _unmet(pending)
        pending.remove(job)
        _started(job, progress)
        results[job['id']] = run_job(attach(job, results), _PrintQueue(progress))
        _finished(job, results[job['id']], progress, describe)
    return results


def _in_pool(jobs: List[dict], workers: int, progress: Progress, run_job: RunJob,
             attach: Attach, describe: Describe) -> Dict[str, dict]:
    results: Dict[str, dict] = {}
    pending = list(jobs)
    ctx = mp.get_context('spawn')
    manager = ctx.Manager()
    msgs = manager.Queue()
    running = {}
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            while pending or running:
                for job in [j for j in pending if all(d in results for d in j['after'])]:
                    if len(running) >= workers:
                        break
                    pending.remove(job)
                    running[pool.submit(run_job, attach(job, results), msgs)] = job
                    _started(job, progress)
                if not running:
                    raise _unmet(pending)
                done, _ = wait(list(running), timeout=2.0, return_when=FIRST_COMPLETED)
                _drain(msgs, progress)
                for fut in done:
                    job = running.pop(fut)
                    results[job['id']] = fut.result()
                    _finished(job, results[job['id']], progress, describe)
    finally:
        manager.shutdown()
    return results


def execute(jobs: List[dict], workers: int, progress: Progress, run_job: RunJob,
            attach: Attach, describe: Describe) -> Dict[str, dict]:
    """Run the jobs respecting ``after``.

    Args:
        jobs: the planned jobs, in the order to start them when they are ready.
        workers: parallel runs (1: in this process).
        progress: prints the lines and keeps the ETA.
        run_job: runs one job: ``run_job(job, queue) -> record``.
        attach: ``attach(job, results) -> job``: the job as handed to ``run_job``, with the
            records it depends on (``results``: job id -> record of the finished jobs).
        describe: ``describe(job, record) -> str``: the line of a finished job (`` (cached)``
            is appended for a record with ``cached``).

    Returns:
        ``{job id: record}``.
    """
    if workers <= 1:
        return _in_process(jobs, progress, run_job, attach, describe)
    return _in_pool(jobs, workers, progress, run_job, attach, describe)
