"""Fashion-MNIST from the Debian package ``dataset-fashion-mnist``, held in memory.

The package installs the four original idx files, gzip-compressed, in
``/usr/share/datasets/fashion-mnist`` (recompressed by Debian, so the archives' md5 sums differ
from the ones mmpretrain lists; the decompressed sizes are checked instead). They are
decompressed into a data root and read with mmpretrain's ``FashionMNIST`` class (with
``test_mode=True`` for the test split: in mmpretrain 1.2.0 ``split='test'`` alone still reads
the training files). The images are then kept
as one uint8 tensor per split, and :class:`TensorLoader` serves shuffled, randomly flipped batches
in the ``dict(inputs=..., data_samples=[DataSample, ...])`` form that OpenMMLab models'
``train_step``/``val_step`` take, without per-sample python transforms.
"""
import hashlib
import math
import warnings
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .common.fmnist import (
    NUM_TEST,
    NUM_TRAIN,
    PACKAGE_DIR,
    DatasetMissingError,
    prepare_fashion_mnist,
)

__all__ = [
    'PACKAGE_DIR', 'DatasetMissingError', 'Split', 'prepare_fashion_mnist', 'load_fashion_mnist',
    'TensorLoader'
]

@dataclass
class Split:
    """One split in memory.

    Attributes:
        images: ``(N, 1, 28, 28)`` uint8.
        labels: ``(N,)`` int64.
        name: ``'train'`` or ``'test'``.
    """

    images: Tensor
    labels: Tensor
    name: str

    def __len__(self) -> int:
        return int(self.labels.numel())


def load_fashion_mnist(data_root: str, package_dir: str = PACKAGE_DIR,
                       splits: Sequence[str] = ('train', 'test')) -> Dict[str, Split]:
    """Read the splits through mmpretrain's ``FashionMNIST`` dataset class.

    Args:
        data_root: folder of the decompressed idx files.
        package_dir: where the Debian package put the ``*.gz`` files.
        splits: which splits to read (``('train', )`` leaves the test images unread).

    Returns:
        ``{'train': Split (60000 images), 'test': Split (10000 images)}`` (the splits asked for).
    """
    from mmpretrain.datasets import FashionMNIST

    prepare_fashion_mnist(data_root, package_dir)
    out = {}
    for name, test_mode, expected in (('train', False, NUM_TRAIN), ('test', True, NUM_TEST)):
        if name not in splits:
            continue
        with warnings.catch_warnings():  # one numpy deprecation warning per image upstream
            warnings.simplefilter('ignore', DeprecationWarning)
            warnings.simplefilter('ignore', UserWarning)
            ds = FashionMNIST(data_root=data_root, split=name, test_mode=test_mode,
                              download=False, serialize_data=False, lazy_init=False)
        if len(ds) != expected:
            raise RuntimeError(f'Fashion-MNIST {name}: {len(ds)} images, expected {expected}')
        infos = [ds.get_data_info(i) for i in range(len(ds))]
        images = torch.stack([torch.as_tensor(info['img']) for info in infos]).unsqueeze(1)
        labels = torch.tensor([int(info['gt_label']) for info in infos], dtype=torch.long)
        out[name] = Split(images.to(torch.uint8).contiguous(), labels, name)
    if len(out) == 2 and torch.equal(out['train'].images[:NUM_TEST], out['test'].images):
        raise RuntimeError('Fashion-MNIST: the test split holds the training images')
    return out


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
    """Batches of an in-memory split, as an OpenMMLab data loader would give them.

    Every batch is ``dict(inputs=uint8 (B, 1, 28, 28), data_samples=[DataSample])``; each sample
    carries ``gt_label`` and, in its metainfo, ``sample_idx`` (row of the full split) and ``flip``.

    Args:
        split: the images and labels.
        batch_size: images per batch (the last batch may be smaller).
        indices: the rows of ``split`` to serve (default all).
        shuffle: new random order every epoch.
        flip: random horizontal flip with probability 0.5 per image.
        seed: seed of the order and the flips (combined with the epoch).
        with_samples: build ``DataSample`` objects (off: ``data_samples`` is None and the labels
            come as ``labels``).
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
