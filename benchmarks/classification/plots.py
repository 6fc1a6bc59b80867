"""The benchmark's two figures (matplotlib, written as PNG)."""
from ..common.plots import HIGHLIGHT, MUTED, pyplot, seed_bars
from .configs import PAIRS
from .methods import get

__all__ = ['accuracy_plot', 'steps_plot']


def _accuracy_panel(ax, pair: str, block: dict) -> None:
    rows = block['rows']
    methods = list(rows)
    seed_bars(ax, [get(m).short for m in methods], [rows[m]['top1'] for m in methods],
              [MUTED if get(m).group in ('reference', 'baseline') else HIGHLIGHT
               for m in methods])
    lo = min(min(rows[m]['top1']) for m in methods)
    hi = max(max(rows[m]['top1']) for m in methods)
    ax.set_ylim(lo - 1.0, hi + 0.6)
    t = block['teacher']
    ax.set_title(f'{pair}: {PAIRS[pair]["label"]}' + (f' (teacher {t["top1"]:.2f})' if t else ''))
    ax.set_ylabel('top-1 (%)')


def accuracy_plot(path: str, summary: dict) -> str:
    """Top-1 per method and pair (bars: mean +- std; dots: seeds); returns ``path``."""
    plt = pyplot()
    pairs = list(summary['pairs'])
    fig, axes = plt.subplots(1, len(pairs), figsize=(6.5 * len(pairs), 4.2), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        _accuracy_panel(ax, pair, summary['pairs'][pair])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _steps_panel(ax, pair: str, rows: dict) -> None:
    steps = sorted({int(n) for row in rows.values() for n in row['by_steps']})
    for method, row in rows.items():
        if not row['by_steps']:
            continue
        ns = [n for n in steps if str(n) in row['by_steps']]
        ax.errorbar(ns, [row['by_steps'][str(n)][0] for n in ns],
                    yerr=[row['by_steps'][str(n)][1] for n in ns], marker='o', capsize=3,
                    label=get(method).label)
    for method, style in (('kd', ':'), ('dist', '--')):
        if method in rows:
            ax.axhline(rows[method]['mean'], ls=style, color='grey',
                       label=f'{get(method).label} (no flow)')
    ax.set_xscale('log', base=2)
    ax.set_xticks(steps)
    ax.set_xticklabels([str(n) for n in steps])
    ax.set_xlabel('inference steps N')
    ax.set_ylabel('top-1 (%)')
    ax.set_title(f'{pair}: accuracy vs N')
    ax.grid(alpha=0.3)


def steps_plot(path: str, summary: dict) -> str:
    """Flow-head accuracy against the inference steps N, per pair; returns ``path``."""
    plt = pyplot()
    pairs = list(summary['pairs'])
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.0 * len(pairs), 4.4), squeeze=False)
    for ax, pair in zip(axes[0], pairs):
        _steps_panel(ax, pair, summary['pairs'][pair]['rows'])
    # one legend below the panels, where it hides no curve
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc='lower center', ncol=3, fontsize=7)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
