"""Cached job records: a short stable key hashed from everything that decides a job's result,
and the job's record kept as JSON under that key, so that an interrupted benchmark resumes where
it stopped and a rerun only re-renders its report."""
import hashlib
import json
import os
import os.path as osp
import warnings
import zipfile
from typing import Optional, Sequence

from .files import read_json, write_json

__all__ = ['config_key', 'entry_path', 'load_record', 'save_record', 'intact']


def config_key(*parts) -> str:
    """A short stable hash (12 hex digits) of json-able parts (configs, budgets, seeds);
    objects that are not json-able count by their ``str``."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def entry_path(cache_dir: str, group: str, name: str, key: str) -> str:
    """``<cache_dir>/<group>/<name>-<key>``: the stem of a job's cached files."""
    return osp.join(cache_dir, group, f'{name}-{key}')


def intact(path: str) -> bool:
    """Whether ``path`` is a file, and for a torch file (``.pt``/``.pth``) a whole zip archive:
    a save cut short (killed, disk full before the atomic writer existed) lacks the archive's
    directory at its end."""
    if not osp.isfile(path):
        return False
    return not path.endswith(('.pt', '.pth')) or zipfile.is_zipfile(path)


def _drop(path: str, why: str) -> None:
    warnings.warn(f'benchmark cache: {path} {why}; dropped, its job runs again', stacklevel=3)
    os.remove(path)


#: the record's field listing its paths stored relative to the record's folder
_RELATIVE = '_relative_paths'


def _cache_root(record_path: str) -> str:
    """``<cache_dir>``, two levels above a record (``<cache_dir>/<group>/<name>.json``): the paths
    inside it are stored relative, so that the cache can move."""
    return osp.dirname(osp.dirname(osp.abspath(record_path)))


def _walk(record: dict, prefix: str = ''):
    for key, value in record.items():
        if isinstance(value, dict):
            yield from _walk(value, f'{prefix}{key}.')
        else:
            yield f'{prefix}{key}', value


def _set(record: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split('.')
    for key in parents:
        record = record[key]
    record[leaf] = value


def _relative(record: dict, record_path: str) -> dict:
    """A copy of ``record`` whose absolute paths inside the cache are relative to the record's
    folder, with the keys listed under ``_relative_paths``."""
    import copy
    folder, root = osp.dirname(osp.abspath(record_path)), _cache_root(record_path) + os.sep
    paths = {k: v for k, v in _walk(record)
             if isinstance(v, str) and osp.isabs(v) and v.startswith(root)}
    out = copy.deepcopy(record)
    for key, value in paths.items():
        _set(out, key, osp.relpath(value, folder))
    if paths:
        out[_RELATIVE] = list(paths)
    return out


def _absolute(record: dict, record_path: str) -> dict:
    folder = osp.dirname(osp.abspath(record_path))
    values = dict(_walk(record))
    for key in record.pop(_RELATIVE, []):
        _set(record, key, osp.normpath(osp.join(folder, values[key])))
    return record


def load_record(path: str, needs: Sequence[str] = ()) -> Optional[dict]:
    """The record stored at ``path`` with ``cached=True``, or None when there is none or a file
    it names under one of ``needs`` (e.g. its checkpoint) is gone. A damaged record, or a
    damaged file it needs, is named in a warning and removed, so that its job runs again."""
    try:
        record = read_json(path)
    except (ValueError, UnicodeDecodeError) as err:  # json's decode error is a ValueError
        _drop(path, f'is not a readable run record ({type(err).__name__}: {err})')
        return None
    if not record:
        return None
    record = _absolute(record, path)
    for key in needs:
        file = record.get(key) or ''
        if not osp.isfile(file):
            return None
        if not intact(file):
            _drop(file, f'(the {key} of {path}) is truncated')
            return None
    return dict(record, cached=True)


def save_record(path: str, record: dict) -> dict:
    """Store ``record`` at ``path`` (atomically) and return it with ``cached=False``. Paths inside
    the cache are stored relative to the record's folder, so a moved cache is still used."""
    write_json(path, _relative({k: v for k, v in record.items() if k != 'cached'}, path))
    return dict(record, cached=False)
