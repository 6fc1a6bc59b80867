"""Summary of the detection benchmark: the table (mAP, mAP50, time per run), paired differences
with 95% t intervals over seeds, ``results.md``, ``results.json`` and ``det_map.png``."""
import json
import os
import os.path as osp
import statistics
from typing import List

from .jobs import METHOD_LABELS
from .stats import paired_ci

__all__ = ['ROW_ORDER', 'COMPARISONS', 'summarize', 'write_markdown', 'write_json',
           'write_plot']

ROW_ORDER = ('student', 'pkd', 'fmkt', 'fmkt_export')
#: (a, b): the paired difference a - b over seeds is reported with its 95% interval.
COMPARISONS = (('fmkt', 'pkd'), ('fmkt', 'student'), ('pkd', 'student'), ('fmkt_export', 'fmkt'))
SHORT = {'student': 'student\nalone', 'pkd': 'PKD', 'fmkt': 'FM-KT\n(FPN)',
         'fmkt_export': 'FM-KT\nexported'}


def _mean_std(values: List[float]):
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def summarize(runs: List[dict], teacher: dict) -> dict:
    """Rows per method (mean/std of mAP and mAP50, per-seed values, mean time per run) and the
    paired comparisons (seeds present in both methods)."""
    rows = {}
    for method in ROW_ORDER:
        rs = sorted((r for r in runs if r['method'] == method), key=lambda r: r['seed'])
        if not rs:
            continue
        row = dict(seeds=[r['seed'] for r in rs],
                   time_s=statistics.fmean(r['train_time_s'] + r['eval_time_s'] for r in rs),
                   train_time_s=statistics.fmean(r['train_time_s'] for r in rs),
                   eval_time_s=statistics.fmean(r['eval_time_s'] for r in rs))
        for metric in ('mAP', 'mAP50', 'mAP75'):
            values = [r[metric] for r in rs]
            row[metric] = values
            row[f'{metric}_mean'], row[f'{metric}_std'] = _mean_std(values)
        rows[method] = row
    comparisons = []
    for a, b in COMPARISONS:
        if a not in rows or b not in rows:
            continue
        seeds = sorted(set(rows[a]['seeds']) & set(rows[b]['seeds']))
        item = dict(a=a, b=b, seeds=seeds)
        for metric in ('mAP', 'mAP50'):
            va = [rows[a][metric][rows[a]['seeds'].index(s)] for s in seeds]
            vb = [rows[b][metric][rows[b]['seeds'].index(s)] for s in seeds]
            item[metric] = paired_ci(va, vb)
        comparisons.append(item)
    exports = [{k: r[k] for k in ('seed', 'max_box_diff', 'max_score_diff',
                                  'images_mismatched', 'detections')}
               for r in runs if r['method'] == 'fmkt_export']
    return dict(rows=rows, comparisons=comparisons, exports=exports,
                teacher={k: teacher[k] for k in ('mAP', 'mAP50', 'mAP75', 'train_time_s',
                                                 'eval_time_s', 'iters') if k in teacher})


def _ci_text(ci: dict) -> str:
    if ci['n'] < 2:
        return f'{ci["mean"]:+.2f} (one seed: no interval)'
    return f'{ci["mean"]:+.2f} [{ci["low"]:+.2f}, {ci["high"]:+.2f}]'


def verdict(summary: dict) -> str:
    """One sentence: does FM-KT (FPN) beat PKD beyond the 95% interval (mAP)?"""
    item = next((c for c in summary['comparisons'] if (c['a'], c['b']) == ('fmkt', 'pkd')),
                None)
    if item is None:
        return 'FM-KT (FPN) and PKD were not both run.'
    ci = item['mAP']
    if ci['n'] < 2:
        return 'FM-KT (FPN) vs PKD: one seed, no interval.'
    if ci['beats']:
        return (f'FM-KT (FPN) beats PKD beyond the 95% interval: mAP {_ci_text(ci)} over '
                f'{ci["n"]} paired seeds.')
    if ci['high'] < 0:
        return (f'FM-KT (FPN) is below PKD beyond the 95% interval: mAP {_ci_text(ci)} over '
                f'{ci["n"]} paired seeds.')
    return (f'FM-KT (FPN) does not beat PKD beyond the 95% interval: mAP {_ci_text(ci)} over '
            f'{ci["n"]} paired seeds (the interval contains 0).')


def write_markdown(path: str, summary: dict, meta: dict) -> str:
    """Write ``results.md`` and return its text."""
    rows, t = summary['rows'], summary['teacher']
    lines = [
        f'### Detection on Fashion-MNIST scenes, profile `{meta["profile"]}`', '',
        f'bbox mAP and mAP50 (%, mmdet `CocoMetric`) on the {meta["eval_images"]} scenes of the '
        f'{meta["evaluated_on"]} ({meta["canvas"]} px, 2-6 garments each), mean +- std over '
        f'seeds {", ".join(map(str, meta["seeds"]))}. RetinaNet students (ResNet-18, width 16, '
        f'32-channel FPN) trained {meta["iters"]} iterations of batch {meta["batch_size"]} on '
        f'{meta["train_images"]} training scenes; teacher RetinaNet ResNet-34 (width 32) '
        + (f'trained once for {meta["teacher_iters"]} iterations: mAP {t["mAP"]:.2f}, mAP50 '
           f'{t["mAP50"]:.2f}' if t else 'not run') +
        '. Time: training + evaluation wall time per run '
        f'({meta["jobs"]} run(s) in parallel, {meta["threads"]} thread(s) each, on '
        f'{meta["device"]}); whole benchmark {meta["wall_time_s"] / 60:.1f} min.', '',
        '| method | mAP | mAP50 | mAP per seed | time / run |', '|---|---|---|---|---|']
    for method in ROW_ORDER:
        row = rows.get(method)
        if not row:
            continue
        seeds = ' / '.join(f'{v:.2f}' for v in row['mAP'])
        lines.append(f'| {METHOD_LABELS[method]} | {row["mAP_mean"]:.2f} +- '
                     f'{row["mAP_std"]:.2f} | {row["mAP50_mean"]:.2f} +- {row["mAP50_std"]:.2f} '
                     f'| {seeds} | {row["time_s"]:.0f} s |')
    lines += ['', 'Paired differences (same seed), mean [95% t interval]:', '',
              '| difference | mAP | mAP50 |', '|---|---|---|']
    for item in summary['comparisons']:
        name = f'{METHOD_LABELS[item["a"]]} - {METHOD_LABELS[item["b"]]}'
        lines.append(f'| {name} | {_ci_text(item["mAP"])} | {_ci_text(item["mAP50"])} |')
    exports = summary.get('exports') or []
    if exports:
        lines += ['', f'The exported FM-KT students (`tools/convert_fmkt_ckpt_to_student.py`, '
                  f'scored by `tools/test.py`) reproduce the distillation model\'s detections: '
                  f'largest score difference {max(e["max_score_diff"] for e in exports):.1e}, '
                  f'largest box difference {max(e["max_box_diff"] for e in exports):.1e} px, '
                  f'{sum(e["images_mismatched"] for e in exports)} image(s) with other labels '
                  f'or counts, over {sum(e["detections"] for e in exports)} detections.']
    lines += ['', f'**{verdict(summary)}**']
    text = '\n'.join(lines) + '\n'
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return text


def write_json(path: str, payload: dict) -> None:
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path + '.part', 'w') as f:
        json.dump(payload, f, indent=1, default=float)
    os.replace(path + '.part', path)


def write_plot(path: str, summary: dict) -> str:
    """``det_map.png``: mAP per method (bars, seeds as dots, teacher as a line) and the paired
    differences with their 95% intervals."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = summary['rows']
    methods = [m for m in ROW_ORDER if m in rows]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2),
                                 gridspec_kw=dict(width_ratios=[1.1, 1]))
    xs = list(range(len(methods)))
    colors = ['#999999' if m in ('student', 'pkd') else '#1f77b4' for m in methods]
    ax.bar(xs, [rows[m]['mAP_mean'] for m in methods], yerr=[rows[m]['mAP_std'] for m in methods],
           color=colors, alpha=0.8, capsize=3)
    for x, m in zip(xs, methods):
        ax.scatter([x] * len(rows[m]['mAP']), rows[m]['mAP'], color='k', s=10, zorder=3)
        ax.text(x, rows[m]['mAP_mean'] + rows[m]['mAP_std'] + 0.1, f'{rows[m]["mAP_mean"]:.2f}',
                ha='center', va='bottom', fontsize=8)
    teacher = summary['teacher'].get('mAP')
    if teacher is not None:
        ax.axhline(teacher, ls='--', color='grey', label=f'teacher {teacher:.2f}')
        ax.legend(fontsize=8, loc='lower right')
    values = [v for m in methods for v in rows[m]['mAP']] + ([teacher] if teacher else [])
    ax.set_ylim(max(0.0, min(values) - 3.0), max(values) + 2.0)
    ax.set_xticks(xs)
    ax.set_xticklabels([SHORT[m] for m in methods], fontsize=8)
    ax.set_ylabel('bbox mAP (%)')
    ax.set_title('RetinaNet R-18 student, Fashion-MNIST scenes')
    ax.grid(axis='y', alpha=0.3)

    comps = summary['comparisons']
    ys = list(range(len(comps)))[::-1]
    for y, item in zip(ys, comps):
        ci = item['mAP']
        if ci['n'] >= 2:
            bx.errorbar([ci['mean']], [y], xerr=[[ci['half_width']], [ci['half_width']]],
                        fmt='o', color='#1f77b4' if item['a'].startswith('fmkt') else 'grey',
                        capsize=4)
        else:
            bx.plot([ci['mean']], [y], 'o', color='grey')
        bx.scatter(ci['diffs'], [y] * len(ci['diffs']), color='k', s=8, zorder=3)
    bx.axvline(0.0, color='k', lw=0.8)
    bx.set_yticks(ys)
    bx.set_yticklabels([f'{SHORT[c["a"]]} - {SHORT[c["b"]]}'.replace('\n', ' ') for c in comps],
                       fontsize=8)
    bx.set_xlabel('paired difference in mAP (points), 95% t interval')
    bx.set_title('paired by seed')
    bx.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
