"""Markdown pieces of the reports: tables, ``mean +- std`` and paired differences with their
intervals (as :func:`~benchmarks.common.stats.paired_stats` gives them)."""
import math
from typing import Iterable, List, Sequence

__all__ = ['table', 'mean_std_text', 'interval_text', 'diff_text']


def table(header: Sequence[str], rows: Iterable[Sequence]) -> List[str]:
    """The lines of a markdown table (cells as ``str``)."""
    return (['| ' + ' | '.join(map(str, header)) + ' |', '|---' * len(header) + '|']
            + ['| ' + ' | '.join(map(str, row)) + ' |' for row in rows])


def mean_std_text(mean: float, std: float) -> str:
    """``'90.12 +- 0.34'``."""
    return f'{mean:.2f} +- {std:.2f}'


def interval_text(stats: dict) -> str:
    """``'[-0.12, +0.45]'``, or ``'n/a'`` for an unbounded or undefined interval."""
    if not (math.isfinite(stats['low']) and math.isfinite(stats['high'])):
        return 'n/a'
    return f'[{stats["low"]:+.2f}, {stats["high"]:+.2f}]'


def diff_text(stats: dict) -> str:
    """``'+0.16 [-0.12, +0.45]'``: the mean paired difference and its interval."""
    if stats['n'] < 2:
        return f'{stats["mean"]:+.2f} (one seed: no interval)'
    return f'{stats["mean"]:+.2f} {interval_text(stats)}'
