"""Aggregation of the run records into the markdown report, the JSON file and the plots.

The verdicts come from paired differences over seeds (:mod:`benchmarks.stats`): for each
comparison, per pair and pooled over the pairs, the mean difference, its standard deviation,
the 95% Student-t interval and "better" / "worse" / "not distinguishable" read from it.
"""
import math
import os.path as osp
import statistics
from typing import Dict, List, Optional, Tuple

from ..common.files import write_text
from ..common.provenance import machine_text
from ..common.rendering import mean_std_text as _fmt
from ..common.stats import mean_std, paired_stats, per_seed_mean, pooled_stats, ratio_interval
from .configs import DEFAULT_FAMILY, PAIRS, family, picks_key, split_key
from .methods import METHODS, get
from .tuning import setting_label

__all__ = ['summarize', 'comparisons', 'markdown', 'write_markdown', 'write_plots',
           'summarize_tune', 'tune_markdown']

BEST = 'best FM-KT vs best baseline'


def _row(rs: List[dict]) -> dict:
    mean, std = mean_std([r['top1'] for r in rs])
    steps = {}
    for n in sorted({int(k) for r in rs for k in (r.get('top1_by_steps') or {})}):
        vals = [r['top1_by_steps'][str(n)] for r in rs if str(n) in (r.get('top1_by_steps') or {})]
        steps[str(n)] = mean_std(vals)
    return dict(mean=mean, std=std, seeds=[r['seed'] for r in rs], top1=[r['top1'] for r in rs],
                by_seed={r['seed']: r['top1'] for r in rs},
                time_s=statistics.fmean(r['train_time_s'] for r in rs), epochs=rs[0]['epochs'],
                by_steps=steps, settings=rs[0].get('settings') or {})


def _paired_data(runs: List[dict]) -> bool:
    """Whether, for every seed, every run that records it saw the same data order and flips."""
    digests: Dict[int, set] = {}
    for r in runs:
        if r.get('data_digest'):
            digests.setdefault(r['seed'], set()).add(r['data_digest'])
    return all(len(d) == 1 for d in digests.values())


def comparisons(rows: Dict[str, dict]) -> List[Tuple[str, str, str]]:
    """``(name, a, b)`` of every comparison the rows allow: best FM-KT vs best baseline (by
    mean), then each method against its ``versus``."""
    out = []
    fmkts = [m for m in rows if get(m).group == 'fmkt' and get(m).teacher]
    baselines = [m for m in rows if get(m).group == 'baseline']
    if fmkts and baselines:
        best_f = max(fmkts, key=lambda m: rows[m]['mean'])
        best_b = max(baselines, key=lambda m: rows[m]['mean'])
        out.append((BEST, best_f, best_b))
    for method in rows:
        for other in get(method).versus:
            if other in rows:
                out.append((f'{get(method).label} vs {get(other).label}', method, other))
    return out


def _compare(rows: Dict[str, dict]) -> List[dict]:
    out = []
    for name, a, b in comparisons(rows):
        result = paired_stats(rows[a]['by_seed'], rows[b]['by_seed'])
        if result:
            out.append(dict(result, name=name, a=a, b=b))
    return out


def _plain_cost(method: str) -> bool:
    """An FM-KT^Theta variant: ours, deploying a plain student (a deploy step or a second
    stage), so its retention of FM-KT's gain is reported."""
    record = get(method)
    return record.group == 'variant' and bool(record.deploy or record.stage_of)


def _retention(blocks: List[Dict[str, dict]]) -> List[dict]:
    """Each FM-KT^Theta variant's share of FM-KT's gain over KD, over the rows of one pair or
    of every pair (pooled): per seed, the mean over the pairs of (Theta - KD) over that of
    (FM-KT (KD metric) - KD), with Fieller's interval over the seeds (a seed stays one
    observation, as in :func:`_pool`)."""
    common = set.intersection(*(set(rows) for rows in blocks)) if blocks else set()
    if not {'kd', 'fmkt_kd'} <= common:
        return []

    def per_seed(method: str) -> Dict[int, float]:
        kd = [rows['kd']['by_seed'] for rows in blocks]
        other = [rows[method]['by_seed'] for rows in blocks]
        return per_seed_mean([{s: o[s] - k[s] for s in set(k) & set(o)}
                              for k, o in zip(kd, other)])

    gain = per_seed('fmkt_kd')
    out = []
    for method in [m for m in METHODS if m in common and _plain_cost(m)]:
        kept = per_seed(method)
        g = statistics.fmean(gain.values()) if gain else float('nan')
        k = statistics.fmean(kept.values()) if kept else float('nan')
        out.append(dict(method=method, theta_minus_kd=k, fmkt_minus_kd=g,
                        retention=k / g if g > 0 else float('nan'),
                        retention_ci=ratio_interval(kept, gain)))
    return out


def summarize(runs: List[dict], teachers: List[dict], pairs: List[str],
              methods: List[str]) -> dict:
    """Per pair: rows (mean/std, per-seed top-1, time, accuracy vs N), paired comparisons and
    FM-KT^Theta retention; ``pooled``: the comparisons pooled over the pairs."""
    out: Dict[str, dict] = dict(pairs={}, paired_data=_paired_data(runs))
    for pair in pairs:
        rows = {}
        for method in [m for m in METHODS if m in methods]:
            rs = sorted((r for r in runs if r['pair'] == pair and r['method'] == method),
                        key=lambda r: r['seed'])
            if rs:
                rows[method] = _row(rs)
        teacher = [t for t in teachers if t['pair'] == pair]
        out['pairs'][pair] = dict(rows=rows, teacher=teacher[0] if teacher else None,
                                  comparisons=_compare(rows), retention=_retention([rows]))
    # pooled over the pairs of one family: the first pair's in ``pooled``, any other family's
    # (the ViT-student pairs beside the CNN ones) in ``pooled_families``
    families: Dict[str, Dict[str, dict]] = {}
    for pair, block in out['pairs'].items():
        families.setdefault(family(pair), {})[pair] = block
    kin = families.pop(family(pairs[0])) if pairs else {}
    out['pooled'] = _pool(kin)
    out['pooled_retention'] = _retention([b['rows'] for b in kin.values()]) \
        if len(kin) > 1 else []
    out['pooled_families'] = {fam: pooled for fam, blocks in families.items()
                              if (pooled := _pool(blocks))}
    return out


def _pool(blocks: Dict[str, dict]) -> List[dict]:
    """Each comparison over all pairs: best-vs-best by the mean over the pairs."""
    if len(blocks) < 2:
        return []
    common = set.intersection(*(set(b['rows']) for b in blocks.values()))
    means = {m: statistics.fmean(b['rows'][m]['mean'] for b in blocks.values()) for m in common}
    rows = {m: dict(mean=means[m]) for m in METHODS if m in common}
    out = []
    for name, a, b in comparisons(rows):
        per_pair = [{s: blk['rows'][a]['by_seed'][s] - blk['rows'][b]['by_seed'][s]
                     for s in set(blk['rows'][a]['by_seed']) & set(blk['rows'][b]['by_seed'])}
                    for blk in blocks.values()]
        result = pooled_stats(per_pair)
        if result:
            out.append(dict(result, name=name, a=a, b=b))
    return out


def _intro(meta: dict) -> List[str]:
    tuned = 'tuned on the validation split (settings below)' if meta.get('picks') else \
        'untuned (HPARAMS)'
    return [f'### Fashion-MNIST, profile `{meta["profile"]}`', '',
            f'Top-1 (%) on the {meta["test_images"]} images of the {meta["evaluated_on"]}, '
            f'mean +- std over seeds {", ".join(map(str, meta["seeds"]))}; students trained '
            f'{meta["student_epochs"]} epoch(s) on {meta["train_images"]} training images '
            f'(FM-KT^Theta 2-stage: + {meta["theta_epochs"]} stage-2 epoch(s), its time '
            f'includes stage 1); FM-KT headline at the trained N; settings {tuned}. Time: mean '
            f'training wall time per run ({meta["jobs"]} parallel run(s), {meta["threads"]} '
            f'thread(s) each, on {machine_text(meta)}'
            + (f', {meta["amp"]} autocast' if meta.get('amp') else '') + ').'] + _wall(meta)


def _wall(meta: dict) -> List[str]:
    """The run's own wall time, and how much of it came from the run cache."""
    if not meta.get('wall_time_s'):
        return []
    trained = meta.get('runs_trained')
    cache = '' if trained is None else (
        f'; {trained} of {meta["runs_total"]} teacher and student runs trained, the rest taken '
        'from the run cache')
    return ['', f'Wall time of this run: {meta["wall_time_s"] / 60:.1f} min (training '
            f'{meta.get("train_wall_time_s", 0) / 60:.1f} min{cache}).']


def _table(block: dict) -> List[str]:
    steps = sorted({int(n) for row in block['rows'].values() for n in row['by_steps']})
    lines = ['| method | top-1 | seeds | ' + ''.join(f'N={n} | ' for n in steps)
             + 'epochs | time / run |', '|---' * (5 + len(steps)) + '|']
    for method, row in block['rows'].items():
        cells = [(_fmt(*row['by_steps'][str(n)]) if str(n) in row['by_steps'] else '')
                 for n in steps]
        seeds = ' / '.join(f'{v:.2f}' for v in row['top1'])
        lines.append(f'| {get(method).label} | {_fmt(row["mean"], row["std"])} | {seeds} | '
                     + ''.join(f'{c} | ' for c in cells)
                     + f'{row["epochs"]} | {row["time_s"]:.0f} s |')
    return lines


def _comparison_table(items: List[dict]) -> List[str]:
    lines = ['| comparison (A - B) | A | B | mean diff | std | 95% CI | n | verdict |',
             '|---|---|---|---|---|---|---|---|']
    for c in items:
        ci = (f'[{c["low"]:+.2f}, {c["high"]:+.2f}]' if math.isfinite(c['low']) else 'n/a')
        std = f'{c["std"]:.2f}' if math.isfinite(c['std']) else 'n/a'
        lines.append(f'| {c["name"]} | {get(c["a"]).label} | {get(c["b"]).label} | '
                     f'{c["mean"]:+.2f} | {std} | {ci} | {c["n"]} | {c["verdict"]} |')
    return lines


def _retention_ci_text(ci: Optional[dict]) -> str:
    if not ci:
        return ''
    if not ci['bounded']:
        return (f', 95% CI unbounded over {ci["n"]} paired seeds (the gain itself is not '
                'distinguishable from 0)')
    return f', 95% CI [{ci["low"]:.2f}, {ci["high"]:.2f}] (Fieller, {ci["n"]} paired seeds)'


def _pair_block(pair: str, block: dict) -> List[str]:
    t = block['teacher']
    lines = ['', f'**Pair `{pair}`: {PAIRS[pair]["label"]}**'
             + (f' (teacher {t["top1"]:.2f}, {t["epochs"]} epoch(s), {t["params"]} params)'
                if t else ''), '']
    lines += _table(block)
    if block['comparisons']:
        lines += ['', 'Paired differences over seeds:', ''] + _comparison_table(
            block['comparisons'])
    lines += _retention_lines(block['retention'])
    return lines


def _retention_lines(items: List[dict]) -> List[str]:
    lines = []
    for x in items:
        ret = x['retention']
        lines.append(f'\n- {get(x["method"]).label} retention (Theta - KD) / '
                     f'(FM-KT (KD metric) - KD) = {x["theta_minus_kd"]:+.2f} / '
                     f'{x["fmkt_minus_kd"]:+.2f} = '
                     + ('n/a (no FM-KT gain)' if math.isnan(ret) else f'{ret:.2f}')
                     + _retention_ci_text(x.get('retention_ci')))
    return lines


def _settings_lines(summary: dict) -> List[str]:
    seen = {}
    for block in summary['pairs'].values():
        for method, row in block['rows'].items():
            seen.setdefault(method, row['settings'])
    if not any(seen.values()):
        return []
    return ['', 'Settings (tuned on the validation split; unlisted entries as HPARAMS):', ''] + [
        f'- {get(m).label}: {setting_label(s)}'
        + (f' (fixed: {setting_label(dict(get(m).fixed))})' if get(m).fixed else '')
        for m, s in seen.items()]


def markdown(summary: dict, meta: dict, extra: str = '') -> str:
    """The report as markdown text; ``extra`` (e.g. the overhead table) closes it."""
    lines = _intro(meta)
    for pair, block in summary['pairs'].items():
        lines += _pair_block(pair, block)
    if summary.get('pooled'):
        lines += ['', '**Pooled over the pairs** (per seed, the mean of the pairs\' '
                  'differences; t over seeds):', ''] + _comparison_table(summary['pooled'])
        lines += _retention_lines(summary.get('pooled_retention', []))
    for fam, pooled in (summary.get('pooled_families') or {}).items():
        lines += ['', f'**Pooled over the {fam} pairs** (per seed, the mean of the pairs\' '
                  'differences; t over seeds):', ''] + _comparison_table(pooled)
    lines += ['', 'Data order and flips identical across the methods of every seed: '
              + ('yes' if summary.get('paired_data', True) else 'NO (the pairing is broken)')]
    lines += _settings_lines(summary)
    if extra:
        lines += ['', extra]
    return '\n'.join(lines) + '\n'


def write_markdown(path: str, summary: dict, meta: dict, extra: str = '') -> str:
    """Write :func:`markdown` to ``path`` and return it."""
    text = markdown(summary, meta, extra)
    write_text(path, text)
    return text


def summarize_tune(runs: List[dict]) -> Dict[str, List[dict]]:
    """Per tuned method and family of pairs (its picks key, ``configs.picks_key``), its trials
    in grid order: setting, validation mean/std over every seed and pair of the family, the
    runs' count and whether it is the pick."""
    from .tuning import pick_best
    runs = [dict(r, key=picks_key(r['method'], r['pair'])) for r in runs
            if not r.get('shared_with')]  # a teacher-free run counts once
    out: Dict[str, List[dict]] = {}
    for key in dict.fromkeys(r['key'] for m in METHODS for r in runs if r['method'] == m):
        trials = []
        for trial in sorted({r['trial'] for r in runs if r['key'] == key}):
            rs = [r for r in runs if r['key'] == key and r['trial'] == trial]
            mean, std = mean_std([r['top1'] for r in rs])
            trials.append(dict(trial=trial, setting=rs[0]['settings'], mean=mean, std=std,
                               n=len(rs), picked=False))
        pick_best(trials)['picked'] = True
        out[key] = trials
    return out


def tune_markdown(trials: Dict[str, List[dict]], meta: dict) -> str:
    """The tune report: every trial's validation mean and the picks."""
    lines = ['### Tuning on the validation split', '',
             f'Top-1 (%) on the {meta["holdout"]} validation images held out of the training '
             f'split (the test split is not read), mean +- std over seeds '
             f'{", ".join(map(str, meta["seeds"]))} and pairs {", ".join(meta["pairs"])}; '
             f'{meta["student_epochs"]} student epoch(s), {meta["trials"]} trials per method; '
             f'the pick is the highest mean. On {machine_text(meta)}.', '',
             '| method | trial | setting | validation top-1 | runs | pick |',
             '|---|---|---|---|---|---|']
    for key, items in trials.items():
        method, fam = split_key(key)
        label = get(method).label + ('' if fam == DEFAULT_FAMILY else f' ({fam} pairs)')
        for t in items:
            lines.append(f'| {label} | {t["trial"]} | {setting_label(t["setting"])}'
                         f' | {_fmt(t["mean"], t["std"])} | {t["n"]} | '
                         f'{"**picked**" if t["picked"] else ""} |')
    return '\n'.join(lines) + '\n'


def forest_rows(summary: dict) -> List[dict]:
    """The rows of the verdict plot: every comparison pooled over the pairs (a diamond), then
    per pair, in the report's order."""
    rows = []
    names = [c['name'] for c in summary.get('pooled') or []] or [
        c['name'] for block in summary['pairs'].values() for c in block['comparisons']]
    for name in dict.fromkeys(names):
        pooled = [c for c in summary.get('pooled') or [] if c['name'] == name]
        per_pair = [(pair, c) for pair, block in summary['pairs'].items()
                    for c in block['comparisons'] if c['name'] == name]
        ours = (pooled or [c for _, c in per_pair])[0]['a'] in [
            m for m in METHODS if get(m).group in ('fmkt', 'variant')]
        color = '#c0392b' if ours else 'grey'
        for c in pooled:
            rows.append(dict(c, label=f'{name}: pooled', pooled=True, color=color))
        for pair, c in per_pair:
            rows.append(dict(c, label=f'{name}: {pair}', color=color))
    return rows


def write_plots(out_dir: str, summary: dict, runs: List[dict],
                prefix: Optional[str] = None) -> List[str]:
    """``accuracy.png`` (top-1 per method and pair, seeds as dots), ``verdicts.png`` (every
    comparison's paired difference with its 95% interval, per pair and pooled, zero marked)
    and, where more than one N was evaluated, ``fmkt_steps.png`` (flow-head accuracy against
    the inference steps N)."""
    from ..common.plots import forest_plot
    from .plots import accuracy_plot, steps_plot
    prefix = prefix or ''
    out = [accuracy_plot(osp.join(out_dir, f'{prefix}accuracy.png'), summary)]
    rows = forest_rows(summary)
    if rows:
        out.append(forest_plot(osp.join(out_dir, f'{prefix}verdicts.png'), rows,
                               'paired differences A - B over seeds',
                               'top-1 difference (points), 95% t interval; dots: seeds'))
    steps = {n for block in summary['pairs'].values() for row in block['rows'].values()
             for n in row['by_steps']}
    if len(steps) > 1:
        out.append(steps_plot(osp.join(out_dir, f'{prefix}fmkt_steps.png'), summary))
    return out
