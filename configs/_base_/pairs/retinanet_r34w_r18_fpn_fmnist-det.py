# Fashion-MNIST scenes (garments on textured 128 px canvases, 10 classes), the CPU-sized version
# of the RetinaNet COCO pair: same distillation model (FpnTeacherDistill, teacher backbone + FPN
# only) and same detector parts (ResNet, FPN from C3 with extra convs on the input, RetinaHead,
# focal loss), narrowed to run on a CPU and trained from scratch.
#   teacher: RetinaNet, ResNet-34 with base width 32 (deeper and wider)
#   student: RetinaNet, ResNet-18 with base width 16
# Both FPNs are 32 channels wide, so PKD and FM-KT (FPN) compare their outputs level by level.
# The scene set is written by benchmarks/detection (python -m benchmarks.detection.run); point
# data_root at it (or pass the run's --cfg-options).
_base_ = ['./retinanet_x101_r50_fpn_2x_coco.py']

data_root = 'data/fmnist_scenes/'
classes = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker',
           'Bag', 'Ankle boot')
image_size = 128
fpn_channels = 32
max_iters = 400
warmup_iters = 50


def _retinanet(depth, width):
    return dict(
        _scope_='mmdet',
        type='RetinaNet',
        data_preprocessor=dict(
            type='DetDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_size_divisor=32),
        # from scratch: no pretrained weights, no frozen stage, BN statistics trained
        backbone=dict(
            type='ResNet', depth=depth, base_channels=width, num_stages=4,
            out_indices=(0, 1, 2, 3), frozen_stages=-1,
            norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, style='pytorch',
            init_cfg=None),
        neck=dict(
            type='FPN', in_channels=[width, width * 2, width * 4, width * 8],
            out_channels=fpn_channels, start_level=1, add_extra_convs='on_input', num_outs=5),
        bbox_head=dict(
            type='RetinaHead',
            num_classes=len(classes),
            in_channels=fpn_channels,
            stacked_convs=2,
            feat_channels=fpn_channels,
            # garments are 24-56 px: anchors from 24 px at stride 8
            anchor_generator=dict(
                type='AnchorGenerator', octave_base_scale=3, scales_per_octave=3,
                ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32, 64, 128]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                            target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                          loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                          min_pos_iou=0, ignore_iof_thr=-1),
            sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.5), max_per_img=100))


model = dict(
    architecture=dict(_delete_=True, **_retinanet(18, 16)),
    teacher=dict(_delete_=True, **_retinanet(34, 32)),
    teacher_ckpt=None)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]


def _split(name, pipeline, test_mode):
    return dict(
        type='CocoDataset', data_root=data_root, metainfo=dict(classes=classes),
        ann_file=f'annotations/instances_{name}.json', data_prefix=dict(img=f'{name}/'),
        test_mode=test_mode, pipeline=pipeline, backend_args=None,
        **({} if test_mode else dict(filter_cfg=dict(filter_empty_gt=True, min_size=8))))


train_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, **_split('train', train_pipeline, False)))
val_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, **_split('val', test_pipeline, True)))
test_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, **_split('test', test_pipeline, True)))
val_evaluator = dict(ann_file=data_root + 'annotations/instances_val.json')
test_evaluator = dict(ann_file=data_root + 'annotations/instances_test.json')

# Trained from scratch for a few hundred iterations: AdamW with a short warm-up and a cosine
# decay learns faster there than the COCO schedule's SGD (made for ImageNet-initialised
# backbones and 2x24 epochs).
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.002, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=warmup_iters, end=max_iters,
         T_max=max_iters - warmup_iters, eta_min_ratio=0.01),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
