"""Figures shared by the benchmarks (matplotlib, Agg backend, written as PNG): bars of a score
per method with every seed as a dot, and forest plots of paired differences."""
import math
import os
import os.path as osp
from typing import Optional, Sequence

from .stats import mean_std

__all__ = ['pyplot', 'seed_bars', 'forest', 'forest_plot']

HIGHLIGHT = '#1f77b4'
MUTED = '#999999'


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def seed_bars(ax, labels: Sequence[str], values: Sequence[Sequence[float]],
              colors: Sequence[str], pad: float = 0.05) -> None:
    """One bar per label, of ``colors``: the mean +- std (error bar) of its per-seed
    ``values``, every seed as a dot and the mean written ``pad`` (data units) above."""
    xs = list(range(len(labels)))
    stats = [mean_std(list(v)) for v in values]
    ax.bar(xs, [m for m, _ in stats], yerr=[s for _, s in stats], color=list(colors),
           capsize=3, alpha=0.8)
    for x, vals, (mean, std) in zip(xs, values, stats):
        ax.scatter([x] * len(vals), list(vals), color='k', s=8, zorder=3)
        ax.text(x, mean + std + pad, f'{mean:.2f}', ha='center', va='bottom', fontsize=7)
    ax.set_xticks(xs)
    ax.set_xticklabels(list(labels), fontsize=7)
    ax.grid(axis='y', alpha=0.3)


def forest(ax, rows: Sequence[dict], xlabel: str = 'paired difference (points), 95% interval'
           ) -> None:
    """A forest plot: one row per comparison, top to bottom, its mean paired difference with
    its interval, the seeds' differences as dots, and zero marked.

    Args:
        ax: the axes.
        rows: ``dict(label, mean, low, high)`` (as :func:`~benchmarks.common.stats.paired_stats`
            gives them, plus ``label``), optionally ``diffs`` (dots), ``pooled`` (drawn as a
            diamond: a comparison pooled over pairs) and ``color``.
        xlabel: of the x axis.
    """
    ys = list(range(len(rows)))[::-1]
    for y, row in zip(ys, rows):
        color = row.get('color', HIGHLIGHT)
        marker = 'D' if row.get('pooled') else 'o'
        if math.isfinite(row['low']) and math.isfinite(row['high']):
            ax.errorbar([row['mean']], [y], xerr=[[row['mean'] - row['low']],
                                                  [row['high'] - row['mean']]],
                        fmt=marker, color=color, capsize=4)
        else:  # one seed: no interval
            ax.plot([row['mean']], [y], marker, color=color, mfc='none')
        diffs = row.get('diffs') or []
        ax.scatter(diffs, [y] * len(diffs), color='k', s=8, zorder=3)
    ax.axvline(0.0, color='k', lw=0.8)
    ax.set_yticks(ys)
    ax.set_yticklabels([r['label'] for r in rows], fontsize=8)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(xlabel)
    ax.grid(axis='x', alpha=0.3)


def forest_plot(path: str, rows: Sequence[dict], title: Optional[str] = None,
                xlabel: str = 'paired difference (points), 95% interval') -> str:
    """Write :func:`forest` of ``rows`` as a PNG to ``path``; returns ``path``."""
    plt = pyplot()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig, ax = plt.subplots(figsize=(7.0, 1.0 + 0.4 * max(1, len(rows))))
    forest(ax, rows, xlabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches='tight')  # the long row labels
    plt.close(fig)
    return path
