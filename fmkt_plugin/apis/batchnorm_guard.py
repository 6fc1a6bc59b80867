"""Name the cause when a BatchNorm layer sees a single value per channel in training.

torch says only ``Expected more than 1 value per channel when training, got input size
torch.Size([1, 512, 1, 1])``, from deep inside a backbone, neck or meta-encoder. The cause is a
batch of one sample at a layer whose maps are 1x1 (or a pooled vector): a per-GPU
``train_dataloader.batch_size`` of 1, or the short last batch of an epoch. A batch of one is not
refused up front: on large maps BatchNorm normalises over the pixels and trains, and frozen
(eval-mode) BatchNorm layers, such as a detector's backbone, do not care.
"""
from typing import Optional

import torch
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ['guard_batchnorm_batches']


def _message(name: str, module: torch.nn.Module, shape, batch_size: Optional[int]) -> str:
    head = (f'{name} ({type(module).__name__}) got one value per channel in training (input '
            f'{tuple(shape)}): BatchNorm needs at least two, so a batch of {shape[0]} sample '
            'cannot train it. ')
    if batch_size == 1:
        return head + ('train_dataloader.batch_size is 1 per GPU: set it to 2 or more '
                       '(or use smaller strides / larger inputs so the maps stay larger than 1x1)')
    return head + (f'train_dataloader.batch_size is {batch_size} per GPU, so this is the short '
                   'last batch of an epoch (the dataset size leaves one sample per GPU): set '
                   'train_dataloader.drop_last=True, or change the batch size')


def guard_batchnorm_batches(model: torch.nn.Module, batch_size: Optional[int] = None) -> int:
    """Give every BatchNorm layer of ``model`` a check that raises a ``ValueError`` naming the
    layer, its input and the ``train_dataloader`` setting before torch's bare error.

    Args:
        model: the model to train (wrapped or not).
        batch_size: ``train_dataloader.batch_size`` of the config, for the message.

    Returns:
        The number of layers guarded.
    """
    count = 0
    for name, module in model.named_modules():
        if not isinstance(module, _BatchNorm):
            continue

        def check(mod, args, _name=name):
            x = args[0] if args else None
            # torch's own condition (F._verify_batch_size): one value per channel
            if mod.training and isinstance(x, torch.Tensor) and x.dim() >= 2 \
                    and x.numel() == x.shape[1]:
                raise ValueError(_message(_name, mod, x.shape, batch_size))

        module.register_forward_pre_hook(check)
        count += 1
    return count
