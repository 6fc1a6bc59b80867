"""Progress lines and the ETA.

A job's cost prior (``job['cost']``: its budget times its method's relative cost) is turned
into seconds by a speed (seconds per cost unit) measured per job kind (its method, or the
teacher) on this device: first from this run's finished jobs of the same kind, then from the
speeds stored by earlier runs on the same device (``<cache>/speeds.json``), then by the device's
measured average over the other kinds. A GPU and a CPU differ by orders of magnitude, and
methods differ in how they profit from a GPU, so one CPU-derived scale cannot serve both.
"""
import statistics
import time
from typing import Dict, List, Optional

from .files import read_json, write_json

__all__ = ['SpeedBook', 'Progress', 'job_kind', 'measured_seconds', 'fmt_time']

#: Seconds per cost unit before any measurement, per device type (None: unknown); the unit of
#: the classification benchmark (a 2-core CPU, 1 thread per run: 1 student epoch takes 5.5 s).
DEFAULT_RATE = dict(cpu=5.5, cuda=None)


def fmt_time(seconds: float) -> str:
    """``'3m07s'``."""
    seconds = max(0, int(seconds))
    return f'{seconds // 60:d}m{seconds % 60:02d}s'


def job_kind(job: dict) -> str:
    """What a speed is measured for: the method, or ``teacher-<pair>``."""
    return job['id'] if job['kind'] == 'teacher' else job['method']


def measured_seconds(record: dict) -> float:
    """Seconds a finished job took: its ``*_time_s`` fields (a later stage's
    ``stage2_train_time_s`` stands for its ``train_time_s``, which counts the first stage too),
    and those of its ``export`` step."""
    times = {k: v for k, v in record.items() if k.endswith('_time_s')}
    if 'stage2_train_time_s' in times:
        times.pop('train_time_s', None)
    export = record.get('export')
    return sum(times.values()) + (measured_seconds(export) if isinstance(export, dict) else 0.0)


class SpeedBook:
    """Seconds per cost unit per job kind on ``device`` (a key naming the device and how it
    is shared), kept across runs in the JSON file ``path`` (None: not stored). Before any
    measurement: ``defaults[device_type]`` (None: :data:`DEFAULT_RATE`; ``{}``: no ETA until a
    job finishes)."""

    def __init__(self, path: Optional[str], device: str, device_type: str = 'cpu',
                 defaults: Optional[Dict[str, Optional[float]]] = None) -> None:
        self.path = path
        self.device = device
        stored = (read_json(path) or {}) if path else {}
        self.stored: Dict[str, float] = dict(stored.get(device, {}))
        self.now: Dict[str, List[float]] = {}
        self.default = (DEFAULT_RATE if defaults is None else defaults).get(device_type)

    def add(self, kind: str, cost: float, seconds: float) -> None:
        """Record one finished, not cached, job."""
        if cost > 0 and seconds > 0:
            self.now.setdefault(kind, []).append(seconds / cost)

    def rate(self, kind: str) -> Optional[float]:
        """Seconds per cost unit of ``kind`` on this device (None when nothing is known)."""
        if kind in self.now:
            return statistics.median(self.now[kind])
        if kind in self.stored:
            return self.stored[kind]
        measured = [statistics.median(v) for v in self.now.values()]
        if measured:  # this device's scale, from the other methods
            return statistics.median(measured)
        if self.stored:
            return statistics.median(self.stored.values())
        return self.default

    def save(self) -> None:
        """Merge this run's speeds into the file."""
        if not self.path or not self.now:
            return
        data = read_json(self.path) or {}
        entry = data.setdefault(self.device, {})
        entry.update({k: statistics.median(v) for k, v in self.now.items()})
        write_json(self.path, data)


class Progress:
    """Prints progress lines with the elapsed time and an ETA from the measured speeds."""

    def __init__(self, jobs: List[dict], workers: int, speeds: SpeedBook,
                 extra_s: float = 0.0) -> None:
        self.pending = {j['id']: j for j in jobs}
        self.workers = max(1, workers)
        self.speeds = speeds
        self.extra_s = extra_s
        self.start = time.perf_counter()
        self.started: Dict[str, float] = {}  # running job id -> start time
        self.done = 0
        self.count = len(jobs)

    def begin(self, job: dict) -> None:
        """Account a job that starts running."""
        self.started[job['id']] = time.perf_counter()

    def finish(self, job: dict, record: dict) -> None:
        """Account a finished job (a cached one adds no speed)."""
        self.done += 1
        self.pending.pop(job['id'], None)
        self.started.pop(job['id'], None)
        if not record.get('cached'):
            self.speeds.add(job_kind(job), job['cost'], measured_seconds(record))
            self.speeds.save()  # an interrupted run still informs the next one

    def eta(self) -> Optional[float]:
        """Seconds left, or None while no speed is known.

        A running job that has already taken longer than its kind's speed predicts shows that
        speed to be too fast: its kind is then rated at least at (elapsed / cost), so that the
        estimate grows with the time the slow jobs have run instead of standing still, and the
        running jobs count only the time they still have to go.
        """
        now = time.perf_counter()
        rates: Dict[str, float] = {}
        for job in self.pending.values():
            kind = job_kind(job)
            rate = self.speeds.rate(kind)
            if rate is None:
                return None
            if job['id'] in self.started and job['cost'] > 0:
                rate = max(rate, (now - self.started[job['id']]) / job['cost'])
            rates[kind] = max(rates.get(kind, 0.0), rate)
        total = 0.0
        for job in self.pending.values():
            seconds = job['cost'] * rates[job_kind(job)]
            if job['id'] in self.started:
                seconds = max(0.0, seconds - (now - self.started[job['id']]))
            total += seconds
        return total / self.workers + self.extra_s

    def say(self, msg: str) -> None:
        """Print ``msg`` after the elapsed time, the count done and the ETA."""
        eta = self.eta()
        head = (f'[{fmt_time(time.perf_counter() - self.start)} | {self.done}/{self.count} '
                f'done | ETA {fmt_time(eta) if eta is not None else "?"}]')
        print(f'{head} {msg}', flush=True)
