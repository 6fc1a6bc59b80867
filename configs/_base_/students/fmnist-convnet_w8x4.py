# The student of the embedded Fashion-MNIST benchmark (benchmarks/classification): mmpretrain's
# ImageClassifier on FMNISTConvNet (registered by benchmarks.classification.models), 4 convs of
# widths 8, 8, 16, 32 (28x28 -> 14x14 -> 7x7), global pooling and a linear head; 6.5k parameters.
# Methods swap its head or neck by merging, as with ../students/resnet18_in1k.py.
custom_imports = dict(
    imports=['fmkt_plugin', 'benchmarks.classification.models'], allow_failed_imports=False)
num_classes = 10
norm = dict(mean=[72.94], std=[90.02])  # pixel statistics of the training images (0..255)
last_stage = 'backbone.stages.3'  # the recorders' source of the last-stage map
student_channels = 32
student = dict(
    _scope_='mmpretrain',
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', to_rgb=False, **norm),
    backbone=dict(
        type='FMNISTConvNet', widths=(8, 8, 16, 32), strides=(2, 1, 2, 1), convs_per_stage=1),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=num_classes,
        in_channels=student_channels,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor', to_rgb=False, **norm),
    architecture=student)
