"""Checks of checkpoint files before a tool hands them to mmengine, with errors naming the file.

mmengine loads a checkpoint for evaluation with ``strict=False`` (a checkpoint of another model
only logs the missing keys, and the evaluation runs on random weights) and resumes from any
file it can unpickle (an empty file is an ``EOFError``, a teacher or an exported student a
``KeyError: 'epoch'``). These checks run first and say what is wrong in terms of the files.
"""
import os.path as osp
import re
from typing import Optional

import torch
from torch import nn

from ..utils.checkpoint import checkpoint_state_dict, load_checkpoint, resolve_last_checkpoint

__all__ = ['load_checkpoint_file', 'check_resume_checkpoint', 'check_checkpoint_fits',
           'latest_checkpoint']

#: the plugin's one checkpoint loader, under the name this module has always exported
load_checkpoint_file = load_checkpoint


def check_resume_checkpoint(path: str, field: str = '--resume') -> None:
    """Check that ``path`` is a training checkpoint ``--resume`` can continue from.

    Args:
        path: the checkpoint file or URL.
        field: how it is named in the error (``--resume``, or where ``--resume`` found it).

    Raises:
        FileNotFoundError / ValueError / RuntimeError: naming ``field`` and the file, for a
            missing, empty or unreadable (refused) file, and for a checkpoint without training
            state (a teacher, an exported student, a plain model: no
            ``meta.epoch``/``meta.iter``).
    """
    ckpt = load_checkpoint(path, field)
    checkpoint_state_dict(ckpt, path, field)
    meta = ckpt.get('meta')
    hint = ('To start a new run from its weights, pass it as load_from '
            '(--cfg-options load_from=...) instead')
    if isinstance(meta, dict) and 'fmkt_export' in meta:
        raise ValueError(f'{field}: {path} is an exported student, not a training checkpoint. '
                         f'{hint}')
    if (not isinstance(meta, dict) or 'epoch' not in meta or 'iter' not in meta
            or 'message_hub' not in ckpt):
        raise ValueError(
            f'{field}: {path} is not a training checkpoint (no meta.epoch/meta.iter/message_hub: '
            f'a teacher, an exported student or a plain model checkpoint?). {hint}')


def latest_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint ``--resume`` (auto) continues from: what ``work_dir/last_checkpoint`` names.

    Read as mmengine's ``find_latest_checkpoint`` reads it, without its log line.

    Returns:
        The path or URL, or ``None`` when there is no ``last_checkpoint`` (a fresh run).

    Raises:
        ValueError: ``last_checkpoint`` is empty (mmengine would try to load ``''``).
    """
    path = resolve_last_checkpoint(work_dir)
    if path == '':
        record = osp.join(work_dir, 'last_checkpoint')
        raise ValueError(f'--resume: {record} is empty; it should name the checkpoint to resume '
                         'from (or remove it to start a new run)')
    return path


def _revise(key: str) -> str:
    return re.sub(r'^module\.', '', key)  # as mmengine's Runner.load_checkpoint


def check_checkpoint_fits(model: nn.Module, path: str, config: Optional[str] = None,
                          field: str = 'checkpoint') -> None:
    """Check that ``path`` holds exactly the weights of ``model``: same keys, same shapes.

    Args:
        model: the model built from ``config`` (a model wrapper is unwrapped).
        path: checkpoint file or URL.
        config: the config file, named in the error.
        field: how the checkpoint is named in the error.

    Raises:
        ValueError: naming both files, with the missing, unexpected and mis-shaped keys.
    """
    model = getattr(model, 'module', model)
    ckpt = load_checkpoint(path, field)
    state = {_revise(k): v for k, v in checkpoint_state_dict(ckpt, path, field).items()}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f'{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}' for k, v in expected.items()
              if k in state and torch.is_tensor(state[k]) and state[k].shape != v.shape]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for name, items in (('missing', missing), ('unexpected', unexpected),
                        ('with another shape', shapes)):
        if items:
            more = f', ... ({len(items)} in all)' if len(items) > 5 else ''
            parts.append(f'{name}: {", ".join(items[:5])}{more}')
    of_config = f' of {config}' if config else ''
    raise ValueError(
        f'{field}: {path} does not fit the model{of_config} ({"; ".join(parts)}). A '
        'distillation checkpoint is evaluated with its distillation config, an exported student '
        'with its student_config.py')
