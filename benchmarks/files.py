"""Atomic file writes of the benchmark (a killed run never leaves a half-written file)."""
import json
import os
import os.path as osp

import torch

from fmkt_plugin.utils.fileio import atomic_save, atomic_write

__all__ = ['write_json', 'write_text', 'read_json', 'save_tensor']


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed onto it."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    atomic_write(path, text)


def write_json(path: str, obj) -> None:
    """Write ``obj`` as indented JSON (numbers that are not floats, e.g. numpy, as float)."""
    write_text(path, json.dumps(obj, indent=1, default=float) + '\n')


def read_json(path: str):
    """The JSON content of ``path``, or None when there is no such file."""
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def save_tensor(path: str, obj) -> None:
    """``torch.save`` through a temporary file renamed onto ``path``."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    atomic_save(obj, path, torch.save)
