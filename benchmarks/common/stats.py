"""Paired comparisons over seeds: mean difference, its standard deviation, a Student-t
confidence interval and the verdict read from it.

Every method runs the same seeds with the same data order and augmentation draws, so the
difference of two methods on one seed is one observation; the seeds are the independent units.
The t quantile is computed here (no scipy) from the closed form of Student's t distribution
for an integer number of degrees of freedom.
"""
import math
import statistics
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ['t_two_sided_prob', 't_quantile', 'mean_std', 'paired_stats', 'pooled_stats',
           'per_seed_mean', 'verdict', 'ratio_interval']


def t_two_sided_prob(t: float, df: int) -> float:
    """``P(|T| <= t)`` for Student's t with ``df`` (a positive int) degrees of freedom.

    Uses the finite series in ``theta = atan(t / sqrt(df))`` (Abramowitz & Stegun 26.7.3-4):
    odd ``df``: ``(2/pi) (theta + sin cos (1 + 2/3 cos^2 + 2*4/(3*5) cos^4 + ...))``,
    even ``df``: ``sin (1 + 1/2 cos^2 + 1*3/(2*4) cos^4 + ...)``, ``df - 1`` terms in all.
    """
    if not isinstance(df, int) or isinstance(df, bool) or df < 1:
        raise ValueError(f'df must be a positive int, got {df!r}')
    theta = math.atan(abs(t) / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta)**2
    if df % 2:
        total, term = 0.0, 1.0
        for k in range(1, (df - 1) // 2 + 1):
            total += term
            term *= cos2 * (2 * k) / (2 * k + 1)
        return (2 / math.pi) * (theta + sin * math.cos(theta) * total)  # df=1: total is 0
    total, term = 0.0, 1.0
    for k in range(1, df // 2 + 1):
        total += term
        term *= cos2 * (2 * k - 1) / (2 * k)
    return sin * total


def t_quantile(confidence: float, df: int) -> float:
    """The ``t`` with ``P(|T| <= t) = confidence`` (two-sided), by bisection.

    ``t_quantile(0.95, 4)`` is 2.776, the half-width factor of a 95% interval over 5 seeds.
    """
    if not 0 < confidence < 1:
        raise ValueError(f'confidence must be in (0, 1), got {confidence!r}')
    lo, hi = 0.0, 1.0
    while t_two_sided_prob(hi, df) < confidence:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if t_two_sided_prob(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def mean_std(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value, NaN for none)."""
    if not values:
        return float('nan'), float('nan')
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def verdict(low: float, high: float) -> str:
    """``'better'`` when the interval lies above 0, ``'worse'`` below, else
    ``'not distinguishable'``."""
    if low > 0:
        return 'better'
    if high < 0:
        return 'worse'
    return 'not distinguishable'


def paired_stats(a: Dict[int, float], b: Dict[int, float],
                 confidence: float = 0.95) -> Optional[dict]:
    """Paired difference ``a - b`` (seed -> score) over the seeds both have:
    ``dict(n, seeds, diffs, mean, std, half_width, low, high, verdict)``, or None without a
    common seed (with one seed the interval is unbounded, the verdict ``'n/a (one seed)'``)."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    diffs = [a[s] - b[s] for s in seeds]
    return _interval(diffs, seeds, confidence)


def _interval(diffs: List[float], seeds: Sequence, confidence: float) -> dict:
    n = len(diffs)
    mean = statistics.fmean(diffs)
    if n < 2:
        return dict(n=n, seeds=list(seeds), diffs=diffs, mean=mean, std=float('nan'),
                    half_width=float('inf'), low=float('-inf'), high=float('inf'),
                    verdict='n/a (one seed)')
    std = statistics.stdev(diffs)
    half = t_quantile(confidence, n - 1) * std / math.sqrt(n)
    return dict(n=n, seeds=list(seeds), diffs=diffs, mean=mean, std=std, half_width=half,
                low=mean - half, high=mean + half, verdict=verdict(mean - half, mean + half))


def pooled_stats(per_pair: List[Dict[int, float]], confidence: float = 0.95) -> Optional[dict]:
    """Paired differences pooled over pairs: per seed, the mean of the pairs' differences
    (seed -> difference dicts), then the interval over seeds (the pairs share each seed's data
    order and initialisation, so a seed stays one observation)."""
    pooled = per_seed_mean(per_pair)
    if not pooled:
        return None
    return _interval(list(pooled.values()), list(pooled), confidence)


def per_seed_mean(per_pair: List[Dict[int, float]]) -> Dict[int, float]:
    """Seed -> the mean over the pairs of that seed's value, for the seeds every pair has
    (sorted; empty without pairs or common seeds)."""
    seeds = sorted(set.intersection(*(set(d) for d in per_pair))) if per_pair else []
    return {s: statistics.fmean(d[s] for d in per_pair) for s in seeds}


def ratio_interval(num: Dict[int, float], den: Dict[int, float],
                   confidence: float = 0.95) -> Optional[dict]:
    """Ratio of two paired mean differences, ``mean(num) / mean(den)``, with Fieller's interval.

    ``num`` and ``den`` map a seed to a paired difference (e.g. Theta - KD and FM-KT - KD on
    that seed, which gives the retention). The interval is every ``r`` that the paired t-test
    of ``num - r * den`` over the seeds does not reject at ``confidence`` (Fieller's theorem):
    it accounts for the noise of the denominator and for the correlation of the two through
    the shared KD run. When the denominator's mean is not itself distinguishable from 0 at that
    confidence the set is unbounded and ``low``/``high`` are infinite (``bounded`` False).

    Returns:
        ``dict(n, seeds, ratio, low, high, bounded)``, or None with fewer than 2 common seeds
        or a zero denominator mean.
    """
    seeds = sorted(set(num) & set(den))
    n = len(seeds)
    if n < 2:
        return None
    a = [num[s] for s in seeds]
    b = [den[s] for s in seeds]
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    if mb == 0:
        return None
    saa = statistics.variance(a)
    sbb = statistics.variance(b)
    sab = sum((x - ma) * (y - mb) for x, y in zip(a, b)) / (n - 1)
    q = t_quantile(confidence, n - 1)**2 / n
    # (ma - r mb)^2 <= q (saa - 2 r sab + r^2 sbb)  <=>  qa r^2 + qb r + qc <= 0
    qa, qb, qc = mb * mb - q * sbb, -2 * (ma * mb - q * sab), ma * ma - q * saa
    disc = qb * qb - 4 * qa * qc
    out = dict(n=n, seeds=seeds, ratio=ma / mb, low=float('-inf'), high=float('inf'),
               bounded=False)
    if qa > 0 and disc >= 0:
        root = math.sqrt(disc)
        out.update(low=(-qb - root) / (2 * qa), high=(-qb + root) / (2 * qa), bounded=True)
    return out
