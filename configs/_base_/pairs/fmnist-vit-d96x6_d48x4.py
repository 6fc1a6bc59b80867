# The embedded Fashion-MNIST benchmark's `vit` pair: a ViT teacher of width 96 and 6 layers
# (3 heads, MLP width 384; 679k parameters) -> the ViT student of
# ../students/fmnist-vit_d48x4.py (width 48, 4 layers), both on 7x7 patches. The benchmark serves
# the teacher from its cached logits and, for the token-level methods (ViTKD), the cached
# outputs of `teacher_features`: the first two layers and the final norm, which ViTKD's
# recorders read (../methods/vitkd.py).
_base_ = ['../students/fmnist-vit_d48x4.py']
teacher_channels = 96
teacher_features = ['backbone.layers.0', 'backbone.layers.1', 'backbone.ln1']
teacher = dict(
    _scope_='mmpretrain',
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', to_rgb=False, mean=[72.94], std=[90.02]),
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=teacher_channels, num_layers=6, num_heads=3,
                  feedforward_channels=384),
        img_size=28, patch_size=7, in_channels=1),
    neck=None,
    head=dict(
        type='VisionTransformerClsHead',
        num_classes=10,
        in_channels=teacher_channels,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
model = dict(teacher=teacher)
