"""Moving small host tensors to an accelerator without stalling the host."""
from typing import Optional, Union

import torch
from torch import Tensor

__all__ = ['host_to_device']


def host_to_device(tensor: Tensor, device: Union[str, torch.device],
                   dtype: Optional[torch.dtype] = None) -> Tensor:
    """Copy a host tensor to ``device`` (cast to ``dtype`` first, on the host).

    A plain ``tensor.to('cuda')`` from pageable memory waits until the stream has run every
    queued kernel (PyTorch synchronises the stream after a blocking host-to-device copy), so
    a copy in the middle of a forward pass stops the host from queueing work ahead of the GPU.
    On CUDA the tensor is pinned and copied with ``non_blocking=True`` instead: the copy is
    queued on the stream like a kernel and PyTorch's pinned-memory cache keeps the host buffer
    alive until it has run. Elsewhere (CPU, meta, other backends) it is a plain ``.to``.

    Args:
        tensor: a tensor on the host (CPU).
        device: where the copy goes.
        dtype: the dtype of the copy (default: the tensor's).

    Returns:
        The copy on ``device`` (``tensor`` itself if it already is there with that dtype).
    """
    device = torch.device(device)
    if torch.compiler.is_compiling():  # traced into a graph: the copy is the compiler's
        return tensor.to(device=device, dtype=dtype)
    if dtype is not None:
        tensor = tensor.to(dtype)  # on the host, so the device receives the final values
    if device.type == 'cuda' and tensor.device.type == 'cpu':
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
