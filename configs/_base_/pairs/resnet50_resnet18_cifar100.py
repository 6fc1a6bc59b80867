# CIFAR-100, ResNet-50 (teacher) -> ResNet-18 (student), CIFAR stems (mmpretrain ResNet_CIFAR):
# mmpretrain data and runtime, FM-KT's CIFAR recipe for every method (baselines included).
_base_ = [
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    '../schedules/fmkt_cifar_240e.py',
    'mmpretrain::_base_/default_runtime.py',
]
custom_imports = dict(imports=['fmkt_plugin'], allow_failed_imports=False)

norm = dict(mean=[129.304, 124.070, 112.434], std=[68.170, 65.392, 70.418])
teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/resnet/resnet50_b16x8_cifar100_20210528-67b58a1b.pth'  # noqa: E501

model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(type='ImgDataPreprocessor', bgr_to_rgb=False, **norm),
    architecture=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        data_preprocessor=dict(type='ClsDataPreprocessor', to_rgb=False, num_classes=100, **norm),
        backbone=dict(type='ResNet_CIFAR', depth=18, num_stages=4, out_indices=(3, ),
                      style='pytorch'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=100,
            in_channels=512,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
    teacher=dict(cfg_path='mmpretrain::resnet/resnet50_8xb16_cifar100.py', pretrained=False),
    teacher_ckpt=teacher_ckpt)

find_unused_parameters = True
