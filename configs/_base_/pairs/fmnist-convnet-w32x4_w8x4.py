# The embedded Fashion-MNIST benchmark's `wide` pair: a wider teacher (base width 32), same depth -> the 4-conv
# student of ../students/fmnist-convnet_w8x4.py. The benchmark builds every method on this pair
# from the method files in ../methods and the settings in benchmarks/classification/configs.py;
# its teachers are served from their cached logits (and last-stage maps).
_base_ = ['../students/fmnist-convnet_w8x4.py']
teacher_channels = 128
teacher = dict(
    _scope_='mmpretrain',
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', to_rgb=False, mean=[72.94], std=[90.02]),
    backbone=dict(
        type='FMNISTConvNet', widths=(32, 32, 64, 128), strides=(2, 1, 2, 1),
        convs_per_stage=1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=teacher_channels,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
model = dict(teacher=teacher)
