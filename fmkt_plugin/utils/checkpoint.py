"""Loading a checkpoint file: the one loader of the teacher, the tools and the converter.

Every load unpickles with ``weights_only=True`` (a checkpoint may hold tensors, plain
containers, numbers and the metadata mmengine writes, nothing that runs code), and every failure
names the field the file came from (``teacher_ckpt``, ``--resume``, ``checkpoint``) and the file.
A file the restricted unpickler refuses gets the refusal every loader gives
(:func:`fmkt_plugin.utils.checkpoint_refusal.refusal_message`).
"""
import os.path as osp
import pickle
from typing import Dict, Optional

import torch

from .checkpoint_refusal import as_refusal

__all__ = ['load_checkpoint', 'load_torch_file', 'resolve_last_checkpoint',
           'checkpoint_load_error', 'checkpoint_state_dict', 'check_finite_weights']


def resolve_last_checkpoint(work_dir: str) -> Optional[str]:
    """What ``<work_dir>/last_checkpoint`` names: ``None`` without the file, ``''`` when it is
    empty, a local path relative to ``work_dir`` joined to it (fmkt writes it relative, so a moved
    work dir still resumes; compat Fix 7), an absolute path or a URL as written."""
    record = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(record):
        return None
    with open(record) as f:
        path = f.read().strip()
    if path and '://' not in path and not osp.isabs(path):
        path = osp.join(work_dir, path)
    return path


def load_checkpoint(path: str,
                    field: str,
                    *,
                    allow_remote: bool = True,
                    finite: Optional[str] = None) -> dict:
    """Load a checkpoint dict (local file or URL) with the restricted unpickler.

    Local files are memory-mapped when they are in torch's zip format, so a check costs little
    even for a large checkpoint; URLs (and mmengine's other prefixes, ``open-mmlab://`` ...) go
    through mmengine's loader, which the compat fixes restrict to ``weights_only=True`` as well.

    Args:
        path: the file or URL.
        field: how the checkpoint is named in errors (``'teacher_ckpt'``, ``'--resume'``, ...).
        allow_remote: accept a URL; ``False`` treats it as a missing local file.
        finite: when set, the state dict must hold no NaN/inf values; the text says what the
            weights are (e.g. ``"the teacher's weights"``), for the message.

    Returns:
        The checkpoint dict as saved (its ``state_dict`` entry is not unwrapped).

    Raises:
        FileNotFoundError: no such local file.
        ValueError: an empty file, not a checkpoint dict, or (with ``finite``) a bad or
            non-finite state dict.
        RuntimeError: a file that cannot be unpickled (truncated, corrupted, or refused),
            from :func:`checkpoint_load_error`.
    """
    if allow_remote and '://' in path:
        try:
            from mmengine.runner.checkpoint import _load_checkpoint
            ckpt = _load_checkpoint(path, map_location='cpu')
        except Exception as err:  # refused by the restricted unpickler, or unreachable
            raise checkpoint_load_error(field, path, err)
    else:
        ckpt = load_torch_file(path, field)
    if not isinstance(ckpt, dict):
        raise ValueError(f'{field}: {path} holds a {type(ckpt).__name__}, not a checkpoint dict')
    if finite is not None:
        check_finite_weights(checkpoint_state_dict(ckpt, path, field), field, path, finite)
    return ckpt


def load_torch_file(path: str, field: str, mmap: bool = True):
    """Load a local file written by ``torch.save`` (a checkpoint, or cached tensors) with the
    restricted unpickler, memory-mapped when it is in torch's zip format and ``mmap``.

    Args:
        path: the local file.
        field: how the file is named in errors.
        mmap: memory-map the file (zip format only; a legacy pickle is read).

    Returns:
        What was saved (tensors, or containers of them).

    Raises:
        FileNotFoundError: no such file.
        ValueError: an empty file, or one that is not a torch file.
        RuntimeError: a file that cannot be unpickled (truncated, corrupted, or refused),
            from :func:`checkpoint_load_error`.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{field}: checkpoint file not found: {path}')
    if osp.getsize(path) == 0:
        raise ValueError(f'{field}: {path} is empty (0 bytes), not a checkpoint')
    if not _looks_like_torch_file(path):
        raise ValueError(f"{field}: {path} is not a PyTorch checkpoint (neither torch.save's "
                         'zip archive nor a pickle; a text or image file?)')
    try:
        if mmap:
            try:
                return torch.load(path, map_location='cpu', weights_only=True, mmap=True)
            except RuntimeError:  # not zip format (legacy torch.save): no mmap
                pass
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # truncated, corrupted, or refused by the restricted unpickler
        raise checkpoint_load_error(field, path, err)


def _looks_like_torch_file(path: str) -> bool:
    """torch.save writes a zip archive (``PK``), or before torch 1.6 a pickle, whose first byte is
    the protocol opcode 0x80; anything else (a text file gave "KeyError: 101") is not one."""
    with open(path, 'rb') as f:
        head = f.read(2)
    return head == b'PK' or head[:1] == b'\x80'


def checkpoint_load_error(field: str, path: str, err: BaseException) -> RuntimeError:
    """The error for a checkpoint that did not load, naming ``field`` and ``path``.

    A file refused by the restricted unpickler gets the shared refusal (what was refused, and
    no advice to load with ``weights_only=False``); any other failure (truncated, corrupted) its
    type and first line. Raise the result inside the ``except`` block: its cause is set here,
    so torch's own text is not shown under it.

    Args:
        field: how the checkpoint is named (``'teacher_ckpt'``, ``'--resume'``, ...).
        path: the file or URL.
        err: the exception of the load.
    """
    if isinstance(err, pickle.UnpicklingError):
        refusal = as_refusal(path, err)
        error = RuntimeError(f'{field}: {refusal}')
        error.__cause__ = refusal  # also hides torch's error (the context) from the traceback
        return error
    first = (str(err).splitlines() or [''])[0]
    error = RuntimeError(f'{field}: cannot load {path}: {type(err).__name__}: {first}')
    error.__cause__ = err
    return error


def checkpoint_state_dict(ckpt, path: str, field: str) -> dict:
    """The state dict of a loaded checkpoint (``ckpt['state_dict']`` or ``ckpt`` itself).

    Raises:
        ValueError: naming ``field`` and ``path`` when it is not a dict of tensors (e.g.
            ``{'state_dict': [...]}``) or is empty.
    """
    if not isinstance(ckpt, dict):
        raise ValueError(f'{field}: {path} holds a {type(ckpt).__name__}, not a checkpoint dict')
    state = ckpt.get('state_dict', ckpt)
    if not isinstance(state, dict):
        raise ValueError(f'{field}: {path}: "state_dict" is a {type(state).__name__}, expected '
                         'a dict of tensors')
    not_tensors = [k for k, v in state.items() if not torch.is_tensor(v)]
    if not state or (not_tensors and 'state_dict' in ckpt):
        detail = 'is empty' if not state else f'has non-tensor entries {not_tensors[:3]}'
        raise ValueError(f'{field}: {path}: the state dict {detail}')
    return state


def check_finite_weights(state: Dict[str, torch.Tensor], field: str, path: str,
                         what: str = 'the weights') -> None:
    """Refuse a state dict with NaN/inf values in any floating-point tensor.

    One pass over the weights: a finiteness flag per tensor, stacked and read with a single
    host sync; the bad tensors are looked for only when that flag is false.

    Args:
        state: the state dict (non-tensor and integer entries are skipped).
        field: how the checkpoint is named in the error (``'teacher_ckpt'``).
        path: the file, named in the error.
        what: what the weights are, for the message.

    Raises:
        ValueError: naming ``field``, ``path`` and the first non-finite tensors.
    """
    floats = {k: v for k, v in state.items()
              if torch.is_tensor(v) and (v.is_floating_point() or v.is_complex()) and v.numel()}
    if not floats:
        return
    flags = torch.stack([torch.isfinite(v).all() for v in floats.values()])
    if bool(flags.all()):
        return
    bad = [k for k, ok in zip(floats, flags.tolist()) if not ok]
    more = f', ... ({len(bad)} tensors in all)' if len(bad) > 5 else ''
    raise ValueError(f'{field}: {what} in {path} are not finite (NaN/inf values in '
                     f'{", ".join(bad[:5])}{more}); the checkpoint is damaged, or was saved from '
                     'a run that diverged')
