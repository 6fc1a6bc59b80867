"""Early, named checks shared by the FM-KT algorithms."""
import math
import os.path as osp
from typing import Dict

import torch
from torch import nn

__all__ = ['load_teacher_checkpoint', 'check_finite_losses']


def load_teacher_checkpoint(teacher: nn.Module, path: str) -> None:
    """Load ``path`` into ``teacher`` strictly, naming the file in every failure.

    MMRazor loads the teacher with ``strict=False``, so a checkpoint of another architecture
    only logs a warning and the student is distilled from a random teacher. Here a missing or
    unexpected key is an error.
    """
    from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model

    is_remote = '://' in path
    if not is_remote and not osp.isfile(path):
        raise FileNotFoundError(f'teacher_ckpt: checkpoint file not found: {path}')
    try:
        ckpt = _load_checkpoint(path, map_location='cpu')
    except Exception as err:  # truncated, corrupted, or refused by weights_only
        raise RuntimeError(f'teacher_ckpt: cannot load {path}: {type(err).__name__}: '
                           f'{str(err).splitlines()[0] if str(err) else ""}') from err
    if not isinstance(ckpt, dict):
        raise RuntimeError(f'teacher_ckpt: {path} does not hold a state dict')
    state = ckpt.get('state_dict', ckpt)
    try:
        _load_checkpoint_to_model(teacher, state, strict=True)
    except RuntimeError as err:
        raise RuntimeError(
            f'teacher_ckpt: {path} does not match the teacher architecture '
            f'(missing or unexpected keys):\n{err}') from err


def check_finite_losses(log_vars: Dict[str, float], loss: torch.Tensor) -> None:
    """Raise before the optimizer steps when the total or any logged loss is NaN/inf."""
    values = {k: float(v.detach()) if torch.is_tensor(v) else float(v)
              for k, v in log_vars.items() if 'loss' in k}
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad or not torch.isfinite(loss).all():
        detail = ', '.join(f'{k}={v}' for k, v in bad.items()) or f'loss={float(loss)}'
        raise FloatingPointError(
            f'non-finite loss ({detail}); the optimizer was not stepped. Check the inputs '
            '(NaN/inf pixels), the learning rate and the loss weights.')
