"""Checks of COCO-format annotation files before mmdet reads them, naming file, annotation and
field.

mmdet's ``CocoDataset`` skips what it cannot use without a word: an annotation whose
``category_id`` is not in ``categories``, a box with a width or height below 1 px (a negative
one included), a zero area, a box outside its image. When that leaves no image to train on,
mmengine fails inside numpy (``need at least one array to concatenate``), which names neither
the file nor the annotation; an evaluation set without annotations is scored against empty
ground truth and the run ends normally. These checks read the JSON first (one ``json.load``,
as mmdet's loader does) and:

- raise ``ValueError`` for an annotation that names an unknown category or image, has no
  ``bbox`` of 4 finite numbers, or lacks ``id`` / ``area``; for an empty ``annotations`` list;
  and for a set with no box that mmdet would keep of the dataset's classes;
- warn (``UserWarning``) about annotations that mmdet's ``CocoDataset`` drops (degenerate or
  outside the image), naming the file and the annotation ids.
"""
import json
import math
import os.path as osp
import warnings
from numbers import Real
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = ['check_coco_file', 'check_detection_annotations', 'dataset_configs', 'local_ann_file']

_SHOWN = 5  # problems listed in one message


def _is_number(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _listing(items: List[str]) -> str:
    more = f'; and {len(items) - _SHOWN} more' if len(items) > _SHOWN else ''
    return '; '.join(items[:_SHOWN]) + more


def _load(path: str, field: str) -> dict:
    if not osp.isfile(path):
        raise FileNotFoundError(f'{field}: annotation file not found: {path}')
    try:
        with open(path) as f:
            coco = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f'{field}: {path} is not a JSON file: {err}') from err
    if not isinstance(coco, dict):
        raise ValueError(f'{field}: {path} holds a JSON {type(coco).__name__}, not a COCO-format '
                         'dict with "images", "annotations" and "categories"')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(coco.get(key), list):
            got = 'missing' if key not in coco else f'a {type(coco[key]).__name__}'
            raise ValueError(f'{field}: {path}: "{key}" must be a list (COCO format), it is {got}')
    return coco


def _ids(entries: list, key: str, field: str, path: str) -> Dict:
    """``id -> entry`` of the images or categories; each needs a hashable ``id``."""
    out = {}
    for index, entry in enumerate(entries):
        ident = entry.get('id') if isinstance(entry, dict) else None
        if not isinstance(ident, (int, str)) or isinstance(ident, bool):
            raise ValueError(f'{field}: {path}: {key}[{index}] has no valid "id" (got '
                             f'{ident!r})')
        out[ident] = entry
    return out


def _sorted_ids(ids) -> list:
    return sorted(ids, key=lambda i: (isinstance(i, str), i if isinstance(i, str) else int(i)))


def _dropped_reason(ann: dict, image: dict) -> Optional[str]:
    """Why mmdet's ``CocoDataset.parse_data_info`` skips this annotation (None: it is kept)."""
    x, y, w, h = ann['bbox']
    if w < 1 or h < 1:
        side, size = ('width', w) if w < 1 else ('height', h)
        return f'bbox {side} {size:g} < 1'
    width, height = image.get('width'), image.get('height')
    if _is_number(width) and _is_number(height):
        inter_w = max(0, min(x + w, width) - max(x, 0))
        inter_h = max(0, min(y + h, height) - max(y, 0))
        if inter_w * inter_h == 0:
            return f'bbox {[x, y, w, h]} lies outside its {width:g}x{height:g} image'
    if ann['area'] <= 0:
        return f'area {ann["area"]:g} <= 0'
    return None


def _annotation_errors(coco: dict, images: Dict, categories: Dict) -> Iterator[str]:
    seen = set()
    for index, ann in enumerate(coco['annotations']):
        if not isinstance(ann, dict):
            yield f'annotations[{index}] is a {type(ann).__name__}, not a dict'
            continue
        ident = ann.get('id')
        if not isinstance(ident, (int, str)) or isinstance(ident, bool):
            yield f'annotations[{index}]: "id" is missing or invalid ({ident!r})'
            continue
        name = f'annotation id {ident}'
        if ident in seen:
            yield f'{name}: "id" is not unique'
        seen.add(ident)
        if ann.get('category_id') not in categories:
            yield (f'{name}: category_id {ann.get("category_id")!r} is not an id of '
                   f'"categories" ({_sorted_ids(categories)[:10]}'
                   f'{", ..." if len(categories) > 10 else ""})')
        if ann.get('image_id') not in images:
            yield f'{name}: image_id {ann.get("image_id")!r} is not an id of "images"'
        bbox = ann.get('bbox')
        if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4
                and all(_is_number(v) for v in bbox)):
            yield f'{name}: bbox must be [x, y, width, height] (4 finite numbers), got {bbox!r}'
        if not ann.get('ignore', False) and not _is_number(ann.get('area')):
            yield f'{name}: area must be a finite number, got {ann.get("area")!r}'


def check_coco_file(path: str, field: str, *, training: bool,
                    classes: Optional[Sequence[str]] = None) -> Dict[str, int]:
    """Check a COCO-format annotation file as mmdet's ``CocoDataset`` will read it.

    Args:
        path: the annotation JSON.
        field: the config field that names it, prefixed to every message (e.g.
            ``'train_dataloader.dataset.ann_file'``).
        training: a training set (its dropped boxes are warned about, and it needs at least one
            box mmdet keeps) or an evaluation set (it needs at least one annotation of the
            dataset's classes: the ground truth).
        classes: the dataset's class names (``metainfo.classes``); annotations of other
            categories are ignored by mmdet (not an error, unless none is left). ``None``: all.

    Returns:
        Counts: ``images``, ``annotations``, ``dropped`` (skipped by mmdet), ``usable``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not COCO format; an annotation naming an unknown category or image, without
            a valid ``id``, ``bbox`` or ``area`` (the first few, with annotation id and field);
            no annotations; no annotation mmdet would use.
    """
    coco = _load(path, field)
    images = _ids(coco['images'], 'images', field, path)
    categories = _ids(coco['categories'], 'categories', field, path)
    errors = list(_annotation_errors(coco, images, categories))
    if errors:
        raise ValueError(f'{field}: {path}: {len(errors)} bad annotation field(s): '
                         f'{_listing(errors)}')
    anns = coco['annotations']
    if not anns:
        purpose = ('there is nothing to train on' if training else
                   'the detections would be scored against empty ground truth')
        raise ValueError(f'{field}: {path} has an empty "annotations" list: {purpose}')
    wanted = None if classes is None else {
        ident for ident, cat in categories.items() if cat.get('name') in set(classes)}
    dropped, usable = [], 0
    for ann in anns:
        if ann.get('ignore', False):
            continue
        reason = _dropped_reason(ann, images[ann['image_id']]) if training else None
        if reason:
            dropped.append(f'id {ann["id"]} ({reason})')
        elif wanted is None or ann['category_id'] in wanted:
            usable += 1
    if dropped:
        # mmdet skips them silently: the image then trains with fewer (or no) objects
        warnings.warn(f'{field}: {path}: {len(dropped)} annotation(s) will be dropped by mmdet\'s '
                      f'CocoDataset: {_listing(dropped)}', UserWarning, stacklevel=2)
    if usable == 0:
        of_classes = '' if wanted is None else (
            f' of the dataset\'s classes ({len(wanted)} of the {len(categories)} categories '
            'are named in metainfo.classes)')
        what = ('there would be no box to train on' if training else
                'the detections would be scored against empty ground truth')
        raise ValueError(f'{field}: {path}: none of its {len(anns)} annotation(s) is a box mmdet '
                         f'uses{of_classes} ({len(dropped)} dropped): {what}')
    return dict(images=len(images), annotations=len(anns), dropped=len(dropped), usable=usable)


def _coco_dataset_class(dataset_cfg: dict, default_scope: Optional[str]):
    """The dataset class if it is mmdet's ``CocoDataset`` or a subclass reading boxes (not the
    panoptic set); else ``None``."""
    type_ = dataset_cfg.get('type')
    if isinstance(type_, str):
        scope, _, name = type_.rpartition('.')
        if (scope or dataset_cfg.get('_scope_') or default_scope) != 'mmdet':
            return None
    elif not isinstance(type_, type):
        return None
    try:
        from mmdet.datasets import CocoDataset, CocoPanopticDataset
        from mmdet.registry import DATASETS
    except ImportError:  # no mmdet: nothing of it will read the file either
        return None
    cls = DATASETS.get(name) if isinstance(type_, str) else type_
    if (not isinstance(cls, type) or not issubclass(cls, CocoDataset)
            or issubclass(cls, CocoPanopticDataset)):
        return None
    return cls


def dataset_configs(dataset_cfg, field: str) -> Iterator[Tuple[dict, str]]:
    """The dataset config and those inside wrappers (``RepeatDataset``, ``ConcatDataset``...)."""
    if not isinstance(dataset_cfg, dict):
        return
    yield dataset_cfg, field
    yield from dataset_configs(dataset_cfg.get('dataset'), f'{field}.dataset')
    for index, inner in enumerate(dataset_cfg.get('datasets') or []):
        yield from dataset_configs(inner, f'{field}.datasets[{index}]')


def local_ann_file(ann_file, data_root) -> Optional[str]:
    """The file mmengine's ``BaseDataset`` reads (``data_root`` joined), or None if remote."""
    if not isinstance(ann_file, str) or not ann_file or '://' in ann_file:
        return None
    if not osp.isabs(ann_file) and data_root:
        if '://' in str(data_root):
            return None
        ann_file = osp.join(str(data_root), ann_file)
    return ann_file


def check_detection_annotations(cfg, splits: Sequence[str] = ('train', 'val')) -> None:
    """Check the COCO-format annotation files of ``cfg``'s dataloaders and COCO metrics.

    For each split, the ``ann_file`` of every mmdet ``CocoDataset`` (inside dataset wrappers
    too) and the ``ann_file`` of a ``CocoMetric`` evaluator, once per file. Other datasets and
    remote files are left alone. Call it before the runner is built.

    Args:
        cfg: the runner config.
        splits: ``'train'`` (checked as a training set), ``'val'``, ``'test'`` (evaluation).

    Raises:
        FileNotFoundError / ValueError: see :func:`check_coco_file`.
    """
    default_scope = cfg.get('default_scope', None)
    checked = set()
    for split in splits:
        loader = cfg.get(f'{split}_dataloader', None)
        if not isinstance(loader, dict):
            continue
        training = split == 'train'
        classes = None
        for dataset_cfg, field in dataset_configs(loader.get('dataset'),
                                                  f'{split}_dataloader.dataset'):
            cls = _coco_dataset_class(dataset_cfg, default_scope)
            if cls is None:
                continue
            path = local_ann_file(dataset_cfg.get('ann_file'), dataset_cfg.get('data_root'))
            metainfo = dataset_cfg.get('metainfo') or {}
            classes = metainfo.get('classes') or cls.METAINFO.get('classes')
            if path is not None and (path, training) not in checked:
                checked.add((path, training))
                check_coco_file(path, f'{field}.ann_file', training=training, classes=classes)
        if training or classes is None:
            continue
        evaluators = cfg.get(f'{split}_evaluator', None)
        many = isinstance(evaluators, (list, tuple))
        for index, metric in enumerate(evaluators if many else [evaluators]):
            if not isinstance(metric, dict) or not str(metric.get('type', '')).endswith(
                    'CocoMetric'):
                continue
            path = local_ann_file(metric.get('ann_file'), None)
            field = f'{split}_evaluator' + (f'[{index}]' if many else '') + '.ann_file'
            if path is not None and (path, False) not in checked:
                checked.add((path, False))
                check_coco_file(path, field, training=False, classes=classes)
