"""fmkt_plugin.utils.fileio: writes that never leave a partial file under the final name."""
import errno
import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from fmkt_plugin.utils import fileio
from fmkt_plugin.utils.fileio import (
    atomic_open,
    atomic_path,
    atomic_save,
    atomic_write,
    atomic_write_json,
)


def test_atomic_write_bytes_text_and_overwrite(tmp_path):
    path = tmp_path / 'sub' / 'a.txt'
    atomic_write(path, b'one')
    assert path.read_bytes() == b'one'
    atomic_write(str(path), 'twö')
    assert path.read_text(encoding='utf-8') == 'twö'
    assert os.listdir(path.parent) == ['a.txt']
    with pytest.raises(TypeError, match='bytes or str'):
        atomic_write(path, 3)
    assert path.read_text(encoding='utf-8') == 'twö'


def test_atomic_write_respects_umask(tmp_path):
    path = tmp_path / 'perm.bin'
    old = os.umask(0o022)
    try:
        atomic_write(path, b'x')
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_previous_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / 'r.json'
    atomic_write_json(path, {'a': 1})
    with pytest.raises(RuntimeError, match='boom'):
        with atomic_open(path, 'w') as f:
            f.write('{"a": 2, ')
            raise RuntimeError('boom')
    assert json.loads(path.read_text()) == {'a': 1}
    with pytest.raises(TypeError):  # json cannot encode an object: nothing half-written
        atomic_write_json(path, {'a': object()})
    assert json.loads(path.read_text()) == {'a': 1}
    assert os.listdir(tmp_path) == ['r.json']


def test_atomic_path_keeps_extension_and_requires_the_file(tmp_path):
    from mmengine.config import Config
    cfg_path = tmp_path / 'student.py'
    with atomic_path(cfg_path) as tmp:
        assert tmp.endswith('.py') and os.path.basename(tmp).startswith('.student.py.tmp-')
        assert os.path.dirname(tmp) == str(tmp_path)
        Config(dict(a=1)).dump(tmp)  # Config.dump picks the format from the extension
    assert Config.fromfile(str(cfg_path)).a == 1
    with pytest.raises(FileNotFoundError, match='did not create'):
        with atomic_path(tmp_path / 'never.pth'):
            pass
    assert sorted(os.listdir(tmp_path)) == ['student.py']


def test_atomic_save_torch_round_trip(tmp_path):
    path = tmp_path / 'w.pth'
    atomic_save({'w': torch.arange(3)}, path)
    assert torch.equal(torch.load(path, weights_only=True)['w'], torch.arange(3))
    with pytest.raises(ValueError, match='mode'):
        with atomic_open(path, 'a'):
            pass


def _write_past_a_4k_file_limit(path, on_sigxfsz: str, write: str):
    """Run ``write`` in a child process whose files may not grow past 4 KiB (RLIMIT_FSIZE);
    ``on_sigxfsz``: SIG_DFL kills the child, SIG_IGN makes the write fail with EFBIG. The child
    loads the module file alone (no package import), so it starts in a fraction of a second."""
    code = (
        'import importlib.util, resource, signal, sys\n'
        'spec = importlib.util.spec_from_file_location("fileio", sys.argv[2])\n'
        'fileio = importlib.util.module_from_spec(spec)\n'
        'spec.loader.exec_module(fileio)\n'
        'hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]\n'
        'resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 12, hard))\n'
        f'signal.signal(signal.SIGXFSZ, signal.{on_sigxfsz})\n'
        f'{write}\n')
    return subprocess.run([sys.executable, '-c', code, str(path), fileio.__file__], timeout=120,
                          capture_output=True, text=True)


def test_killed_writer_leaves_previous_file(tmp_path):
    """A process killed mid-write (file-size limit) leaves the old complete file in place."""
    path = tmp_path / 'big.bin'
    path.write_bytes(b'old')
    out = _write_past_a_4k_file_limit(path, 'SIG_DFL', 'fileio.atomic_write(sys.argv[1], '
                                      'b"x" * (1 << 16))')
    assert out.returncode == -signal.SIGXFSZ, out.stderr[-2000:]
    assert path.read_bytes() == b'old'
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != path.name]
    assert len(leftovers) == 1 and leftovers[0].startswith('.big.bin.tmp-')
    # the next write in the folder, of any file, removes the dead writer's temporary file
    live = tmp_path / f'.other.pth.tmp-{os.getpid()}-0123abcd.pth'  # a writer still running
    live.write_bytes(b'')
    atomic_write(tmp_path / 'next.txt', b'new')
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(['big.bin', 'next.txt', live.name])


def test_atomic_save_gives_the_same_bytes_for_the_same_object(tmp_path):
    """torch names the zip's inner folder after the file it is given: saved through the open
    temporary file, the digest does not depend on the random temporary name."""
    state = {'w': torch.arange(6.).reshape(2, 3)}
    atomic_save(state, tmp_path / 'a.pth')
    atomic_save(state, tmp_path / 'a.pth')
    first = (tmp_path / 'a.pth').read_bytes()
    atomic_save(state, tmp_path / 'b.pth')
    assert first == (tmp_path / 'b.pth').read_bytes()
    assert torch.equal(torch.load(tmp_path / 'b.pth', weights_only=True)['w'], state['w'])


class _FullDisk:
    """A binary file on a disk that fills after ``room`` bytes (what ``/dev/full`` does at 0)."""

    def __init__(self, f, room):
        self._f, self._room = f, room

    def write(self, data):
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


@pytest.mark.parametrize('writer', ['torch', 'json', 'benchmark'])
def test_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch, writer):
    """torch's zip writer reports a failed write as ``unexpected pos 704 vs 598``; the user gets
    "No space left on device" with the target's path, the old file intact, no temporary left."""
    from benchmarks.common.files import save_tensor
    target = tmp_path / ('t.json' if writer == 'json' else 't.pth')
    target.write_bytes(b'old')
    real_fdopen = os.fdopen
    monkeypatch.setattr(fileio.os, 'fdopen', lambda *a, **k: _FullDisk(real_fdopen(*a, **k), 300))
    write = {'torch': lambda: atomic_save({'w': torch.randn(1000)}, target),
             'json': lambda: atomic_write_json(target, list(range(1000))),
             'benchmark': lambda: save_tensor(str(target), torch.randn(1000))}[writer]
    with pytest.raises(OSError, match='No space left on device') as info:
        write()
    assert info.value.errno == errno.ENOSPC and str(target) in str(info.value)
    assert target.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def test_file_size_limit_during_torch_save_is_named(tmp_path):
    """A real failing write (RLIMIT_FSIZE with SIGXFSZ ignored gives EFBIG) inside torch.save
    reaches the user as the OS error with the path, not as torch's ``unexpected pos``."""
    path = tmp_path / 'big.pth'
    out = _write_past_a_4k_file_limit(path, 'SIG_IGN', 'import torch; fileio.atomic_save('
                                      '{"w": torch.zeros(1 << 16)}, sys.argv[1])')
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith('OSError: [Errno 27]') and f'could not write {path}' in last, last
    assert 'unexpected pos' not in last
    assert list(tmp_path.iterdir()) == []
