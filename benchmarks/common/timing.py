"""Overhead timing: variants timed in interleaved rounds (a fresh random order per round, so that
load changes on a shared machine hit every variant alike), the median of the per-round ratios,
and the ratio record of the overhead tables (``key, name, ratio, target, met``)."""
import random
import statistics
import time
from typing import Callable, Dict, List, Optional

__all__ = ['time_call', 'interleaved_times', 'paired_ratio', 'ratio_record', 'ratio_table',
           'timing_config', 'random_cls_batch']


def _sync() -> None:
    import torch
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def time_call(fn: Callable[[], None]) -> float:
    """Seconds ``fn()`` takes, CUDA kernels included (it waits for them)."""
    _sync()
    start = time.perf_counter()
    fn()
    _sync()  # CUDA kernels run asynchronously: wait for them inside the timed span
    return time.perf_counter() - start


def interleaved_times(fns: Dict[str, Callable[[], None]], repeats: int, warmup: int,
                      progress: Optional[Callable[[str], None]] = None
                      ) -> Dict[str, List[float]]:
    """Seconds of every call of each function: ``warmup`` untimed rounds, then ``repeats``
    rounds that each call every function once, in a fresh seeded random order."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times = {n: [] for n in names}
    # a fresh random order per repeat (fixed seed): with a plain rotation every variant always
    # followed the same one, and what a step leaves behind (caches, allocator state) then
    # biased its neighbour's time the same way in every repeat
    gen = random.Random(0)
    for r in range(repeats):
        for name in gen.sample(names, len(names)):
            times[name].append(time_call(fns[name]))
        if progress:
            progress(f'overhead: repeat {r + 1}/{repeats}')
    return times


def paired_ratio(times: Dict[str, List[float]], num: str, den: str) -> float:
    """Median over the rounds of ``num``'s time over ``den``'s time of the same round."""
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def ratio_record(key: str, name: str, ratio: float, target: Optional[str] = None,
                 check: Optional[Callable[[float], bool]] = None) -> dict:
    """One row of an overhead table: ``dict(key, name, ratio, target, met)``; without a target
    the row is ``'analysis'`` and counts as met."""
    return dict(key=key, name=name, ratio=ratio, target=target or 'analysis',
                met=bool(check(ratio)) if check else True)


def ratio_table(setting: str, times: Dict[str, List[float]], rows) -> dict:
    """``dict(setting, median_s, times_s, ratios)`` of interleaved ``times``: each row of
    ``rows`` (``key, name, numerator, denominator, target``) as :func:`ratio_record` of
    :func:`paired_ratio`."""
    return dict(setting=setting, median_s={k: statistics.median(v) for k, v in times.items()},
                times_s=times,
                ratios=[ratio_record(key, name, paired_ratio(times, num, den), *target)
                        for key, name, num, den, target in rows])


def timing_config(path: str, options: Optional[dict] = None):
    """A distillation config loaded for timing: no teacher checkpoint (random weights cost the
    same to run), which the plugin's algorithms are told is meant (MMRazor's own
    ``*TeacherDistill`` take no such flag)."""
    from fmkt_plugin.apis.config import load_config
    cfg = load_config(path, options)
    cfg.model.teacher_ckpt = None
    if not cfg.model.type.endswith('TeacherDistill'):
        cfg.model.allow_random_teacher = True
    return cfg


def random_cls_batch(batch: int, size: int, num_classes: int = 1000) -> dict:
    """A fixed random classification batch: uint8 images ``(batch, 3, size, size)`` and one
    mmpretrain ``DataSample`` with a label per image."""
    import torch
    from mmpretrain.structures import DataSample
    gen = torch.Generator().manual_seed(0)
    images = (torch.rand(batch, 3, size, size, generator=gen) * 255).to(torch.uint8)
    labels = torch.randint(0, num_classes, (batch, ), generator=gen)
    return dict(inputs=images, data_samples=[DataSample().set_gt_label(int(y)) for y in labels])

