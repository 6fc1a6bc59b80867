# The embedded Fashion-MNIST benchmark's `cnn-vit` pair: the CNN teacher of the `wide` pair
# (./fmnist-convnet-w32x4_w8x4.py: base width 32, 4 convs) -> the ViT student of
# ../students/fmnist-vit_d48x4.py. The teacher's logits are its linear head's (head.fc), the
# student's its ViT head's last layer (head.layers.head). The benchmark serves the teacher from
# its cached logits; no token-level method runs here (a CNN teacher has no tokens).
_base_ = ['../students/fmnist-vit_d48x4.py']
teacher_channels = 128
teacher_logits_source = 'head.fc'
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
