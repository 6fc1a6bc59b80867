"""Runs planned jobs (dicts with a unique ``id``, the ids they wait for in ``after`` and a
``cost`` for the ETA) in dependency order: in this process for one worker, else in a pool of
spawned worker processes (each with its own torch threads, or sharing one GPU)."""
import contextlib
import multiprocessing as mp
import queue as queue_lib
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Dict, List

from .eta import Progress

__all__ = ['execute']


class _PrintQueue:
    """Queue stand-in for in-process runs: prints worker progress lines at once."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def put(self, item) -> None:
        self.progress.say(item[1])

    def get_nowait(self):
        raise queue_lib.Empty


def _now(fn: Callable, *args) -> Future:
    """Run ``fn(*args)`` here; its result as a finished future (an error propagates)."""
    future = Future()
    future.set_result(fn(*args))
    return future


def execute(jobs: List[dict], workers: int, progress: Progress,
            run_job: Callable[[dict, Any], dict],
            attach: Callable[[dict, Dict[str, dict]], dict],
            describe: Callable[[dict, dict], str]) -> Dict[str, dict]:
    """``{job id: record}`` of the jobs, each started in the given order once its ``after`` are
    done, on ``workers`` parallel runs (1: in this process). ``run_job(job, queue) -> record``
    is a module-level function (a spawned worker imports it) putting ``(job id, text)``
    progress lines on ``queue``; ``attach(job, results) -> job`` adds the records a job needs;
    ``describe(job, record)`` gives a finished job's line.
    """
    results: Dict[str, dict] = {}
    pending, running = list(jobs), {}
    with contextlib.ExitStack() as stack:
        if workers > 1:
            ctx = mp.get_context('spawn')
            manager = ctx.Manager()
            stack.callback(manager.shutdown)
            msgs = manager.Queue()
            submit = stack.enter_context(ProcessPoolExecutor(workers, mp_context=ctx)).submit
        else:
            msgs, submit = _PrintQueue(progress), _now
        while pending or running:
            for job in [j for j in pending if all(d in results for d in j['after'])]:
                if len(running) >= max(1, workers):
                    break
                pending.remove(job)
                progress.begin(job)
                progress.say(f'start {job["id"]}')
                running[submit(run_job, attach(job, results), msgs)] = job
            if not running:
                raise RuntimeError(f'jobs with unmet dependencies: {[j["id"] for j in pending]}')
            done, _ = wait(list(running), timeout=2.0, return_when=FIRST_COMPLETED)
            while True:  # the workers' progress lines
                try:
                    progress.say(msgs.get_nowait()[1])
                except (queue_lib.Empty, EOFError, OSError):
                    break
            for future in done:
                job = running.pop(future)
                results[job['id']] = record = future.result()
                progress.finish(job, record)
                progress.say(describe(job, record) + (' (cached)' if record.get('cached') else ''))
    return results
