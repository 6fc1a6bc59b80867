"""Device selection, mixed precision and quiet logs of the benchmarks' training.

On CUDA, ``amp='fp16'`` / ``'bf16'`` trains through mmengine's ``AmpOptimWrapper`` (autocast in
``train_step``, dynamic loss scaling for fp16), as ``tools/train.py --amp`` does. On the CPU
autocast stays off: the plain ``OptimWrapper`` is built and the run is fp32 (mmengine's AMP
wrapper needs an accelerator, and bf16 on CPU is slower than fp32 for these small models).
"""
import copy
import logging
import os
import platform
from typing import Optional

import torch

__all__ = ['AMP_DTYPES', 'select_device', 'effective_amp', 'optim_wrapper_cfg', 'device_name',
           'quiet_logs']

#: ``--amp`` choices -> mmengine ``AmpOptimWrapper`` dtype.
AMP_DTYPES = {'fp16': 'float16', 'bf16': 'bfloat16'}


def select_device(requested: str = 'auto') -> str:
    """``'cuda'`` or ``'cpu'``: ``'auto'`` takes CUDA when there is a device.

    Raises:
        ValueError: ``'cuda'`` without a CUDA device, or an unknown name.
    """
    if requested == 'auto':
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if requested == 'cuda' and not torch.cuda.is_available():
        raise ValueError('--device cuda: no CUDA device is available (use --device cpu or auto)')
    if requested not in ('cpu', 'cuda'):
        raise ValueError(f'--device must be auto, cpu or cuda, got {requested!r}')
    return requested


def effective_amp(amp: Optional[str], device: str) -> Optional[str]:
    """The mixed precision that runs: ``amp`` on CUDA, None (fp32) on the CPU.

    Raises:
        ValueError: ``amp`` is not one of :data:`AMP_DTYPES`.
    """
    if amp is not None and amp not in AMP_DTYPES:
        raise ValueError(f'amp must be one of {sorted(AMP_DTYPES)} or None, got {amp!r}')
    return amp if device == 'cuda' else None


def optim_wrapper_cfg(optimizer: dict, device: str, amp: Optional[str] = None,
                      clip_grad: Optional[dict] = None) -> dict:
    """The mmengine optim-wrapper config of a training run.

    Args:
        optimizer: optimizer config.
        device: ``'cpu'`` or ``'cuda'``.
        amp: ``'fp16'``, ``'bf16'`` or None; ignored (fp32) on the CPU.
        clip_grad: gradient clipping config.
    """
    cfg = dict(type='OptimWrapper', optimizer=copy.deepcopy(optimizer))
    amp = effective_amp(amp, device)
    if amp is not None:
        cfg.update(type='AmpOptimWrapper', dtype=AMP_DTYPES[amp])
        if amp == 'fp16':
            cfg['loss_scale'] = 'dynamic'
    if clip_grad:
        cfg['clip_grad'] = copy.deepcopy(clip_grad)
    return cfg


def device_name(device: str) -> str:
    """A short name of the device: the GPU's name, or the CPU with its core count."""
    if device == 'cuda':
        return torch.cuda.get_device_name(0)
    return f'{os.cpu_count() or 1}-core CPU ({platform.processor() or platform.machine()})'


def quiet_logs() -> None:
    """Keep mmengine's INFO messages (weight-init listings) out of the benchmarks' output."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    logger.setLevel(logging.WARNING)
    for handler in logger.handlers:
        handler.setLevel(logging.WARNING)
