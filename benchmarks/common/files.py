"""Atomic file writes of the benchmarks (a killed run never leaves a half-written file), and the
repository's command-line tools as modules."""
import json
import os
import os.path as osp
from typing import Any, Optional

from fmkt_plugin.utils.fileio import atomic_save, atomic_write

__all__ = ['REPO', 'write_json', 'write_text', 'read_json', 'save_tensor']

#: the repository root (configs/, tools/ and benchmarks/ lie under it).
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file renamed onto it."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    atomic_write(path, text)


def _jsonable(obj: Any) -> Any:
    try:
        return float(obj)  # numpy and torch scalars
    except (TypeError, ValueError):
        return str(obj)


def write_json(path: str, obj: Any, indent: Optional[int] = 1) -> None:
    """Write ``obj`` as JSON (numbers that are not floats, e.g. numpy, as float; other objects
    that JSON has no form for as their ``str``).

    Args:
        path: the file.
        obj: a json-able object.
        indent: of the nesting levels; None writes one compact line.
    """
    text = json.dumps(obj, indent=indent, default=_jsonable)
    write_text(path, text + '\n' if indent is not None else text)


def read_json(path: str) -> Any:
    """The JSON content of ``path``, or None when there is no such file."""
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def save_tensor(path: str, obj: Any) -> None:
    """``torch.save`` through a temporary file renamed onto ``path``."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    atomic_save(obj, path)
