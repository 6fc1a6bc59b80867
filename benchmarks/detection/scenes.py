"""Detection scenes composed of real Fashion-MNIST garments, written as a COCO-format set.

Each scene is a ``canvas x canvas`` RGB image with a textured background (smooth random blobs
and grain), a few unlabelled clutter fragments (pieces of other garments, faint), and 2 to 6
garments at random positions and sizes, each tinted with a random colour. Garments may overlap
(a new one is placed only where its box overlaps every earlier box by IoU <= ``max_iou``, and
it is drawn on top). Every garment's box is the tight box of its visible-or-not silhouette
(pixels above ``MASK_THRESHOLD`` in the resized image), its category its Fashion-MNIST class.

The layout is COCO's, with one folder per split::

    root/
      annotations/instances_{train,val,test}.json
      train/000001.png ...   val/...   test/...

``train`` and ``val`` scenes take their garments from disjoint parts of Fashion-MNIST's
training split (images ``[0, 50000)`` and ``[50000, 60000)``), ``test`` scenes from its test
split, so no garment image is seen both in training and in evaluation. Everything is drawn from
``numpy.random.default_rng`` seeded with ``(seed, split)``: the same arguments give the same
bytes (PNG is lossless).
"""
import os
import os.path as osp
import shutil
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..common.files import read_json, write_json
from ..common.store import config_key

__all__ = ['CLASSES', 'SceneSpec', 'compose_scene', 'write_scene_split', 'write_scene_set',
           'scene_set_key', 'GARMENT_RANGES']

#: Fashion-MNIST's classes, in label order (the COCO category ids are ``label + 1``).
CLASSES: Tuple[str, ...] = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
                            'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
#: rows of the Fashion-MNIST split each scene split draws its garments from.
GARMENT_RANGES: Dict[str, Tuple[str, int, int]] = {
    'train': ('train', 0, 50000),
    'val': ('train', 50000, 60000),
    'test': ('test', 0, 10000),
}
_SPLIT_IDS = {'train': 0, 'val': 1, 'test': 2}
MASK_THRESHOLD = 24  # uint8 level above which a resized garment pixel counts as the garment
GENERATOR_VERSION = 1  # bump when the drawing changes: it is part of the cache key


@dataclass(frozen=True)
class SceneSpec:
    """How scenes are drawn.

    Attributes:
        canvas: image side in pixels.
        min_objects: fewest garments per scene.
        max_objects: most garments per scene.
        min_size: smallest garment side (the 28 px image is resized to a square of this side).
        max_size: largest garment side.
        max_iou: largest IoU of a new garment's box with any earlier one (overlap allowed).
        clutter: most unlabelled garment fragments per scene (0 to ``clutter``).
        textured: textured background (else a flat grey level).
    """

    canvas: int = 128
    min_objects: int = 2
    max_objects: int = 6
    min_size: int = 24
    max_size: int = 56
    max_iou: float = 0.3
    clutter: int = 3
    textured: bool = True

    def check(self) -> None:
        """Raise ``ValueError`` naming the first inconsistent field."""
        if not 32 <= self.canvas <= 4096:
            raise ValueError(f'SceneSpec.canvas must be in [32, 4096], got {self.canvas}')
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f'SceneSpec.min_objects/max_objects: need 1 <= min <= max, got '
                             f'{self.min_objects}, {self.max_objects}')
        if not 8 <= self.min_size <= self.max_size <= self.canvas:
            raise ValueError(f'SceneSpec.min_size/max_size: need 8 <= min <= max <= canvas, '
                             f'got {self.min_size}, {self.max_size} (canvas {self.canvas})')
        if not 0.0 <= self.max_iou < 1.0:
            raise ValueError(f'SceneSpec.max_iou must be in [0, 1), got {self.max_iou}')
        if self.clutter < 0:
            raise ValueError(f'SceneSpec.clutter must be >= 0, got {self.clutter}')


def _background(rng: np.random.Generator, spec: SceneSpec) -> np.ndarray:
    """Float ``(H, W, 3)`` background in [0, 255]."""
    import cv2
    n = spec.canvas
    base = rng.uniform(10, 70)
    if not spec.textured:
        return np.full((n, n, 3), base, dtype=np.float32)
    # smooth blobs: coarse noise upsampled, a colour cast per image, then fine grain
    coarse = rng.normal(0.0, 1.0, size=(6, 6, 3)).astype(np.float32)
    blobs = cv2.resize(coarse, (n, n), interpolation=cv2.INTER_CUBIC)
    cast = rng.uniform(0.6, 1.0, size=3).astype(np.float32)
    img = base * cast + rng.uniform(8, 25) * blobs
    img += rng.normal(0.0, 6.0, size=(n, n, 3)).astype(np.float32)
    return np.clip(img, 0, 255)


def _paste(img: np.ndarray, patch: np.ndarray, x: int, y: int, color: np.ndarray,
           opacity: float) -> None:
    """Alpha-blend a grey garment patch (its intensity is its alpha) tinted with ``color``."""
    h, w = patch.shape
    alpha = (patch.astype(np.float32) / 255.0)[..., None] * opacity
    region = img[y:y + h, x:x + w]
    region *= 1.0 - alpha
    region += alpha * (patch.astype(np.float32)[..., None] / 255.0) * color


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``(x1, y1, x2, y2)`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def compose_scene(rng: np.random.Generator, garments: np.ndarray, labels: np.ndarray,
                  spec: SceneSpec) -> Tuple[np.ndarray, List[dict]]:
    """One scene drawn with ``rng`` from ``garments`` (``(N, 28, 28)`` uint8) and their
    ``labels``: a ``(canvas, canvas, 3)`` uint8 BGR image and, per garment,
    ``dict(label, bbox=[x, y, w, h], area, index)`` (``index``: its row in ``garments``)."""
    import cv2
    n = spec.canvas
    img = _background(rng, spec)
    for _ in range(int(rng.integers(0, spec.clutter + 1))):
        # a faint fragment of a random garment: texture that is not an object
        src = garments[int(rng.integers(len(garments)))]
        cy, cx = (int(v) for v in rng.integers(0, 14, size=2))
        frag = src[cy:cy + 14, cx:cx + 14]
        side = int(rng.integers(8, 20))
        frag = cv2.resize(frag, (side, side), interpolation=cv2.INTER_LINEAR)
        x, y = (int(v) for v in rng.integers(0, n - side + 1, size=2))
        _paste(img, frag, x, y, rng.uniform(80, 255, size=3).astype(np.float32),
               float(rng.uniform(0.3, 0.6)))
    objects: List[dict] = []
    boxes: List[Tuple[float, float, float, float]] = []
    for _ in range(int(rng.integers(spec.min_objects, spec.max_objects + 1))):
        for _attempt in range(20):
            index = int(rng.integers(len(garments)))
            side = int(rng.integers(spec.min_size, spec.max_size + 1))
            patch = cv2.resize(garments[index], (side, side), interpolation=cv2.INTER_LINEAR)
            ys, xs = np.nonzero(patch > MASK_THRESHOLD)
            if xs.size == 0:
                continue
            x, y = (int(v) for v in rng.integers(0, n - side + 1, size=2))
            box = (float(x + xs.min()), float(y + ys.min()), float(x + xs.max() + 1),
                   float(y + ys.max() + 1))
            if any(_iou(box, other) > spec.max_iou for other in boxes):
                continue
            color = rng.uniform(120, 255, size=3).astype(np.float32)
            _paste(img, patch, x, y, color, 1.0)
            boxes.append(box)
            objects.append(dict(label=int(labels[index]), index=index,
                                bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
                                area=float(np.count_nonzero(patch > MASK_THRESHOLD))))
            break
    return np.clip(img, 0, 255).round().astype(np.uint8), objects


def write_scene_split(root: str, split: str, num_images: int, garments: np.ndarray,
                      labels: np.ndarray, spec: SceneSpec, seed: int) -> str:
    """Draw ``num_images`` scenes into ``root/<split>/`` and write their COCO json.

    Returns:
        The path of ``root/annotations/instances_<split>.json``.
    """
    import cv2
    if split not in _SPLIT_IDS:
        raise ValueError(f'split must be one of {sorted(_SPLIT_IDS)}, got {split!r}')
    if num_images < 1:
        raise ValueError(f'num_images for split {split!r} must be >= 1, got {num_images}')
    if garments.ndim != 3 or garments.dtype != np.uint8 or len(garments) != len(labels):
        raise ValueError(f'garments must be (N, H, W) uint8 with N labels, got '
                         f'{garments.dtype} {garments.shape} and {len(labels)} labels')
    spec.check()
    rng = np.random.default_rng([seed, _SPLIT_IDS[split]])
    os.makedirs(osp.join(root, split), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, annotations = [], []
    for i in range(1, num_images + 1):
        img, objects = compose_scene(rng, garments, labels, spec)
        file_name = f'{i:06d}.png'
        cv2.imwrite(osp.join(root, split, file_name), img)
        images.append(dict(id=i, file_name=file_name, width=spec.canvas, height=spec.canvas))
        for obj in objects:
            annotations.append(dict(
                id=len(annotations) + 1, image_id=i, category_id=obj['label'] + 1,
                bbox=obj['bbox'], area=obj['area'], iscrowd=0))
    coco = dict(
        info=dict(description=f'Fashion-MNIST scenes ({split})', version=str(GENERATOR_VERSION)),
        licenses=[], images=images, annotations=annotations,
        categories=[dict(id=i + 1, name=name, supercategory='garment')
                    for i, name in enumerate(CLASSES)])
    path = osp.join(root, 'annotations', f'instances_{split}.json')
    write_json(path, coco, indent=None)
    return path


def scene_set_key(num_images: Mapping[str, int], spec: SceneSpec, seed: int) -> str:
    """Short hash of everything that decides the scene set's content."""
    return config_key(dict(num_images), asdict(spec), seed, GENERATOR_VERSION)


@dataclass
class SceneSet:
    """A written scene set: ``root`` and the annotation file of every split."""

    root: str
    key: str
    ann_files: Dict[str, str] = field(default_factory=dict)
    num_objects: Dict[str, int] = field(default_factory=dict)


def write_scene_set(cache_dir: str, fmnist: Union[Mapping[str, object], Callable[[], Mapping]],
                    num_images: Optional[Mapping[str, int]] = None,
                    spec: SceneSpec = SceneSpec(), seed: int = 0) -> SceneSet:
    """The train/val/test scene set in ``cache_dir/scenes-<key>/``, written unless a complete
    one (``done.json``) is there. ``fmnist``: the splits as
    :func:`benchmarks.common.fmnist.read_fashion_mnist` returns them, or a function returning
    them (called only when writing); ``num_images``: scenes per split (default
    ``{'train': 2000, 'val': 300, 'test': 500}``)."""
    num_images = dict(num_images or {'train': 2000, 'val': 300, 'test': 500})
    unknown = set(num_images) - set(_SPLIT_IDS)
    if unknown:
        raise ValueError(f'num_images: unknown splits {sorted(unknown)} (expected '
                         f'{sorted(_SPLIT_IDS)})')
    key = scene_set_key(num_images, spec, seed)
    root = osp.join(cache_dir, f'scenes-{key}')
    done = read_json(osp.join(root, 'done.json'))
    if not done:  # none, or an interrupted write: start over
        shutil.rmtree(root, ignore_errors=True)
        tmp = root + '.part'
        shutil.rmtree(tmp, ignore_errors=True)
        fmnist = fmnist() if callable(fmnist) else fmnist
        counts = {}
        for split, count in num_images.items():
            source, lo, hi = GARMENT_RANGES[split]
            images = np.asarray(fmnist[source].images[lo:hi], dtype=np.uint8)
            path = write_scene_split(tmp, split, count, images,
                                     np.asarray(fmnist[source].labels[lo:hi]), spec, seed)
            counts[split] = len(read_json(path)['annotations'])
        done = dict(key=key, num_images=num_images, spec=asdict(spec), seed=seed,
                    num_objects=counts, version=GENERATOR_VERSION)
        write_json(osp.join(tmp, 'done.json'), done)
        os.replace(tmp, root)
    return SceneSet(root=root, key=key, num_objects=done['num_objects'], ann_files={
        s: osp.join(root, 'annotations', f'instances_{s}.json') for s in num_images})
