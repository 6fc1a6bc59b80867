"""Cached job records: a short stable key hashed from everything that decides a job's result,
and the job's record kept as JSON under that key, so that an interrupted benchmark resumes where
it stopped and a rerun only re-renders its report."""
import hashlib
import json
import os.path as osp
from typing import Optional, Sequence

from .files import read_json, write_json

__all__ = ['config_key', 'entry_path', 'load_record', 'save_record']


def config_key(*parts) -> str:
    """A short stable hash (12 hex digits) of json-able parts (configs, budgets, seeds);
    objects that are not json-able count by their ``str``."""
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def entry_path(cache_dir: str, group: str, name: str, key: str) -> str:
    """``<cache_dir>/<group>/<name>-<key>``: the stem of a job's cached files."""
    return osp.join(cache_dir, group, f'{name}-{key}')


def load_record(path: str, needs: Sequence[str] = ()) -> Optional[dict]:
    """The record stored at ``path`` with ``cached=True``, or None when there is none or a file
    it names under one of ``needs`` (e.g. its checkpoint) is gone."""
    record = read_json(path)
    if not record or not all(osp.isfile(record.get(k) or '') for k in needs):
        return None
    return dict(record, cached=True)


def save_record(path: str, record: dict) -> dict:
    """Store ``record`` at ``path`` (atomically) and return it with ``cached=False``."""
    write_json(path, {k: v for k, v in record.items() if k != 'cached'})
    return dict(record, cached=False)
