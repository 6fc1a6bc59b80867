# ImageNet-1k, ResNet-50 (teacher) -> MobileNet-V2 (student): mmpretrain data and runtime,
# FM-KT's ImageNet recipe for every method (baselines included), so results compare like for like.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../schedules/fmkt_in1k_100e.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['fmkt_plugin'], allow_failed_imports=False)
train_dataloader = dict(batch_size=64)  # x 8 GPUs = 512

norm = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_8xb32_in1k_20210831-ea4938fc.pth'  # noqa: E501

model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(type='ImgDataPreprocessor', bgr_to_rgb=True, **norm),
    # The student is written out (not cfg_path) so FM-KT configs can swap its head or neck.
    architecture=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        data_preprocessor=dict(type='ClsDataPreprocessor', to_rgb=True, num_classes=1000, **norm),
        backbone=dict(type='MobileNetV2', widen_factor=1.0),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=1280,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet50_8xb32_in1k.py', pretrained=False),
    teacher_ckpt=teacher_ckpt)

find_unused_parameters = True
