# The ViT student of the embedded Fashion-MNIST benchmark (benchmarks/classification):
# mmpretrain's VisionTransformer with patches of 7x7 on the 28x28 grey images (a 4x4 grid of 16
# patch tokens and the class token), 4 layers of width 48, 3 heads, MLP width 192, and a
# VisionTransformerClsHead on the class token (its linear layer: head.layers.head); 117k
# parameters. Methods swap its head by merging, as with ./fmnist-convnet_w8x4.py.
custom_imports = dict(
    imports=['fmkt_plugin', 'benchmarks.classification.models'], allow_failed_imports=False)
num_classes = 10
norm = dict(mean=[72.94], std=[90.02])  # pixel statistics of the training images (0..255)
logits_source = 'head.layers.head'  # the recorders' source of the logits (student and teacher)
student_channels = 48
student = dict(
    _scope_='mmpretrain',
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', to_rgb=False, **norm),
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=student_channels, num_layers=4, num_heads=3,
                  feedforward_channels=192),
        img_size=28, patch_size=7, in_channels=1),
    neck=None,
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=num_classes,
        in_channels=student_channels,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(type='mmpretrain.ClsDataPreprocessor', to_rgb=False, **norm),
    architecture=student)
