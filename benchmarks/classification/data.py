"""Fashion-MNIST in memory (:mod:`benchmarks.common.fmnist` reads the idx files): one uint8
tensor per split, and :class:`TensorLoader`, which serves shuffled, randomly flipped batches in
the ``dict(inputs=..., data_samples=[DataSample, ...])`` form that OpenMMLab models'
``train_step``/``val_step`` take, without per-sample python transforms.
"""
import hashlib
import math
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..common.fmnist import NUM_TRAIN, PACKAGE_DIR, prepare_fashion_mnist, read_fashion_mnist

__all__ = ['NUM_TRAIN', 'Split', 'prepare_fashion_mnist', 'load_fashion_mnist', 'TensorLoader']


@dataclass
class Split:
    """One split in memory: ``images`` ``(N, 1, 28, 28)`` uint8, ``labels`` ``(N,)`` int64."""

    images: Tensor
    labels: Tensor
    name: str

    def __len__(self) -> int:
        return int(self.labels.numel())


def load_fashion_mnist(data_root: str, package_dir: str = PACKAGE_DIR,
                       splits: Sequence[str] = ('train', 'test')) -> Dict[str, Split]:
    """``{split: Split}`` of the splits asked for (``('train', )`` leaves the test images
    unread), decompressed into ``data_root`` first when needed."""
    return {name: Split(torch.from_numpy(arrays.images.copy()).unsqueeze(1),
                        torch.from_numpy(arrays.labels.astype('int64')), name)
            for name, arrays in read_fashion_mnist(data_root, package_dir, splits).items()}


def _make_samples(labels: Tensor, indices: Tensor, flips: Tensor) -> list:
    """One ``DataSample`` per image. The fields are set directly: ``set_gt_label`` and
    ``DataSample(metainfo=...)`` format and deep-copy every value, which took about a quarter of
    a small student's training step."""
    from mmpretrain.structures import DataSample

    out = []
    for label, idx, flip in zip(labels.view(-1, 1).unbind(0), indices.tolist(), flips.tolist()):
        sample = DataSample()
        sample.set_field(idx, 'sample_idx', field_type='metainfo')
        sample.set_field(bool(flip), 'flip', field_type='metainfo')
        sample.set_field(label, 'gt_label', dtype=Tensor)
        out.append(sample)
    return out


class TensorLoader:
    """Batches of the rows ``indices`` (default all) of an in-memory split, as an OpenMMLab data
    loader gives them: ``dict(inputs=uint8 (B, 1, 28, 28), data_samples=[DataSample])``, each
    sample with ``gt_label`` and, in its metainfo, ``sample_idx`` (row of the split) and
    ``flip``; also ``labels``, ``indices`` and ``flips`` (``with_samples=False``: no samples).
    ``shuffle``: a new order every epoch; ``flip``: horizontal flips with probability 0.5; both
    drawn from ``seed`` and the epoch.
    """

    def __init__(self,
                 split: Split,
                 batch_size: int,
                 indices: Optional[Tensor] = None,
                 shuffle: bool = False,
                 flip: bool = False,
                 seed: int = 0,
                 with_samples: bool = True) -> None:
        self.split = split
        self.batch_size = batch_size
        self.indices = torch.arange(len(split)) if indices is None else indices.long()
        self.shuffle = shuffle
        self.flip = flip
        self.seed = seed
        self.with_samples = with_samples
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(self.indices.numel() / self.batch_size)

    @property
    def num_images(self) -> int:
        return int(self.indices.numel())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def dataset(self) -> Split:
        """The split (what mmengine's train loop reads of a data loader)."""
        return self.split

    @property
    def sampler(self) -> 'TensorLoader':
        """The loader itself: mmengine's ``DistSamplerSeedHook`` sets the epoch of a loader's
        sampler, and :meth:`draws` depends on it."""
        return self

    def draws(self, epoch: int) -> Tuple[Tensor, Tensor]:
        """The order (rows) and flips of ``epoch``: a function of the seed and the epoch alone
        (a private generator, so neither the model nor the method changes them)."""
        gen = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        order = self.indices
        if self.shuffle:
            order = order[torch.randperm(order.numel(), generator=gen)]
        flips = (torch.rand(order.numel(), generator=gen) < 0.5) if self.flip else \
            torch.zeros(order.numel(), dtype=torch.bool)
        return order, flips

    def digest(self, epoch: int = 0) -> str:
        """A short hash of :meth:`draws` of ``epoch``: equal for runs that see the same data."""
        order, flips = self.draws(epoch)
        blob = order.numpy().tobytes() + flips.numpy().tobytes()
        return hashlib.sha1(blob).hexdigest()[:12]

    def __iter__(self) -> Iterator[dict]:
        order, flips = self.draws(self.epoch)
        for start in range(0, order.numel(), self.batch_size):
            idx = order[start:start + self.batch_size]
            fl = flips[start:start + self.batch_size]
            images = self.split.images[idx]
            if fl.any():
                images[fl] = images[fl].flip(-1)
            labels = self.split.labels[idx]
            batch = dict(inputs=images, labels=labels, indices=idx, flips=fl)
            batch['data_samples'] = _make_samples(labels, idx, fl) if self.with_samples else None
            yield batch
