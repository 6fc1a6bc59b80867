"""The benchmarks' common floor (benchmarks/common): its place below both benchmarks, the cached
records and their key, provenance, the idx reader, the executor, markdown and the forest plot."""
import ast
import gzip
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch

from benchmarks.common import executor, provenance, rendering, store
from benchmarks.common.eta import Progress, SpeedBook
from benchmarks.common.fmnist import read_idx
from benchmarks.common.stats import paired_stats

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _imports(path: str, package: str) -> set:
    """Every module ``path`` imports, inside functions too, relative imports resolved."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')[:len(package.split('.')) - (node.level - 1)]
                out.add('.'.join(base + ([node.module] if node.module else [])))
            else:
                out.add(node.module)
    return out


def _package_imports(folder: str = '') -> dict:
    """``{file: the benchmarks modules it imports}`` of ``benchmarks/<folder>/*.py``."""
    package = 'benchmarks' + (f'.{folder}' if folder else '')
    root = osp.join(REPO, 'benchmarks', folder)
    return {name: {m for m in _imports(osp.join(root, name), package)
                   if m == 'benchmarks' or m.startswith('benchmarks.')}
            for name in sorted(os.listdir(root)) if name.endswith('.py')}


def _outside(folder: str, allowed: tuple) -> dict:
    return {name: sorted(m for m in mods if not m.startswith(allowed))
            for name, mods in _package_imports(folder).items()}


def test_layers_import_only_downward():
    """common imports nothing above it; classification, detection and overhead only common and
    themselves; the only module at the top of benchmarks/ besides the package is the app on top
    (run.py), which imports classification and overhead."""
    common = _outside('common', ('benchmarks.common', ))
    assert not any(common.values()), common
    for folder in ('classification', 'detection', 'overhead'):
        outside = _outside(folder, ('benchmarks.common', f'benchmarks.{folder}'))
        assert not any(outside.values()), (folder, outside)
    assert set(_package_imports()) == {'__init__.py', 'run.py'}
    assert {m.split('.')[1] for m in _package_imports()['run.py']} == {
        'classification', 'common', 'overhead'}


# ------------------------------------------------------------------------------------------
# cached records
# ------------------------------------------------------------------------------------------
def test_config_key_is_stable_and_order_free():
    # the classification benchmark's cached teachers and runs are stored under this key
    assert store.config_key('teacher', {'a': 1, 'b': [1, 2]}, 3) == '0222914c5f8a'
    assert store.config_key({'b': [1, 2], 'a': 1}) == store.config_key({'a': 1, 'b': [1, 2]})
    assert store.config_key(1) != store.config_key('1')


def test_records_are_cached_while_their_files_exist(tmp_path):
    base = store.entry_path(str(tmp_path), 'runs', 'kd-s0', store.config_key('kd', 0))
    ckpt = base + '.pth'
    assert store.load_record(base + '.json') is None
    saved = store.save_record(base + '.json', dict(top1=90.0, ckpt=ckpt, cached=True))
    assert saved['cached'] is False
    assert 'cached' not in json.load(open(base + '.json'))
    assert store.load_record(base + '.json', needs=('ckpt', )) is None  # no checkpoint yet
    torch.save({}, ckpt)  # a whole (zip) torch file: an empty one reads as truncated
    assert store.load_record(base + '.json', needs=('ckpt', )) == dict(top1=90.0, ckpt=ckpt,
                                                                       cached=True)


# ------------------------------------------------------------------------------------------
# provenance and data
# ------------------------------------------------------------------------------------------
def test_simd_level_reads_the_cpu_flags():
    assert provenance.simd_level({'flags': 'fpu sse4_2 avx avx2 avx512f'}) == 'AVX-512'
    assert provenance.simd_level({'flags': 'fpu sse4_2 avx avx2 fma'}) == 'AVX2'
    assert provenance.simd_level({'Features': 'fp asimd sve'}) == 'SVE'
    assert provenance.cpu_model({'model name': 'Some CPU 9000'}) == 'Some CPU 9000'
    machine = provenance.machine('cpu')
    assert machine['cpu'] and machine['simd'] and machine['cores'] >= 1
    assert machine['gpu'] is None
    assert machine['torch_cpu'] == torch.backends.cpu.get_cpu_capability()


def test_machine_records_the_variables_that_pin_the_kernels(monkeypatch):
    monkeypatch.setenv('MKL_CBWR', 'AVX2')
    monkeypatch.delenv('ONEDNN_MAX_CPU_ISA', raising=False)
    assert provenance.machine('cpu')['numerics_env'].get('MKL_CBWR') == 'AVX2'
    assert 'ONEDNN_MAX_CPU_ISA' not in provenance.machine('cpu')['numerics_env']


def test_machine_text_names_the_cpu_and_what_narrows_its_kernels():
    cpu = dict(cpu='Xeon', simd='AVX-512', torch_cpu='AVX512', numerics_env={}, gpu=None)
    assert provenance.machine_text(dict(device='cpu', machine=cpu)) == 'cpu: Xeon, AVX-512'
    capped = dict(cpu, torch_cpu='AVX2', numerics_env={'ATEN_CPU_CAPABILITY': 'avx2'})
    assert provenance.machine_text(dict(device='cpu', machine=capped)) == \
        'cpu: Xeon, AVX-512 (torch kernels AVX2), ATEN_CPU_CAPABILITY=avx2'
    gpu = dict(cpu, gpu='NVIDIA H100')
    assert provenance.machine_text(dict(device='cuda', machine=gpu)) == 'cuda, NVIDIA H100'
    assert provenance.machine_text(dict(device='cpu')) == 'cpu'  # files made before the record
    # the overhead table names its CPU the same way
    from benchmarks.overhead.report import overhead_markdown
    table = overhead_markdown(dict(setting='s', repeats=1, ratios=[], machine=capped))
    assert table.startswith(f'**Overhead** (s; {provenance.cpu_text(capped)}; medians of 1')


def test_run_facts_and_portable_paths(tmp_path):
    cache = str(tmp_path / 'cache')
    facts = provenance.run_facts('cpu', 0.0, 'benchmarks.run', ['--out', cache])
    assert facts['command'] == f'python -m benchmarks.run --out {cache}'
    assert facts['machine']['cpu'] and facts['software']['torch'] == facts['torch']
    out = provenance.portable(dict(a=[osp.join(cache, 'x.pth')], b=facts['command'],
                                   c=str(tmp_path / 'other'), d=cache), {'cache': cache})
    assert out == dict(a=['cache/x.pth'], b='python -m benchmarks.run --out cache',
                       c=str(tmp_path / 'other'), d='cache')


def test_read_idx(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / 'x-idx3-ubyte'
    path.write_bytes(b'\x00\x00\x08\x03' + b''.join(d.to_bytes(4, 'big') for d in (2, 3, 4))
                     + images.tobytes())
    assert np.array_equal(read_idx(str(path)), images)
    path.write_bytes(gzip.compress(b'not idx'))
    with pytest.raises(ValueError, match='not an idx file'):
        read_idx(str(path))


# ------------------------------------------------------------------------------------------
# executor, markdown, plots
# ------------------------------------------------------------------------------------------
def _run_job(job: dict, queue) -> dict:
    queue.put((job['id'], f'{job["id"]} working'))
    return dict(value=job['id'] + ''.join(job.get('inputs', [])), train_time_s=1.0)


def test_executor_runs_dependencies_first(capsys):
    jobs = [dict(id='b', after=['a'], cost=1.0, kind='run', method='m'),
            dict(id='a', after=[], cost=1.0, kind='run', method='m')]

    def attach(job, results):
        return dict(job, inputs=[results[d]['value'] for d in job['after']])

    progress = Progress(jobs, 1, SpeedBook(None, 'test', 'cpu', defaults={}))
    results = executor.execute(jobs, 1, progress, _run_job, attach,
                               lambda job, record: f'{job["id"]} -> {record["value"]}')
    assert results['b']['value'] == 'ba'
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith('ETA ?] start a') and lines[-1].endswith('2/2 done | ETA 0m00s] '
                                                                      'b -> ba')
    with pytest.raises(RuntimeError, match='unmet dependencies'):
        executor.execute([dict(jobs[0], after=['x'])], 1, progress, _run_job, attach, str)


def test_markdown_pieces():
    assert rendering.table(['a', 'b'], [[1, 'x']]) == ['| a | b |', '|---|---|', '| 1 | x |']
    stats = paired_stats({0: 1.0, 1: 2.0, 2: 1.5}, {0: 0.5, 1: 1.0, 2: 1.0})
    assert rendering.diff_text(stats) == (f'{stats["mean"]:+.2f} [{stats["low"]:+.2f}, '
                                          f'{stats["high"]:+.2f}]')
    one = paired_stats({0: 1.0}, {0: 0.5})
    assert rendering.interval_text(one) == 'n/a'
    assert rendering.diff_text(one) == '+0.50 (one seed: no interval)'


def test_forest_plot_draws_one_row_per_comparison(tmp_path):
    from benchmarks.common.plots import forest, forest_plot, pyplot
    a = {0: 90.0, 1: 91.0, 2: 90.5}
    b = {0: 89.5, 1: 90.4, 2: 90.9}
    rows = [dict(paired_stats(a, b), label='wide: FM-KT vs KD'),
            dict(paired_stats(b, a), label='deep: FM-KT vs KD', color='grey'),
            dict(paired_stats({0: 1.0}, {0: 0.0}), label='one seed'),
            dict(paired_stats(a, b), label='pooled: FM-KT vs KD', pooled=True)]
    path = forest_plot(str(tmp_path / 'plots' / 'forest.png'), rows, title='paired')
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    plt = pyplot()
    fig, ax = plt.subplots()
    forest(ax, rows)
    ticks = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())),
                   reverse=True)
    assert [label for _, label in ticks] == [r['label'] for r in rows]  # first row on top
    assert len(ax.containers) == 3  # an interval for each row with two or more seeds
    assert any(line.get_xdata()[0] == 0 for line in ax.get_lines())  # zero marked
    plt.close(fig)


def test_a_damaged_cache_entry_is_named_dropped_and_run_again(tmp_path):
    """A truncated run record, or a truncated checkpoint it needs, gave a bare JSONDecodeError
    or 'PytorchStreamReader failed' on every later run; now each is named in a warning, removed,
    and the lookup misses (so the job runs again)."""
    load_record = store.load_record
    ckpt = tmp_path / 'teacher.pth'
    torch.save({'w': torch.ones(1000)}, ckpt)
    record = tmp_path / 'teacher.json'
    record.write_text(json.dumps({'ckpt': str(ckpt), 'top1': 90.0}))
    assert load_record(str(record), needs=('ckpt', ))['cached'] is True

    ckpt.write_bytes(ckpt.read_bytes()[:-100])  # cut short: no zip directory at the end
    with pytest.warns(UserWarning, match=r'teacher\.pth \(the ckpt of .*teacher\.json\) is '
                      'truncated; dropped, its job runs again'):
        assert load_record(str(record), needs=('ckpt', )) is None
    assert not ckpt.exists()

    record.write_text('{"ckpt": "/x", "to')
    with pytest.warns(UserWarning, match=r'teacher\.json is not a readable run record'):
        assert load_record(str(record)) is None
    assert not record.exists() and load_record(str(record)) is None


@pytest.mark.slow
def test_a_decompressed_fashion_mnist_file_changed_in_place_is_replaced(tmp_path):
    """Same size, other bytes: it was trained on without a word; now it is decompressed again
    from the package (with a warning) and its digest is Fashion-MNIST's."""
    from benchmarks.common.fmnist import IDX_BYTES, IDX_SHA256, PACKAGE_DIR, prepare_fashion_mnist
    if not all(osp.isfile(osp.join(PACKAGE_DIR, n + '.gz')) for n in IDX_BYTES):
        pytest.fail(f'Fashion-MNIST is not installed in {PACKAGE_DIR}: run scripts/bootstrap.sh')
    root = prepare_fashion_mnist(str(tmp_path))
    labels = osp.join(root, 't10k-labels-idx1-ubyte')
    with open(labels, 'r+b') as f:  # one label changed, size kept
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([(byte[0] + 1) % 10]))
    with pytest.warns(UserWarning, match='t10k-labels-idx1-ubyte was changed since it was '
                      'decompressed'):
        prepare_fashion_mnist(str(tmp_path))
    assert provenance.file_sha256(labels) == IDX_SHA256['t10k-labels-idx1-ubyte']


def test_a_moved_cache_is_still_used(tmp_path):
    """Records held absolute paths: a cache moved elsewhere missed every entry and retrained the
    teachers. Paths inside the cache are stored relative to the record's folder."""
    import shutil
    cache = tmp_path / 'cache'
    base = store.entry_path(str(cache), 'runs', 'kd-s0', 'k')
    os.makedirs(osp.dirname(base))
    torch.save({}, base + '.pth')
    store.save_record(base + '.json', dict(top1=1.0, ckpt=base + '.pth',
                                           export=dict(config=base + '.pth'), data='/elsewhere'))
    with open(base + '.json') as f:
        assert json.load(f)['ckpt'] == 'kd-s0-k.pth'
    shutil.move(str(cache), str(tmp_path / 'moved'))
    moved = str(tmp_path / 'moved' / 'runs' / 'kd-s0-k')
    record = store.load_record(moved + '.json', needs=('ckpt', ))
    assert record == dict(top1=1.0, ckpt=moved + '.pth', export=dict(config=moved + '.pth'),
                          data='/elsewhere', cached=True)
