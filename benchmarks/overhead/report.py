"""The overhead table as markdown."""
from ..common.provenance import cpu_text

__all__ = ['overhead_markdown']


def overhead_markdown(ov: dict) -> str:
    """Table of the overhead benchmark's ratios against their targets (and the throughput and
    peak memory of each train step when measured)."""
    where = ov.get('machine') or {}
    host = f'; {cpu_text(where)}' if where.get('cpu') else ''
    lines = [f'**Overhead** ({ov["setting"]}{host}; medians of {ov["repeats"]} repeats)', '',
             '| measurement | ratio | target | met |', '|---|---|---|---|']
    for item in ov['ratios']:
        met = '-' if item['target'] == 'analysis' else ('yes' if item['met'] else 'no')
        lines.append(f'| {item["name"]} | {item["ratio"]:.3f} | {item["target"]} | {met} |')
    if ov.get('throughput'):
        lines += ['', '| train step | images/s | peak memory (MiB) | GFLOP (matmul/conv) | '
                  'FLOPs / KD | ATen ops | ops / KD |', '|---|---|---|---|---|---|---|']
        for name, t in ov['throughput'].items():
            gflop = '-' if t.get('gflop') is None else f'{t["gflop"]:.1f}'
            rel = '-' if t.get('flops_vs_kd') is None else f'{t["flops_vs_kd"]:.3f}'
            ops = '-' if t.get('ops') is None else str(t['ops'])
            ops_rel = '-' if t.get('ops_vs_kd') is None else f'{t["ops_vs_kd"]:.3f}'
            lines.append(f'| {name} | {t["images_per_s"]:.1f} | {t["peak_mib"]:.0f} | {gflop} | '
                         f'{rel} | {ops} | {ops_rel} |')
    return '\n'.join(lines)
