"""The classification report's verdict plot (forest plot of the paired differences)."""
from benchmarks.report import forest_rows, write_plots


def _cmp(name, a, b, mean):
    return dict(name=name, a=a, b=b, mean=mean, low=mean - 0.3, high=mean + 0.3, n=5,
                diffs=[mean - 0.1, mean + 0.1], verdict='better' if mean > 0.3 else 'n.d.')


def _summary():
    pairs = {}
    for pair, shift in (('wide', 0.0), ('deep', 0.5)):
        row = dict(mean=87.0, std=0.2, top1=[87.0] * 5, seeds=list(range(5)), by_steps={},
                   time_s=1.0, epochs=3, settings={}, by_seed={})
        pairs[pair] = dict(rows={'kd': row, 'fmkt_kd': dict(row, mean=88.0)}, teacher=None,
                           retention=[],
                           comparisons=[_cmp('FM-KT (KD metric) vs KD', 'fmkt_kd', 'kd',
                                             1.0 + shift),
                                        _cmp('DiffKD vs KD', 'diffkd', 'kd', -0.2 + shift)])
    pooled = [_cmp('FM-KT (KD metric) vs KD', 'fmkt_kd', 'kd', 1.25),
              _cmp('DiffKD vs KD', 'diffkd', 'kd', 0.05)]
    return dict(pairs=pairs, pooled=pooled, pooled_retention=[], paired_data=True)


def test_forest_rows_give_each_comparison_pooled_then_per_pair():
    rows = forest_rows(_summary())
    assert [r['label'] for r in rows] == [
        'FM-KT (KD metric) vs KD: pooled', 'FM-KT (KD metric) vs KD: wide',
        'FM-KT (KD metric) vs KD: deep', 'DiffKD vs KD: pooled', 'DiffKD vs KD: wide',
        'DiffKD vs KD: deep']
    assert [r.get('pooled', False) for r in rows] == [True, False, False] * 2
    assert [r['mean'] for r in rows] == [1.25, 1.0, 1.5, 0.05, -0.2, 0.3]
    assert rows[0]['color'] != rows[3]['color']  # ours highlighted, rivals grey


def test_verdict_plot_is_written_and_the_steps_plot_only_with_several_n(tmp_path):
    paths = write_plots(str(tmp_path), _summary(), [])
    names = sorted(p.rsplit('/', 1)[1] for p in paths)
    assert names == ['accuracy.png', 'verdicts.png']
    assert (tmp_path / 'verdicts.png').stat().st_size > 5000
