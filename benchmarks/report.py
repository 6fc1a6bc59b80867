"""Aggregation of the run records into the markdown table, the JSON file and the plots."""
import json
import math
import os
import os.path as osp
import statistics
from typing import Dict, List, Optional

from .configs import HPARAMS, METHOD_LABELS, METHODS, PAIRS

__all__ = ['summarize', 'write_markdown', 'write_json', 'write_plots', 'mean_std']


SHORT_LABELS = {
    'student': 'student\nalone', 'kd': 'KD', 'dkd': 'DKD', 'dist': 'DIST',
    'fmkt_kd': 'FM-KT\n(KD)', 'fmkt_dist': 'FM-KT\n(DIST)', 'fmkt_theta': 'Theta\n(2-stage)',
    'fmkt_fold': 'Theta\n(folded)', 'ofmkt': 'OFM-KT\n(online)'
}


def mean_std(values: List[float]) -> tuple:
    """Mean and sample standard deviation (0 for a single value)."""
    if not values:
        return float('nan'), float('nan')
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return mean, std


def summarize(runs: List[dict], teachers: List[dict], pairs: List[str],
              methods: List[str]) -> dict:
    """Per pair and method: mean/std top-1, per-seed values, mean time, accuracy vs N; plus the
    target checks (best FM-KT vs best baseline, OFM-KT vs student, Theta retention)."""
    out: Dict[str, dict] = {}
    for pair in pairs:
        rows = {}
        for method in methods:
            rs = sorted((r for r in runs if r['pair'] == pair and r['method'] == method),
                        key=lambda r: r['seed'])
            if not rs:
                continue
            mean, std = mean_std([r['top1'] for r in rs])
            steps = {}
            for n in HPARAMS['eval_steps']:
                vals = [r['top1_by_steps'][str(n)] for r in rs if r.get('top1_by_steps')]
                if vals:
                    steps[str(n)] = mean_std(vals)
            rows[method] = dict(mean=mean, std=std, seeds=[r['seed'] for r in rs],
                                top1=[r['top1'] for r in rs],
                                time_s=statistics.fmean(r['train_time_s'] for r in rs),
                                epochs=rs[0]['epochs'], by_steps=steps)
        teacher = [t for t in teachers if t['pair'] == pair]
        out[pair] = dict(rows=rows, teacher=teacher[0] if teacher else None,
                         checks=_checks(rows))
    return out


def _checks(rows: Dict[str, dict]) -> dict:
    checks = {}
    baselines = [m for m in ('kd', 'dkd', 'dist') if m in rows]
    fmkts = [m for m in ('fmkt_kd', 'fmkt_dist') if m in rows]
    if baselines and fmkts:
        best_b = max(baselines, key=lambda m: rows[m]['mean'])
        best_f = max(fmkts, key=lambda m: rows[m]['mean'])
        margin = rows[best_f]['mean'] - rows[best_b]['mean']
        spread = max(rows[best_f]['std'], rows[best_b]['std'])
        checks['fmkt_vs_baselines'] = dict(
            best_fmkt=best_f, best_baseline=best_b, margin=margin, seed_std=spread,
            num_seeds=len(rows[best_f]['top1']),
            met=bool(margin > spread and len(rows[best_f]['top1']) > 1))
    if 'ofmkt' in rows and 'student' in rows:
        margin = rows['ofmkt']['mean'] - rows['student']['mean']
        checks['ofmkt_vs_student'] = dict(margin=margin, met=bool(margin > 0))
    # share of FM-KT's gain over KD that a plain-cost (FM-KT^Theta) student keeps
    for method in ('fmkt_theta', 'fmkt_fold'):
        if {method, 'fmkt_kd', 'kd'} <= set(rows):
            gain = rows['fmkt_kd']['mean'] - rows['kd']['mean']
            kept = rows[method]['mean'] - rows['kd']['mean']
            checks[f'{method}_retention'] = dict(
                method=method, retention=kept / gain if gain > 0 else float('nan'),
                theta_minus_kd=kept, fmkt_minus_kd=gain)
    return checks


def _fmt(mean: float, std: float) -> str:
    return f'{mean:.2f} +- {std:.2f}'


def write_markdown(path: str, summary: dict, meta: dict) -> str:
    """Write the results table (one block per pair) and return the markdown text."""
    lines = [f'### Fashion-MNIST, profile `{meta["profile"]}`', '']
    lines.append(
        f'Top-1 (%) on the {meta["test_images"]} images of the {meta["evaluated_on"]}, '
        f'mean +- std over seeds '
        f'{", ".join(map(str, meta["seeds"]))}; students trained {meta["student_epochs"]} '
        f'epoch(s) on {meta["train_images"]} training images (FM-KT^Theta: + '
        f'{meta["theta_epochs"]} stage-2 epoch(s), its time includes stage 1); '
        f'FM-KT headline at N={HPARAMS["headline_steps"]} inference steps '
        f'(fixed in advance). Time: mean training wall time per run ({meta["jobs"]} parallel '
        f'run(s), {meta["threads"]} thread(s) each, on {meta["device"]}).')
    for pair, block in summary.items():
        t = block['teacher']
        lines += ['', f'**Pair `{pair}`: {PAIRS[pair]["label"]}**'
                  + (f' (teacher {t["top1"]:.2f}, {t["epochs"]} epoch(s), {t["params"]} params)'
                     if t else '')]
        lines += ['', '| method | top-1 | seeds | N=1 | N=2 | N=4 | N=8 | epochs | time / run |',
                  '|---|---|---|---|---|---|---|---|---|']
        for method in METHODS:
            row = block['rows'].get(method)
            if not row:
                continue
            steps = [(_fmt(*row['by_steps'][str(n)]) if str(n) in row['by_steps'] else '')
                     for n in (1, 2, 4, 8)]
            seeds = ' / '.join(f'{v:.2f}' for v in row['top1'])
            lines.append(f'| {METHOD_LABELS[method]} | {_fmt(row["mean"], row["std"])} | '
                         f'{seeds} | ' + ' | '.join(steps)
                         + f' | {row["epochs"]} | {row["time_s"]:.0f} s |')
        c = block['checks']
        notes = []
        if 'fmkt_vs_baselines' in c:
            x = c['fmkt_vs_baselines']
            verdict = ('n/a with one seed' if x['num_seeds'] < 2 else
                       'met' if x['met'] else 'NOT met')
            notes.append(f'best FM-KT ({METHOD_LABELS[x["best_fmkt"]]}) - best baseline '
                         f'({METHOD_LABELS[x["best_baseline"]]}) = {x["margin"]:+.2f} '
                         f'(seed std {x["seed_std"]:.2f}): target (> seed std) {verdict}')
        if 'ofmkt_vs_student' in c:
            x = c['ofmkt_vs_student']
            notes.append(f'OFM-KT - student alone = {x["margin"]:+.2f}: target '
                         f'{"met" if x["met"] else "NOT met"}')
        for x in (c[k] for k in ('fmkt_theta_retention', 'fmkt_fold_retention') if k in c):
            ret = x['retention']
            notes.append(f'{METHOD_LABELS[x["method"]]} retention (Theta - KD) / '
                         f'(FM-KT (KD metric) - KD) = {x["theta_minus_kd"]:+.2f} / '
                         f'{x["fmkt_minus_kd"]:+.2f} = '
                         + ('n/a (no FM-KT gain)' if math.isnan(ret) else f'{ret:.2f}'))
        if notes:
            lines += [''] + [f'- {n}' for n in notes]
    ov = meta.get('overhead')
    if ov:
        lines += ['', overhead_markdown(ov)]
    text = '\n'.join(lines) + '\n'
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        f.write(text)
    return text


def overhead_markdown(ov: dict) -> str:
    """Table of the overhead benchmark's ratios against their targets."""
    lines = [f'**Overhead** ({ov["setting"]}; medians of {ov["repeats"]} repeats)', '',
             '| measurement | ratio | target | met |', '|---|---|---|---|']
    for item in ov['ratios']:
        met = '-' if item['target'] == 'analysis' else ('yes' if item['met'] else 'no')
        lines.append(f'| {item["name"]} | {item["ratio"]:.3f} | {item["target"]} | {met} |')
    return '\n'.join(lines)


def write_json(path: str, payload: dict) -> None:
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path + '.part', 'w') as f:
        json.dump(payload, f, indent=1, default=float)
    os.replace(path + '.part', path)


def write_plots(out_dir: str, summary: dict, runs: List[dict],
                prefix: Optional[str] = None) -> List[str]:
    """``accuracy.png`` (top-1 per method and pair, seeds as dots) and ``fmkt_steps.png``
    (flow-head accuracy against the inference steps N)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    paths = []
    pairs = list(summary)
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.5 * len(pairs), 4.2), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        rows = summary[pair]['rows']
        methods = [m for m in METHODS if m in rows]
        xs = range(len(methods))
        colors = ['#999999' if m in ('student', 'kd', 'dkd', 'dist') else '#1f77b4'
                  for m in methods]
        ax.bar(xs, [rows[m]['mean'] for m in methods], yerr=[rows[m]['std'] for m in methods],
               color=colors, capsize=3, alpha=0.8)
        for x, m in zip(xs, methods):
            ax.scatter([x] * len(rows[m]['top1']), rows[m]['top1'], color='k', s=8, zorder=3)
        lo = min(min(rows[m]['top1']) for m in methods)
        hi = max(max(rows[m]['top1']) for m in methods)
        ax.set_ylim(lo - 1.0, hi + 0.6)
        for x, m in zip(xs, methods):
            ax.text(x, rows[m]['mean'] + rows[m]['std'] + 0.05, f'{rows[m]["mean"]:.2f}',
                    ha='center', va='bottom', fontsize=7)
        ax.set_xticks(list(xs))
        ax.set_xticklabels([SHORT_LABELS[m] for m in methods], fontsize=7)
        t = summary[pair]['teacher']
        ax.set_title(f'{pair}: {PAIRS[pair]["label"]}'
                     + (f' (teacher {t["top1"]:.2f})' if t else ''))
        ax.set_ylabel('top-1 (%)')
        ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    path = osp.join(out_dir, f'{prefix or ""}accuracy.png')
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)

    fig, axes = plt.subplots(1, len(pairs), figsize=(5.0 * len(pairs), 4.4), squeeze=False)
    steps = list(HPARAMS['eval_steps'])
    for ax, pair in zip(axes[0], pairs):
        rows = summary[pair]['rows']
        for method in ('fmkt_kd', 'fmkt_dist', 'fmkt_fold', 'ofmkt'):
            row = rows.get(method)
            if not row or not row['by_steps']:
                continue
            means = [row['by_steps'][str(n)][0] for n in steps]
            stds = [row['by_steps'][str(n)][1] for n in steps]
            ax.errorbar(steps, means, yerr=stds, marker='o', capsize=3,
                        label=METHOD_LABELS[method])
        for method, style in (('kd', ':'), ('dist', '--')):
            if method in rows:
                ax.axhline(rows[method]['mean'], ls=style, color='grey',
                           label=f'{METHOD_LABELS[method]} (no flow)')
        ax.set_xscale('log', base=2)
        ax.set_xticks(steps)
        ax.set_xticklabels([str(n) for n in steps])
        ax.set_xlabel('inference steps N')
        ax.set_ylabel('top-1 (%)')
        ax.set_title(f'{pair}: accuracy vs N')
        ax.grid(alpha=0.3)
    # one legend below the panels, where it hides no curve
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc='lower center', ncol=3, fontsize=7)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    path = osp.join(out_dir, f'{prefix or ""}fmkt_steps.png')
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths


def main(argv=None) -> None:
    """Re-render ``results.md`` and the plots next to a ``results.json``."""
    import argparse
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument('results', help='path of a results.json written by benchmarks/run.py')
    args = parser.parse_args(argv)
    with open(args.results) as f:
        payload = json.load(f)
    out_dir = osp.dirname(args.results)
    meta = payload['meta']
    summary = summarize(payload['runs'], payload['teachers'], meta['pairs'], meta['methods'])
    print(write_markdown(osp.join(out_dir, 'results.md'), summary, meta))
    write_plots(out_dir, summary, payload['runs'])


if __name__ == '__main__':
    main()
