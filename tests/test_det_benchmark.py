"""The detection benchmark (benchmarks/detection): Fashion-MNIST scenes written as a COCO set,
the CPU-sized configs against the shipped COCO recipes, and a smoke of the whole benchmark
(mmengine Runner, mmdet CocoMetric, the exported FM-KT student through tools/test.py).

Needs the Debian package ``dataset-fashion-mnist`` (``scripts/bootstrap.sh`` installs it)."""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from benchmarks.common.fmnist import IDX_BYTES, PACKAGE_DIR  # noqa: E402
from benchmarks.detection.scenes import (  # noqa: E402
    CLASSES,
    SceneSpec,
    write_scene_set,
    write_scene_split,
)


@pytest.fixture(scope='module')
def fmnist(tmp_path_factory):
    """Both Fashion-MNIST splits, read from the Debian package as the benchmark reads them."""
    missing = [n for n in IDX_BYTES if not osp.isfile(osp.join(PACKAGE_DIR, n + '.gz'))]
    if missing:
        pytest.fail(f'Fashion-MNIST is not installed ({PACKAGE_DIR}/{missing[0]}.gz missing): '
                    'run `bash scripts/bootstrap.sh` or `apt-get install -y '
                    'dataset-fashion-mnist`', pytrace=False)
    from benchmarks.common.fmnist import read_fashion_mnist
    return read_fashion_mnist(str(tmp_path_factory.mktemp('fmnist')))


def _garments(fmnist, n=300):
    split = fmnist['train']
    return split.images[:n], split.labels[:n]


def _files(root):
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            with open(osp.join(folder, name), 'rb') as f:
                out[osp.relpath(osp.join(folder, name), root)] = f.read()
    return out


# ------------------------------------------------------------------------------------------
# scenes
# ------------------------------------------------------------------------------------------
def test_scenes_are_deterministic_for_a_seed(fmnist, tmp_path):
    images, labels = _garments(fmnist)
    spec = SceneSpec()
    for name, seed in (('a', 3), ('b', 3), ('c', 4)):
        write_scene_split(str(tmp_path / name), 'train', 6, images, labels, spec, seed)
    a, b, c = (_files(tmp_path / n) for n in 'abc')
    assert len(a) == 7 and a == b  # 6 PNGs and the json, byte for byte
    assert a.keys() == c.keys() and a != c


def test_scenes_are_valid_coco(fmnist, tmp_path):
    import cv2
    images, labels = _garments(fmnist)
    spec = SceneSpec(canvas=128, min_objects=2, max_objects=6)
    path = write_scene_split(str(tmp_path), 'val', 12, images, labels, spec, seed=0)
    with open(path) as f:
        coco = json.load(f)
    assert [c['name'] for c in coco['categories']] == list(CLASSES)
    per_image = {}
    for ann in coco['annotations']:
        x, y, w, h = ann['bbox']
        assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 128 and w >= 4 and h >= 4
        assert 1 <= ann['category_id'] <= 10 and 0 < ann['area'] <= w * h
        per_image[ann['image_id']] = per_image.get(ann['image_id'], 0) + 1
    assert len(coco['images']) == 12
    assert all(2 <= per_image.get(img['id'], 0) <= 6 for img in coco['images'])
    assert len({a['category_id'] for a in coco['annotations']}) > 3
    # a garment is brighter than the background around it: the box is where the garment is
    img = cv2.imread(osp.join(tmp_path, 'val', coco['images'][0]['file_name']))
    assert img.shape == (128, 128, 3)
    ann = next(a for a in coco['annotations'] if a['image_id'] == coco['images'][0]['id'])
    x, y, w, h = (int(round(v)) for v in ann['bbox'])
    assert img[y:y + h, x:x + w].max() > np.median(img) + 40


def test_scene_set_is_cached_and_checks_its_input(fmnist, tmp_path):
    counts = {'train': 4, 'val': 2, 'test': 2}
    first = write_scene_set(str(tmp_path), fmnist, counts, seed=1)
    assert set(first.num_objects) == set(counts) and all(first.num_objects.values())

    def not_again():
        raise AssertionError('the cached scene set was drawn again')

    again = write_scene_set(str(tmp_path), not_again, counts, seed=1)
    assert again.root == first.root and again.num_objects == first.num_objects
    # test scenes come from Fashion-MNIST's test split, not from the training images
    with open(first.ann_files['test']) as f:
        assert json.load(f)['images']
    with pytest.raises(ValueError, match='max_size'):
        write_scene_set(str(tmp_path), fmnist, counts, spec=SceneSpec(max_size=200))
    with pytest.raises(ValueError, match='unknown splits'):
        write_scene_set(str(tmp_path), fmnist, {'holdout': 3})


# ------------------------------------------------------------------------------------------
# configs
# ------------------------------------------------------------------------------------------
def test_det_configs_use_the_shipped_coco_recipes():
    from fmkt_plugin.apis import load_config
    configs = osp.join(REPO, 'configs')
    for small, coco in (('fmkt/fmkt_retinanet_r34w_r18_fpn_fmnist-det.py',
                         'fmkt/fmkt_retinanet_x101_r50_fpn_2x_coco.py'),
                        ('baselines/pkd_retinanet_r34w_r18_fpn_fmnist-det.py',
                         'baselines/pkd_retinanet_x101_r50_fpn_2x_coco.py')):
        a = load_config(osp.join(configs, small))
        b = load_config(osp.join(configs, coco))
        assert a.model.type == b.model.type
        assert a.model.distiller.to_dict() == b.model.distiller.to_dict()
        neck_a, neck_b = a.model.architecture.neck, b.model.architecture.neck
        if neck_a.type == 'FlowFPN':
            assert neck_a.flow == neck_b.flow and neck_a.flow_levels == neck_b.flow_levels
            neck_a = neck_a.neck
        # teacher and student FPNs of the same width, the student's backbone smaller
        assert neck_a.out_channels == a.model.teacher.neck.out_channels
        assert a.model.architecture.backbone.depth < a.model.teacher.backbone.depth
        assert a.model.architecture.bbox_head.num_classes == len(CLASSES)


# ------------------------------------------------------------------------------------------
# the benchmark end to end
# ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_det_benchmark_smoke(fmnist, tmp_path):
    from benchmarks.detection.run import main
    payload = main(['--profile', 'smoke', '--out', str(tmp_path)])
    runs = {r['method']: r for r in payload['runs']}
    assert set(runs) == {'student', 'pkd', 'fmkt', 'fmkt_export'}
    for record in list(runs.values()) + [payload['teacher']]:
        assert 0.0 <= record['mAP'] <= 100.0 and 0.0 <= record['mAP50'] <= 100.0
    assert runs['fmkt']['iters'] == runs['pkd']['iters'] == runs['student']['iters'] == 2
    # the exported student, scored by tools/test.py, gives the distillation model's
    # detections and therefore its score
    export = runs['fmkt_export']
    assert export['detections'] > 0 and export['images_mismatched'] == 0
    assert export['max_score_diff'] < 1e-5 and export['max_box_diff'] < 1e-3
    for metric in ('mAP', 'mAP50', 'mAP75'):
        assert export[metric] == runs['fmkt'][metric]
    exported = [osp.join(d, 'student_config.py') for d, _, names in os.walk(tmp_path)
                if osp.basename(d) == 'student' and 'student_config.py' in names]
    assert len(exported) == 1 and export['config'].endswith('student_config.py')
    with open(exported[0]) as f:
        text = f.read()
    assert "type='RetinaNet'" in text and "type='FlowFPN'" in text  # no teacher, flows kept
    out = tmp_path / 'det-smoke'
    assert (out / 'det_map.png').stat().st_size > 1000
    md = (out / 'results.md').read_text()
    assert 'FM-KT (FPN)' in md and 'PKD' in md and 'mAP50' in md
    with open(out / 'results.json') as f:
        text = f.read()
    assert str(tmp_path) not in text  # no path of this machine in the results
    machine = json.loads(text)['meta']['machine']  # the machine is named: digits differ
    assert machine['cpu'] and machine['simd'] and machine['cores'] >= 1
