"""The classification report's verdict plot (forest plot of the paired differences)."""
from benchmarks.classification.report import forest_rows, write_plots


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


def test_render_rewrites_the_report_with_the_overhead_table(tmp_path):
    """``python -m benchmarks.run --render results.json``: the same results.md as the run wrote,
    the overhead table (from benchmarks.overhead) at its end."""
    import json

    from benchmarks.classification.report import markdown, summarize
    from benchmarks.overhead.report import overhead_markdown
    from benchmarks.run import main
    runs = [dict(pair='wide', method=m, seed=s, top1=87.0 + s + (m == 'fmkt_kd'),
                 train_time_s=1.0, epochs=3) for m in ('kd', 'fmkt_kd') for s in range(3)]
    overhead = dict(setting='ResNet-34 -> ResNet-18', repeats=2, ratios=[dict(
        key='train_logit', name='train step, FM-KT / KD', ratio=1.05, target='<= 1.10',
        met=True)])
    meta = dict(profile='default', test_images=500, evaluated_on='test split', seeds=[0, 1, 2],
                student_epochs=3, train_images=1000, theta_epochs=2, jobs=1, threads=1,
                device='cpu', pairs=['wide'], methods=['kd', 'fmkt_kd'], overhead=overhead)
    path = tmp_path / 'results.json'
    path.write_text(json.dumps(dict(meta=meta, runs=runs, teachers=[])))
    main(['--render', str(path)])
    summary = summarize(runs, [], ['wide'], ['kd', 'fmkt_kd'])
    text = (tmp_path / 'results.md').read_text()
    assert text == markdown(summary, meta, overhead_markdown(overhead))
    assert text.rstrip().endswith('| train step, FM-KT / KD | 1.050 | <= 1.10 | yes |')
    assert (tmp_path / 'accuracy.png').is_file()
