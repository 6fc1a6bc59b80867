"""Atomic file writes of the benchmark (a killed run never leaves a half-written file)."""
import json
import os
import os.path as osp

import torch

__all__ = ['write_json', 'write_text', 'read_json', 'save_tensor']


def _replace(path: str, write) -> None:
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    part = f'{path}.part-{os.getpid()}'
    try:
        write(part)
        os.replace(part, path)
    finally:
        if osp.exists(part):
            os.unlink(part)


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed onto it."""
    def write(part):
        with open(part, 'w') as f:
            f.write(text)
    _replace(path, write)


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
    _replace(path, lambda part: torch.save(obj, part))
