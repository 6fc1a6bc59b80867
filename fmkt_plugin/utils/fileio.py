"""Atomic file writes: a file appears under its final name complete, or not at all.

Every writer here writes a hidden temporary file in the target's folder, flushes and fsyncs
it, then ``os.replace``-s it onto the target (atomic on POSIX within one file system). A
process killed mid-write leaves the previous file (or none) under the final name and at most a
``.<name>.tmp-<pid>-<token><ext>`` file next to it; an ordinary exception removes the
temporary file too. The temporary name keeps the target's extension, so writers that choose
the format by extension (``mmengine.Config.dump``) work unchanged. Each write first removes the
temporary files that killed writers left in its folder (those whose process is gone).
"""
import contextlib
import errno
import json
import os
import os.path as osp
import re
import secrets
from typing import IO, Any, Callable, Iterator, Optional, Union

__all__ = ['atomic_path', 'atomic_open', 'atomic_write', 'atomic_write_json', 'atomic_save',
           'remove_stale_temps']

PathLike = Union[str, 'os.PathLike[str]']


def _temp_name(path: str) -> str:
    folder, name = osp.split(path)
    ext = osp.splitext(name)[1]
    return osp.join(folder, f'.{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}{ext}')


#: ``.<name>.tmp-<pid>-<token><ext>``, as :func:`_temp_name` writes them
_TEMP = re.compile(r'^\..+\.tmp-(\d+)-[0-9a-f]{8}')


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temps(folder: str) -> list:
    """Remove the temporary files of writers that were killed (their process is gone) from
    ``folder``; a live writer's file is left alone. Returns the paths removed."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP.match(name)
        if m and int(m[1]) != os.getpid() and not _process_alive(int(m[1])):
            try:
                os.unlink(osp.join(folder, name))
                removed.append(osp.join(folder, name))
            except OSError:  # already gone, or not ours to remove
                pass
    return removed


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: str) -> None:
    """Make the rename itself durable; best effort (not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[str]:
    """Yield a temporary path to write to; on success it replaces ``path`` atomically.

    For writers that take a path (``torch.save(obj, p)``, ``cfg.dump(p)``). Missing parent
    folders are created. If the block raises, the temporary file is removed and ``path`` is
    left as it was.

    Args:
        path: the final file name.

    Yields:
        A path in the same folder, with the same extension, that does not exist yet.
    """
    path = osp.abspath(os.fspath(path))
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    remove_stale_temps(folder)
    tmp = _temp_name(path)
    try:
        yield tmp
        if not osp.isfile(tmp):
            raise FileNotFoundError(f'atomic write of {path}: the writer did not create {tmp}')
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        if osp.lexists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            # Python names the temporary file (or nothing); the user needs the target and folder.
            raise OSError(exc.errno, f'{os.strerror(exc.errno)}: could not write {path} '
                          f'(free space in {folder}; the previous file, if any, is unchanged)'
                          ) from exc
        raise
    _fsync_dir(folder)


#: errors that mean the file system is full (EDQUOT: the user's quota is)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class _RecordingWriter:
    """A binary file for :func:`torch.save` that keeps the OSError of a failed write.

    torch's zip writer turns a failed write of a Python file into a bare ``RuntimeError``
    (``[enforce fail at inline_container.cc] unexpected pos ...``), which says neither that the
    disk is full nor which file; :func:`atomic_save` re-raises the recorded error instead.
    """

    def __init__(self, f: IO) -> None:
        self._f = f
        self.error: Optional[OSError] = None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._f.flush()


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = 'wb', **kwargs) -> Iterator[IO]:
    """``open(path, mode)`` for writing, atomically: the target changes only on success.

    Args:
        path: the final file name.
        mode: ``'w'`` / ``'wb'`` (``'x'`` and ``'a'`` make no sense for a fresh temporary file
            and are refused).
        **kwargs: passed to :func:`open` (``encoding``, ``newline``, ...).

    Yields:
        The open temporary file.
    """
    if mode not in ('w', 'wb', 'wt'):
        raise ValueError(f'atomic_open: mode must be "w", "wt" or "wb", got {mode!r}')
    with atomic_path(path) as tmp:
        # os.open with 0o666 so the umask applies, as it does for a plain open().
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write(path: PathLike, data: Union[bytes, str], encoding: str = 'utf-8') -> None:
    """Write ``data`` (bytes, or text in ``encoding``) to ``path`` atomically."""
    if isinstance(data, str):
        data = data.encode(encoding)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f'atomic_write: data must be bytes or str, got {type(data).__name__}')
    with atomic_open(path, 'wb') as f:
        f.write(data)


def atomic_write_json(path: PathLike, obj: Any, **dump_kwargs) -> None:
    """``json.dump(obj)`` to ``path`` atomically; ``dump_kwargs`` go to :func:`json.dump`."""
    with atomic_open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, **dump_kwargs)


def atomic_save(obj: Any,
                path: PathLike,
                saver: Optional[Callable[[Any, str], Any]] = None) -> None:
    """Save ``obj`` with ``saver(obj, temp_path)`` atomically.

    Without ``saver``, :func:`torch.save` writes into the open temporary file rather than to its
    path: given a path, torch names the zip's inner folder after the file, here the random
    temporary name, so the same object saved twice would give files with other digests.
    """
    if saver is None:
        import torch
        with atomic_open(path, 'wb') as f:
            writer = _RecordingWriter(f)
            try:
                torch.save(obj, writer)
            except RuntimeError as exc:
                if writer.error is None:
                    raise
                raise writer.error from exc
        return
    with atomic_path(path) as tmp:
        saver(obj, tmp)
