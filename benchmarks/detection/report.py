"""Summary of the detection benchmark: the table (mAP, mAP50, time per run), paired differences
with 95% t intervals over seeds, ``results.md``, ``results.json`` and ``det_map.png``."""
import statistics
from typing import List

from ..common.files import write_text
from ..common.plots import HIGHLIGHT, MUTED, forest, pyplot, seed_bars
from ..common.provenance import machine_text
from ..common.rendering import diff_text, mean_std_text, table
from ..common.stats import mean_std, paired_stats
from .jobs import METHOD_LABELS

__all__ = ['ROW_ORDER', 'COMPARISONS', 'summarize', 'verdict', 'write_markdown', 'write_plot']

ROW_ORDER = ('student', 'pkd', 'fmkt', 'fmkt_export')
#: (a, b): the paired difference a - b over seeds is reported with its 95% interval.
COMPARISONS = (('fmkt', 'pkd'), ('fmkt', 'student'), ('pkd', 'student'), ('fmkt_export', 'fmkt'))
SHORT = {'student': 'student\nalone', 'pkd': 'PKD', 'fmkt': 'FM-KT\n(FPN)',
         'fmkt_export': 'FM-KT\nexported'}


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
            row[f'{metric}_mean'], row[f'{metric}_std'] = mean_std(values)
        rows[method] = row
    comparisons = []
    for a, b in COMPARISONS:
        if a not in rows or b not in rows:
            continue
        seeds = sorted(set(rows[a]['seeds']) & set(rows[b]['seeds']))
        if not seeds:
            continue
        item = dict(a=a, b=b, seeds=seeds)
        for metric in ('mAP', 'mAP50'):
            ci = paired_stats(*(dict(zip(rows[m]['seeds'], rows[m][metric])) for m in (a, b)))
            item[metric] = dict(ci, sd=ci['std'], beats=ci['verdict'] == 'better')
        comparisons.append(item)
    exports = [{k: r[k] for k in ('seed', 'max_box_diff', 'max_score_diff',
                                  'images_mismatched', 'detections')}
               for r in runs if r['method'] == 'fmkt_export']
    return dict(rows=rows, comparisons=comparisons, exports=exports,
                teacher={k: teacher[k] for k in ('mAP', 'mAP50', 'mAP75', 'train_time_s',
                                                 'eval_time_s', 'iters') if k in teacher})


def verdict(summary: dict) -> str:
    """One sentence: does FM-KT (FPN) beat PKD beyond the 95% interval (mAP)?"""
    item = next((c for c in summary['comparisons'] if (c['a'], c['b']) == ('fmkt', 'pkd')),
                None)
    if item is None:
        return 'FM-KT (FPN) and PKD were not both run.'
    ci = item['mAP']
    if ci['n'] < 2:
        return 'FM-KT (FPN) vs PKD: one seed, no interval.'
    says = dict(better='beats', worse='is below').get(ci['verdict'], 'does not beat')
    return (f'FM-KT (FPN) {says} PKD beyond the 95% interval: mAP {diff_text(ci)} over '
            f'{ci["n"]} paired seeds' + ('.' if says != 'does not beat' else
                                         ' (the interval contains 0).'))


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
        f'{machine_text(meta)}); whole benchmark {meta["wall_time_s"] / 60:.1f} min.', '',
        ]
    lines += table(['method', 'mAP', 'mAP50', 'mAP per seed', 'time / run'], [
        [METHOD_LABELS[m], mean_std_text(row['mAP_mean'], row['mAP_std']),
         mean_std_text(row['mAP50_mean'], row['mAP50_std']),
         ' / '.join(f'{v:.2f}' for v in row['mAP']), f'{row["time_s"]:.0f} s']
        for m, row in ((m, rows[m]) for m in ROW_ORDER if m in rows)])
    lines += ['', 'Paired differences (same seed), mean [95% t interval]:', '']
    lines += table(['difference', 'mAP', 'mAP50'], [
        [f'{METHOD_LABELS[c["a"]]} - {METHOD_LABELS[c["b"]]}', diff_text(c['mAP']),
         diff_text(c['mAP50'])] for c in summary['comparisons']])
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
    write_text(path, text)
    return text


def write_plot(path: str, summary: dict) -> str:
    """``det_map.png``: mAP per method (bars, seeds as dots, teacher as a line) and the paired
    differences with their 95% intervals."""
    plt = pyplot()
    rows = summary['rows']
    methods = [m for m in ROW_ORDER if m in rows]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2),
                                 gridspec_kw=dict(width_ratios=[1.1, 1]))
    seed_bars(ax, [SHORT[m] for m in methods], [rows[m]['mAP'] for m in methods],
              [MUTED if m in ('student', 'pkd') else HIGHLIGHT for m in methods], pad=0.1)
    teacher = summary['teacher'].get('mAP')
    if teacher is not None:
        ax.axhline(teacher, ls='--', color='grey', label=f'teacher {teacher:.2f}')
        ax.legend(fontsize=8, loc='lower right')
    values = [v for m in methods for v in rows[m]['mAP']] + ([teacher] if teacher else [])
    ax.set_ylim(max(0.0, min(values) - 3.0), max(values) + 2.0)
    ax.set_ylabel('bbox mAP (%)')
    ax.set_title('RetinaNet R-18 student, Fashion-MNIST scenes')
    forest(bx, [dict(c['mAP'], label=f'{SHORT[c["a"]]} - {SHORT[c["b"]]}'.replace('\n', ' '),
                     color=HIGHLIGHT if c['a'].startswith('fmkt') else 'grey')
                for c in summary['comparisons']],
           'paired difference in mAP (points), 95% t interval')
    bx.set_title('paired by seed')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
