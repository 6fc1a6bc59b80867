"""Early checks of classification image lists and of the images an evaluation will read.

mmpretrain reads an ImageNet-style list (``meta/train.txt``: ``<image path> <label>`` per line)
with ``int(label)``, so a bad label stopped the build with "invalid literal for int()", naming
neither the file nor the line; and the validation set is built only when the first validation
starts, so a missing validation image was found after the first epoch had trained. These checks
run before the runner is built (the lists) and before training starts (the images).
"""
import os.path as osp
from typing import Optional, Sequence

from .annotations import dataset_configs, local_ann_file

__all__ = ['check_image_lists', 'check_images_exist']

_SHOWN = 5


def _list_file(dataset: dict) -> Optional[str]:
    """The local ImageNet-style ``.txt`` list a dataset config reads, if any."""
    path = local_ann_file(dataset.get('ann_file'), dataset.get('data_root'))
    return path if path and path.endswith('.txt') and osp.isfile(path) else None


def check_image_lists(cfg, splits: Sequence[str] = ('train', 'val')) -> None:
    """Raise ``ValueError`` naming the file and lines of an image list whose label is not a
    non-negative integer."""
    for split in splits:
        loader = cfg.get(f'{split}_dataloader') or {}
        for dataset, field in dataset_configs(loader.get('dataset'),
                                              f'{split}_dataloader.dataset'):
            path = _list_file(dataset)
            if path is None:
                continue
            bad = []
            with open(path, encoding='utf-8', errors='replace') as f:
                for number, line in enumerate(f, 1):
                    parts = line.strip().rsplit(' ', 1)
                    if len(parts) == 2 and not parts[1].isdigit():
                        bad.append(f'line {number}: label {parts[1]!r}')
            if bad:
                more = f'; and {len(bad) - _SHOWN} more' if len(bad) > _SHOWN else ''
                raise ValueError(f'{field}.ann_file: {path}: each line must be "<image path> '
                                 f'<integer label>"; {"; ".join(bad[:_SHOWN])}{more}')


def check_images_exist(runner, split: str) -> None:
    """Build ``runner``'s ``<split>_dataloader`` and raise ``FileNotFoundError`` naming the images
    of its dataset that are not on disk (local paths only)."""
    if runner.cfg.get(f'{split}_dataloader') is None or \
            runner.cfg.get(f'{split}_cfg', {}) is None:
        return
    dataset = getattr(getattr(runner, f'{split}_dataloader'), 'dataset', None)
    if dataset is None or not hasattr(dataset, 'get_data_info'):
        return
    missing = []
    for i in range(len(dataset)):
        path = dataset.get_data_info(i).get('img_path')
        if isinstance(path, str) and '://' not in path and not osp.isfile(path):
            missing.append(path)
    if missing:
        more = f' ({len(missing)} in all)' if len(missing) > _SHOWN else ''
        raise FileNotFoundError(f'{split}_dataloader.dataset: images not found: '
                                f'{", ".join(missing[:_SHOWN])}{more}')
