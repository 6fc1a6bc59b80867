# COCO, RetinaNet X-101-64x4d (teacher) -> RetinaNet R-50 (student), both with FPN: mmdet's data,
# 2x schedule (lr 0.01) and runtime. The teacher runs backbone + neck only (FPN distillation).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py']
custom_imports = dict(imports=['fmkt_plugin'], allow_failed_imports=False)

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_x101_64x4d_fpn_1x_coco/retinanet_x101_64x4d_fpn_1x_coco_20200130-366f5af1.pth'  # noqa: E501

model = dict(
    _delete_=True,
    _scope_='mmrazor',
    type='FpnTeacherDistill',
    # The student is mmdet's RetinaNet R-50 FPN, taken part by part so that methods can swap its
    # neck; the distillation model uses the student's data preprocessor.
    architecture=dict(
        _scope_='mmdet',
        type='RetinaNet',
        data_preprocessor={{_base_.model.data_preprocessor}},
        backbone={{_base_.model.backbone}},
        neck={{_base_.model.neck}},
        bbox_head={{_base_.model.bbox_head}},
        train_cfg={{_base_.model.train_cfg}},
        test_cfg={{_base_.model.test_cfg}}),
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py', pretrained=False),
    teacher_ckpt=teacher_ckpt)

find_unused_parameters = True

# Reseed python/numpy/torch from (seed, epoch) before every training epoch: an epoch's random
# augmentations do not depend on what ran before it, so --resume is exact (see EpochSeedHook).
custom_hooks = [dict(type='EpochSeedHook')]
# mmdet's COCO base keeps persistent workers, whose random state would carry across epochs and
# make a resumed run differ; workers restarted every epoch are reseeded with it.
train_dataloader = dict(persistent_workers=False)
