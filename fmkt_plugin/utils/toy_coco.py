"""Write a tiny COCO-format detection set (drawn shapes + a real annotation JSON).

The layout is COCO's, so mmdet's COCO configs only need their ``data_root`` (and the metric's
``ann_file``) pointed at it::

    root/
      annotations/instances_train2017.json
      annotations/instances_val2017.json
      train2017/000000000001.jpg ...
      val2017/000000000101.jpg ...

Objects are filled rectangles and ellipses on a noisy background. Their categories carry real
COCO names and ids (``'tv'`` = 72 for rectangles, ``'sports ball'`` = 37 for ellipses by
default) and the JSON lists all 80 COCO categories, so mmdet's ``CocoDataset`` with its default
80-class metainfo and an 80-class detector read it as they read COCO, and ``CocoMetric`` scores
detections with pycocotools.
"""
import json
import os
import os.path as osp
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ['write_coco_detection', 'DEFAULT_SHAPE_CATEGORIES', 'COCO_CATEGORIES']

_COCO_NAMES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
    'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
    'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich',
    'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
    'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote',
    'keyboard', 'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book',
    'clock', 'vase', 'scissors', 'teddy bear', 'hair drier', 'toothbrush')
# COCO's category ids run from 1 to 90 with 10 unused.
_COCO_IDS = tuple(i for i in range(1, 91)
                  if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83))

#: the 80 COCO detection categories as ``(id, name)``, in COCO (and mmdet label) order.
COCO_CATEGORIES: Tuple[Tuple[int, str], ...] = tuple(zip(_COCO_IDS, _COCO_NAMES))

#: shape -> (COCO category id, COCO category name).
DEFAULT_SHAPE_CATEGORIES: Dict[str, Tuple[int, str]] = {
    'rectangle': (72, 'tv'),
    'ellipse': (37, 'sports ball'),
}


def _draw_image(rng: np.random.Generator, width: int, height: int, max_objects: int,
                shapes: Sequence[str]) -> Tuple[np.ndarray, list]:
    """One image and its objects as ``(shape, x, y, w, h, area)``."""
    import cv2

    img = rng.normal(110, 25, size=(height, width, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    objects = []
    for _ in range(int(rng.integers(1, max_objects + 1))):
        shape = shapes[int(rng.integers(len(shapes)))]
        w = int(rng.integers(max(8, width // 6), max(9, width // 2)))
        h = int(rng.integers(max(8, height // 6), max(9, height // 2)))
        x = int(rng.integers(0, width - w))
        y = int(rng.integers(0, height - h))
        color = tuple(int(c) for c in rng.integers(0, 256, size=3))
        if shape == 'rectangle':
            cv2.rectangle(img, (x, y), (x + w - 1, y + h - 1), color, thickness=-1)
            area = float(w * h)
        else:
            center = (x + w // 2, y + h // 2)
            cv2.ellipse(img, center, (w // 2, h // 2), 0, 0, 360, color, thickness=-1)
            area = float(np.pi * (w / 2) * (h / 2))
        objects.append((shape, x, y, w, h, area))
    return img, objects


def write_coco_detection(root: str,
                         num_images: Optional[Mapping[str, int]] = None,
                         image_size: Tuple[int, int] = (128, 96),
                         max_objects: int = 3,
                         categories: Optional[Mapping[str, Tuple[int, str]]] = None,
                         all_coco_categories: bool = True,
                         seed: int = 0) -> Dict[str, str]:
    """Write a tiny COCO-format detection dataset.

    Args:
        root: output folder (created).
        num_images: images per split, default ``{'train': 4, 'val': 2}``; split ``s`` is written
            to ``{s}2017/`` and ``annotations/instances_{s}2017.json``.
        image_size: ``(width, height)`` of every image, in pixels.
        max_objects: each image holds 1 to ``max_objects`` shapes.
        categories: shape (``'rectangle'``/``'ellipse'``) -> ``(coco_id, coco_name)``; default
            :data:`DEFAULT_SHAPE_CATEGORIES`. Names must be COCO class names for mmdet's default
            ``CocoDataset`` metainfo to keep them.
        all_coco_categories: list all 80 COCO categories in the JSON (as COCO does), not only
            the drawn ones. mmdet's ``CocoDataset``/``CocoMetric`` map labels through the
            categories the JSON lists, so an 80-class detector needs all of them.
        seed: seed of the drawing.

    Returns:
        ``{'root': root, '<split>': <annotation json path>, ...}``.
    """
    import cv2

    num_images = dict(num_images or {'train': 4, 'val': 2})
    categories = dict(categories or DEFAULT_SHAPE_CATEGORIES)
    unknown = set(categories) - {'rectangle', 'ellipse'}
    if unknown:
        raise ValueError(f'write_coco_detection: unknown shapes {sorted(unknown)} '
                         "(expected 'rectangle' and/or 'ellipse')")
    width, height = image_size
    if width < 16 or height < 16:
        raise ValueError(f'write_coco_detection: image_size must be at least 16x16, got '
                         f'{image_size}')
    listed = set(categories.values())
    if all_coco_categories:
        known = set(COCO_CATEGORIES)
        if not listed <= known:
            raise ValueError(f'write_coco_detection: {sorted(listed - known)} are not COCO '
                             '(id, name) pairs; pass all_coco_categories=False')
        listed = known
    rng = np.random.default_rng(seed)
    shapes = sorted(categories)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    paths = {'root': root}
    image_id, ann_id = 0, 0
    for split, count in num_images.items():
        folder = f'{split}2017'
        os.makedirs(osp.join(root, folder), exist_ok=True)
        images, annotations = [], []
        for _ in range(count):
            image_id += 1
            file_name = f'{image_id:012d}.jpg'
            img, objects = _draw_image(rng, width, height, max_objects, shapes)
            cv2.imwrite(osp.join(root, folder, file_name), img)
            images.append(dict(id=image_id, file_name=file_name, width=width, height=height))
            for shape, x, y, w, h, area in objects:
                ann_id += 1
                annotations.append(
                    dict(id=ann_id, image_id=image_id, category_id=categories[shape][0],
                         bbox=[float(x), float(y), float(w), float(h)], area=area, iscrowd=0,
                         segmentation=[[float(x), float(y), float(x + w), float(y),
                                        float(x + w), float(y + h), float(x), float(y + h)]]))
        coco = dict(
            info=dict(description='fmkt_plugin toy COCO set (drawn shapes)', version='1.0'),
            licenses=[],
            images=images,
            annotations=annotations,
            categories=[dict(id=cid, name=name, supercategory='object')
                        for cid, name in sorted(listed)])
        path = osp.join(root, 'annotations', f'instances_{split}2017.json')
        with open(path, 'w') as f:
            json.dump(coco, f)
        paths[split] = path
    return paths
