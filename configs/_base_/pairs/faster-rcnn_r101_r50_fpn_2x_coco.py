# COCO, Faster R-CNN R-101 (teacher) -> Faster R-CNN R-50 (student), both with FPN: mmdet's data,
# 2x schedule (lr 0.02) and runtime. The teacher runs backbone + neck only (FPN distillation).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py']
custom_imports = dict(imports=['fmkt_plugin'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth'  # noqa: E501

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FpnTeacherDistill',
    # The student is mmdet's Faster R-CNN R-50 FPN, taken part by part so that methods can swap
    # its neck; the distillation model uses the student's data preprocessor.
    architecture=dict(
        _scope_='mmdet',
        type='FasterRCNN',
        data_preprocessor={{_base_.model.data_preprocessor}},
        backbone={{_base_.model.backbone}},
        neck={{_base_.model.neck}},
        rpn_head={{_base_.model.rpn_head}},
        roi_head={{_base_.model.roi_head}},
        train_cfg={{_base_.model.train_cfg}},
        test_cfg={{_base_.model.test_cfg}}),
    teacher=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py', pretrained=False),
    teacher_ckpt=teacher_ckpt)

find_unused_parameters = True
# Gradient clipping for every method of this pair (FM-KT's flows and PKD alike): the methods
# differ only in their distillation.
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))

# Reseed python/numpy/torch from (seed, epoch) before every training epoch: an epoch's random
# augmentations do not depend on what ran before it, so --resume is exact (see EpochSeedHook).
custom_hooks = [dict(type='EpochSeedHook')]
# mmdet's COCO base keeps persistent workers, whose random state would carry across epochs and
# make a resumed run differ; workers restarted every epoch are reseeded with it.
train_dataloader = dict(persistent_workers=False)
