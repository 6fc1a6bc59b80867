"""The Fashion-MNIST idx files both benchmarks draw on: the Debian package
``dataset-fashion-mnist`` installs them gzip-compressed (recompressed by Debian, so the md5 sums
differ from mmpretrain's and the decompressed sizes are checked instead); they are decompressed
once into a data root, whose files' sha256 a results file records."""
import gzip
import os
import os.path as osp
import shutil
import warnings
from typing import Dict, NamedTuple, Sequence

import numpy as np

from .provenance import file_sha256

__all__ = ['PACKAGE_DIR', 'NUM_TRAIN', 'NUM_TEST', 'IDX_BYTES', 'IDX_SHA256', 'DatasetMissingError',
           'prepare_fashion_mnist', 'read_idx', 'Arrays', 'read_fashion_mnist', 'data_facts']

#: where the Debian package puts the .gz files
DEB_DIR = '/usr/share/datasets/fashion-mnist'
#: where scripts/fetch_fmnist.sh unpacks them without root (the bootstrap on a login node)
USER_DIR = os.path.join(os.path.expanduser('~'), '.cache', 'fmkt', 'fashion-mnist')
#: the folder read: FMKT_FMNIST_DIR names another one (a machine without the package, such as
#: one the GPU check's carried folder reaches); else the package's, else the user's copy
PACKAGE_DIR = os.environ.get('FMKT_FMNIST_DIR') or next(
    (d for d in (DEB_DIR, USER_DIR)
     if os.path.isfile(os.path.join(d, 'train-images-idx3-ubyte.gz'))), DEB_DIR)
NUM_TRAIN, NUM_TEST = 60000, 10000
#: decompressed size of every idx file: 16/8-byte header + 28x28 pixels or one byte per label.
IDX_BYTES = {
    'train-images-idx3-ubyte': 16 + NUM_TRAIN * 784,
    'train-labels-idx1-ubyte': 8 + NUM_TRAIN,
    't10k-images-idx3-ubyte': 16 + NUM_TEST * 784,
    't10k-labels-idx1-ubyte': 8 + NUM_TEST,
}
#: sha256 of every decompressed idx file (Fashion-MNIST's content; Debian only recompressed it)
IDX_SHA256 = {
    'train-images-idx3-ubyte': 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888',
    'train-labels-idx1-ubyte': 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9',
    't10k-images-idx3-ubyte': '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b',
    't10k-labels-idx1-ubyte': '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34',
}
_FILES = {'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
          'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')}


class DatasetMissingError(RuntimeError):
    """The Fashion-MNIST files are not installed."""


def prepare_fashion_mnist(data_root: str, package_dir: str = PACKAGE_DIR) -> str:
    """Decompress the packaged archives of ``package_dir`` into ``data_root`` (once, checking
    each file's size and sha256) and return it. A decompressed file changed in place since is
    decompressed again, with a warning.

    Raises:
        DatasetMissingError: a file is missing, with the command that installs it.
    """
    os.makedirs(data_root, exist_ok=True)
    for name, size in IDX_BYTES.items():
        src = osp.join(package_dir, name + '.gz')
        dst = osp.join(data_root, name)
        if osp.isfile(dst) and osp.getsize(dst) == size:
            if file_sha256(dst) == IDX_SHA256[name]:
                continue
            warnings.warn(f'{dst} was changed since it was decompressed (its sha256 is not '
                          f"Fashion-MNIST's); decompressing {src} again", stacklevel=2)
        if not osp.isfile(src):
            raise DatasetMissingError(
                f'Fashion-MNIST file {src} not found. Install the Debian package: '
                '`apt-get install -y dataset-fashion-mnist` (scripts/bootstrap.sh does this).')
        with gzip.open(src, 'rb') as fin, open(dst + '.part', 'wb') as fout:
            shutil.copyfileobj(fin, fout)
        if osp.getsize(dst + '.part') != size:
            raise RuntimeError(f'{src}: decompresses to {osp.getsize(dst + ".part")} bytes, '
                               f'expected {size} for Fashion-MNIST')
        if file_sha256(dst + '.part') != IDX_SHA256[name]:
            os.remove(dst + '.part')
            raise RuntimeError(f"{src}: decompresses to other content than Fashion-MNIST's "
                               f'{name} (sha256 {IDX_SHA256[name]}); reinstall the Debian '
                               'package dataset-fashion-mnist')
        os.replace(dst + '.part', dst)
    return data_root


def read_idx(path: str) -> np.ndarray:
    """The uint8 array of an idx file (big-endian dimension sizes after a 4-byte magic whose
    last byte is the number of dimensions)."""
    with open(path, 'rb') as f:
        data = f.read()
    if data[:3] != b'\x00\x00\x08':
        raise ValueError(f'{path}: not an idx file of unsigned bytes')
    dims = np.frombuffer(data, '>u4', count=data[3], offset=4)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * data[3]).reshape(dims)


class Arrays(NamedTuple):
    """One split: ``images`` ``(N, 28, 28)`` uint8 and ``labels`` ``(N,)`` uint8."""

    images: np.ndarray
    labels: np.ndarray


def read_fashion_mnist(data_root: str, package_dir: str = PACKAGE_DIR,
                       splits: Sequence[str] = ('train', 'test')) -> Dict[str, Arrays]:
    """The splits as numpy arrays (decompressed into ``data_root`` first when needed)."""
    prepare_fashion_mnist(data_root, package_dir)
    return {s: Arrays(*(read_idx(osp.join(data_root, n)) for n in _FILES[s])) for s in splits}


def data_facts(data_root: str, package_dir: str = PACKAGE_DIR) -> dict:
    """``dict(package_dir, sha256={file: hex})`` of the decompressed files."""
    return dict(package_dir=package_dir,
                sha256={n: file_sha256(osp.join(data_root, n)) for n in IDX_BYTES})
