# The CNN teacher of the embedded Fashion-MNIST benchmark's `wide` and `cnn-vit` pairs:
# mmpretrain's ImageClassifier on FMNISTConvNet (registered by benchmarks.classification.models)
# of widths 32, 32, 64, 128 (4 convs), global pooling and a linear head (head.fc); 103k
# parameters.
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
