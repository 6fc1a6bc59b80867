"""Paired statistics of the benchmark: the Student-t quantile, intervals and verdicts."""
import math

import pytest

from benchmarks.common.stats import (
    mean_std,
    paired_stats,
    pooled_stats,
    ratio_interval,
    t_quantile,
    t_two_sided_prob,
    verdict,
)

#: two-sided 95% and 99% quantiles of Student's t (printed tables)
KNOWN = {1: (12.706, 63.657), 2: (4.303, 9.925), 3: (3.182, 5.841), 4: (2.776, 4.604),
         5: (2.571, 4.032), 9: (2.262, 3.250), 10: (2.228, 3.169), 19: (2.093, 2.861),
         29: (2.045, 2.756), 30: (2.042, 2.750)}


@pytest.mark.parametrize('df', sorted(KNOWN))
def test_t_quantile_matches_tables(df):
    q95, q99 = KNOWN[df]
    assert t_quantile(0.95, df) == pytest.approx(q95, abs=1e-3)
    assert t_quantile(0.99, df) == pytest.approx(q99, abs=1e-3)


def test_t_distribution_limits_and_closed_forms():
    # df=1 is Cauchy: P(|T| <= t) = 2 atan(t) / pi; df=2: t / sqrt(2 + t^2)
    for t in (0.3, 1.0, 4.0):
        assert t_two_sided_prob(t, 1) == pytest.approx(2 * math.atan(t) / math.pi)
        assert t_two_sided_prob(t, 2) == pytest.approx(t / math.sqrt(2 + t * t))
    # large df approaches the normal 1.960
    assert t_quantile(0.95, 200) == pytest.approx(1.972, abs=2e-3)
    with pytest.raises(ValueError, match='df'):
        t_two_sided_prob(1.0, 0)
    with pytest.raises(ValueError, match='confidence'):
        t_quantile(1.5, 3)


def test_paired_interval_and_verdicts():
    a = {0: 90.0, 1: 91.0, 2: 90.5, 3: 90.2, 4: 90.8}
    b = {0: 89.5, 1: 90.4, 2: 90.1, 3: 89.9, 4: 90.1, 5: 80.0}  # seed 5 has no partner
    s = paired_stats(a, b)
    diffs = [0.5, 0.6, 0.4, 0.3, 0.7]
    assert s['n'] == 5 and s['seeds'] == [0, 1, 2, 3, 4]
    assert s['diffs'] == pytest.approx(diffs)
    mean = sum(diffs) / 5
    std = math.sqrt(sum((d - mean)**2 for d in diffs) / 4)
    half = 2.7764 * std / math.sqrt(5)
    assert s['mean'] == pytest.approx(mean) and s['std'] == pytest.approx(std)
    assert (s['low'], s['high']) == pytest.approx((mean - half, mean + half), abs=1e-4)
    assert s['half_width'] == pytest.approx(half, abs=1e-4)
    assert s['verdict'] == 'better'
    assert paired_stats(b, a)['verdict'] == 'worse'
    noisy = paired_stats({0: 1.0, 1: 0.0, 2: 0.5}, {0: 0.0, 1: 1.0, 2: 0.4})
    assert noisy['verdict'] == 'not distinguishable' and noisy['low'] < 0 < noisy['high']
    one = paired_stats({0: 1.0}, {0: 0.0})
    assert one['verdict'] == 'n/a (one seed)' and math.isinf(one['half_width'])
    assert paired_stats({0: 1.0}, {1: 0.0}) is None
    assert verdict(0.1, 0.3) == 'better' and verdict(-0.3, -0.1) == 'worse'


def test_mean_std():
    assert mean_std([1.0, 3.0]) == pytest.approx((2.0, math.sqrt(2.0)))
    assert mean_std([4.0]) == (4.0, 0.0)
    assert all(math.isnan(v) for v in mean_std([]))


def test_pooled_over_pairs_averages_each_seed():
    wide = {0: 0.2, 1: 0.4, 2: 0.3}
    deep = {0: 0.4, 1: 0.2, 2: 0.5, 3: 9.0}  # seed 3 is missing on wide: left out
    s = pooled_stats([wide, deep])
    assert s['seeds'] == [0, 1, 2]
    assert s['diffs'] == pytest.approx([0.3, 0.3, 0.4])
    assert s['verdict'] == 'better'


def _t_accepts(num, den, r, confidence=0.95):
    """Whether the paired t-interval of num - r * den holds 0 (the definition of Fieller's)."""
    s = paired_stats({k: num[k] - r * den[k] for k in num}, {k: 0.0 for k in num}, confidence)
    return s['low'] <= 0 <= s['high']


def test_ratio_interval_is_the_set_the_paired_t_test_accepts():
    # retention: (Theta - KD) and (FM-KT - KD) per seed, the gain clearly above 0
    num = {0: 0.5, 1: 0.9, 2: 0.2, 3: 0.7, 4: 0.4}
    den = {0: 0.9, 1: 1.2, 2: 0.6, 3: 1.1, 4: 0.8, 7: 3.0}  # seed 7 has no partner
    r = ratio_interval(num, den)
    assert r['n'] == 5 and r['bounded']
    assert r['ratio'] == pytest.approx(2.7 / 4.6)
    assert r['low'] < r['ratio'] < r['high']
    # the end points are where the t-test switches; a step inside accepts, outside rejects
    eps = 1e-6
    for end, inside in ((r['low'], r['low'] + eps), (r['high'], r['high'] - eps)):
        outside = end - (inside - end)
        assert _t_accepts(num, den, inside) and not _t_accepts(num, den, outside)
    # a wider confidence gives a wider interval
    wide = ratio_interval(num, den, confidence=0.99)
    assert wide['low'] < r['low'] and wide['high'] > r['high']


def test_ratio_interval_unbounded_when_the_gain_is_noise():
    num = {0: 0.5, 1: -0.2, 2: 0.3, 3: 0.1}
    den = {0: 1.0, 1: -0.8, 2: 0.4, 3: -0.3}  # mean 0.075, not distinguishable from 0
    r = ratio_interval(num, den)
    assert not r['bounded'] and math.isinf(r['low']) and math.isinf(r['high'])
    assert ratio_interval({0: 1.0}, {0: 1.0}) is None
    assert ratio_interval({0: 1.0, 1: 2.0}, {0: 1.0, 1: -1.0}) is None  # zero gain
