"""Small-run settings of the shipped configs: cfg-options that run an ImageNet or COCO config on a
tiny folder in seconds, a random-weight checkpoint standing in for a published teacher, and a
child config that applies the options through config inheritance (as a user adapts a config).

Used by the test-suite and by the GPU check (:mod:`benchmarks.gpu_check`); the architectures of
the configs are never changed, only data, budgets and the number of proposals.
"""
import os.path as osp
from typing import Dict

__all__ = ['tiny_cls_options', 'runtime_options', 'DET_IMAGE_SIZE', 'tiny_det_options',
           'DET_TEACHERS', 'random_checkpoint', 'nest', 'write_child_config']

DET_IMAGE_SIZE = (128, 96)  # (w, h) of the toy COCO images and of the pipelines' Resize
#: detection teacher family (as in a config's name) -> the teacher's mmdet config
DET_TEACHERS = {
    'faster-rcnn': 'mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
    'retinanet': 'mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py',
}


def runtime_options(epochs: int) -> Dict:
    """Epochs, validation, logging and checkpoint intervals, seed and a CPU-capable backend."""
    return {
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': epochs,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': epochs,
        'randomness': dict(seed=0, deterministic=False),
        'env_cfg.dist_cfg.backend': 'gloo',
    }


def tiny_cls_options(data_root: str, size: int = 32, batch_size: int = 2,
                     epochs: int = 1) -> Dict:
    """cfg-options that turn an ImageNet config into a smoke run on a tiny ImageNet-format
    folder (:func:`fmkt_plugin.utils.write_imagenet_folder`)."""
    train_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='RandomResizedCrop', scale=size),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='PackInputs'),
    ]
    test_pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='ResizeEdge', scale=size, edge='short'),
        dict(type='CenterCrop', crop_size=size),
        dict(type='PackInputs'),
    ]
    loader = dict(batch_size=batch_size, num_workers=0, persistent_workers=False)
    opts = runtime_options(epochs)
    for split, pipe, ann in (('train', train_pipeline, 'meta/train.txt'),
                             ('val', test_pipeline, 'meta/val.txt'),
                             ('test', test_pipeline, 'meta/val.txt')):
        key = f'{split}_dataloader'
        opts.update({f'{key}.{k}': v for k, v in loader.items()})
        dataset = dict(data_root=data_root, ann_file=ann,
                       data_prefix='train' if split == 'train' else 'val', pipeline=pipe)
        opts.update({f'{key}.dataset.{k}': v for k, v in dataset.items()})
    return opts


def tiny_det_options(coco: Dict[str, str], family: str, teacher_ckpt: str) -> Dict:
    """cfg-options that turn a COCO distillation config into a smoke run on a toy COCO-format
    set (:func:`fmkt_plugin.utils.write_coco_detection`): one epoch of 2 iterations, no
    pretrained download, fewer proposals/RoIs, every detection kept for the metric."""
    w, h = DET_IMAGE_SIZE
    train_pipe = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(w, h), keep_ratio=True),
        dict(type='RandomFlip', prob=0.5),
        dict(type='PackDetInputs'),
    ]
    test_pipe = [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(w, h), keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
    ]
    opts = dict(runtime_options(1), **{
        'model.teacher_ckpt': teacher_ckpt,
        'model.architecture.backbone.init_cfg': None,
        'val_evaluator.ann_file': coco['val'],
        'test_evaluator.ann_file': coco['val'],
    })
    for split, pipe in (('train', train_pipe), ('val', test_pipe), ('test', test_pipe)):
        key = f'{split}_dataloader'
        opts[f'{key}.batch_size'] = 2
        opts[f'{key}.num_workers'] = 0
        opts[f'{key}.persistent_workers'] = False
        opts[f'{key}.dataset.data_root'] = coco['root'] + '/'
        opts[f'{key}.dataset.pipeline'] = pipe
    arch = 'model.architecture'
    if family == 'faster-rcnn':
        opts.update({
            f'{arch}.train_cfg.rpn_proposal.nms_pre': 300,
            f'{arch}.train_cfg.rpn_proposal.max_per_img': 100,
            f'{arch}.train_cfg.rcnn.sampler.num': 64,
            f'{arch}.test_cfg.rpn.nms_pre': 300,
            f'{arch}.test_cfg.rpn.max_per_img': 50,
            f'{arch}.test_cfg.rcnn.score_thr': 0.0,
        })
    else:
        opts.update({f'{arch}.test_cfg.nms_pre': 300, f'{arch}.test_cfg.score_thr': 0.0})
    return opts


def random_checkpoint(config: str, path: str, seed: int = 0) -> str:
    """Write a checkpoint of ``config``'s model with random weights (a stand-in for a published
    teacher; nothing is downloaded)."""
    import torch
    from mmengine.hub import get_model
    torch.manual_seed(seed)
    model = get_model(config, pretrained=False)
    torch.save({'state_dict': model.state_dict(), 'meta': {'source': 'random'}}, path)
    return path


def nest(options: Dict) -> Dict:
    """Turn ``{'a.b.c': 1}`` into ``{'a': {'b': {'c': 1}}}``."""
    out: Dict = {}
    for key, value in options.items():
        node = out
        *parents, leaf = key.split('.')
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def write_child_config(directory, base_config: str, options: Dict,
                       name: str = 'child.py') -> str:
    """Write a config that inherits ``base_config`` and overrides ``options`` (dotted keys).

    This is how a user adapts a shipped config to their data, and it exercises the same
    inheritance machinery as the shipped configs themselves.
    """
    lines = [f'_base_ = [{base_config!r}]']
    for key, value in nest(options).items():
        lines.append(f'{key} = {value!r}')
    path = osp.join(str(directory), name)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path
