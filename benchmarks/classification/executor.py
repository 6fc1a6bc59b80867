"""The classification benchmark's jobs through the common executor
(:mod:`benchmarks.common.executor`): a run receives its teacher's and its first stage's
records, and a finished job is announced with its top-1."""
from typing import Dict, List

from ..common import executor
from ..common.eta import Progress
from .jobs import run_job
from .methods import get

__all__ = ['execute']


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


def _describe(job: dict, record: dict) -> str:
    what = 'teacher' if job['kind'] == 'teacher' else get(job['method']).label
    extra = ''
    if record.get('top1_by_steps'):
        extra = ' (' + ', '.join(f'N={n}: {v:.2f}' for n, v in
                                 record['top1_by_steps'].items()) + ')'
    train = record.get('stage2_train_time_s', record['train_time_s'])
    return f'{job["id"]}: {what} top-1 {record["top1"]:.2f}{extra}, train {train:.0f} s'


def execute(jobs: List[dict], workers: int, progress: Progress) -> Dict[str, dict]:
    """Run the jobs respecting ``after``; returns ``{job id: record}``."""
    return executor.execute(jobs, workers, progress, run_job, _attach, _describe)
