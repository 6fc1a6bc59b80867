"""Paired differences over seeds with a Student-t confidence interval (no scipy needed)."""
import math
import statistics
from typing import Dict, Sequence

__all__ = ['t_cdf_two_sided', 't_quantile', 'paired_ci']


def t_cdf_two_sided(t: float, df: int) -> float:
    """``P(|T| <= t)`` for Student's t with an integer number of degrees of freedom.

    Uses the closed forms for integer ``df`` (Abramowitz & Stegun 26.7.3/26.7.4): with
    ``theta = atan(t / sqrt(df))``, a finite series in ``cos(theta)``.
    """
    if not isinstance(df, int) or isinstance(df, bool) or df < 1:
        raise ValueError(f'df must be a positive int, got {df!r}')
    t = abs(float(t))
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    if df % 2 == 1:
        if df == 1:
            return 2.0 * theta / math.pi
        term, total = 1.0, 1.0
        for k in range(1, (df - 3) // 2 + 1):  # 1 + 2/3 c^2 + 2*4/(3*5) c^4 + ...
            term *= (2.0 * k) / (2.0 * k + 1.0) * c2
            total += term
        return 2.0 / math.pi * (theta + math.sin(theta) * math.cos(theta) * total)
    term, total = 1.0, 1.0
    for k in range(1, (df - 2) // 2 + 1):  # 1 + 1/2 c^2 + 1*3/(2*4) c^4 + ...
        term *= (2.0 * k - 1.0) / (2.0 * k) * c2
        total += term
    return math.sin(theta) * total


def t_quantile(confidence: float, df: int) -> float:
    """The two-sided critical value ``t`` with ``P(|T| <= t) = confidence`` (e.g. 0.95 gives
    12.706 for df=1, 4.303 for df=2), by bisection on :func:`t_cdf_two_sided`."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f'confidence must be in (0, 1), got {confidence}')
    lo, hi = 0.0, 1.0
    while t_cdf_two_sided(hi, df) < confidence:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf_two_sided(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


def paired_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Dict:
    """Mean of the paired differences ``a[i] - b[i]`` (same seed ``i``) and its t interval.

    Returns:
        ``dict(n, mean, sd, half_width, low, high, beats)`` where ``beats`` says the whole
        interval is above 0 (``a`` better than ``b`` beyond the interval). With fewer than 2
        pairs the interval is undefined (NaN) and ``beats`` is False.
    """
    if len(a) != len(b):
        raise ValueError(f'paired_ci: {len(a)} values against {len(b)}; pair them by seed')
    diffs = [float(x) - float(y) for x, y in zip(a, b)]
    n = len(diffs)
    if n == 0:
        raise ValueError('paired_ci: no pairs')
    mean = statistics.fmean(diffs)
    if n < 2:
        nan = float('nan')
        return dict(n=n, mean=mean, sd=nan, half_width=nan, low=nan, high=nan, beats=False,
                    diffs=diffs)
    sd = statistics.stdev(diffs)
    half = t_quantile(confidence, n - 1) * sd / math.sqrt(n)
    return dict(n=n, mean=mean, sd=sd, half_width=half, low=mean - half, high=mean + half,
                beats=bool(mean - half > 0), diffs=diffs)
