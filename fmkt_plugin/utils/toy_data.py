"""Write tiny datasets in the on-disk formats mmpretrain reads, for smoke tests and examples.

Images are drawn deterministically (a class-dependent colour pattern plus noise), so a model can
learn something from them and every run sees the same pixels.
"""
import os
import os.path as osp
import pickle
from typing import Dict, Tuple

import numpy as np

__all__ = ['write_imagenet_folder', 'write_cifar_folder']


def _class_image(rng: np.random.Generator, label: int, num_classes: int, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    phase = 2 * np.pi * label / num_classes
    base = np.stack([np.sin(6 * xx + phase), np.cos(6 * yy + phase), np.sin(4 * (xx + yy) - phase)],
                    axis=-1)
    img = 127.5 * (base + 1) + rng.normal(0, 20, size=(size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_imagenet_folder(root: str,
                          num_classes: int = 4,
                          per_class: Dict[str, int] = None,
                          size: int = 40,
                          seed: int = 0) -> Tuple[str, Dict[str, int]]:
    """Write an ImageNet-format folder: ``{split}/{class}/*.JPEG`` plus ``meta/{split}.txt``.

    Args:
        root: output folder (created).
        num_classes: number of classes (labels 0..num_classes-1).
        per_class: images per class for each split; default ``{'train': 2, 'val': 1}``.
        size: image side in pixels.
        seed: seed of the pixel noise.

    Returns:
        The root and the number of images written per split.
    """
    import cv2

    per_class = per_class or {'train': 2, 'val': 1}
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, 'meta'), exist_ok=True)
    counts = {}
    for split, n in per_class.items():
        lines = []
        for label in range(num_classes):
            cls_dir = osp.join(root, split, f'n{label:08d}')
            os.makedirs(cls_dir, exist_ok=True)
            for i in range(n):
                rel = f'n{label:08d}/{split}_{label}_{i}.JPEG'
                cv2.imwrite(osp.join(root, split, rel), _class_image(rng, label, num_classes, size))
                lines.append(f'{rel} {label}')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + '\n')
        counts[split] = len(lines)
    return root, counts


def write_cifar_folder(root: str,
                       num_classes: int = 100,
                       train_per_class: int = 1,
                       test_per_class: int = 1,
                       seed: int = 0) -> str:
    """Write a CIFAR-100-format folder (``cifar-100-python/{train,test,meta}`` pickles).

    The md5 sums of the real archive will not match, so build the dataset with
    ``data_root=root`` and make sure the files exist (mmpretrain only downloads when they are
    missing).
    """
    rng = np.random.default_rng(seed)
    base = osp.join(root, 'cifar-100-python')
    os.makedirs(base, exist_ok=True)
    for split, n in (('train', train_per_class), ('test', test_per_class)):
        labels = [c for c in range(num_classes) for _ in range(n)]
        data = np.stack([
            _class_image(rng, c, num_classes, 32).transpose(2, 0, 1).reshape(-1) for c in labels
        ])
        with open(osp.join(base, split), 'wb') as f:
            # str keys: what the real (Python 2) pickles give under encoding='latin1'
            pickle.dump({'data': data, 'fine_labels': labels,
                         'coarse_labels': [c // 5 for c in labels]}, f)
    with open(osp.join(base, 'meta'), 'wb') as f:
        pickle.dump({'fine_label_names': [f'class_{i}' for i in range(num_classes)],
                     'coarse_label_names': [f'super_{i}' for i in range(20)]}, f)
    return root
