# The DeiT-Tiny student of the ImageNet-1k DeiT-III-S -> DeiT-T pair: mmpretrain's
# configs/deit/deit-tiny_4xb256_in1k.py model, written out (not cfg_path) so that methods can swap
# its head by merging. Its VisionTransformerClsHead reads the class token; its final linear layer
# is head.layers.head. Mixup and CutMix run in the distillation model's data preprocessor
# (../pairs/deit3-small_deit-tiny_in1k.py), where the teacher sees the same mixed images.
model = dict(
    architecture=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        backbone=dict(type='VisionTransformer', arch='deit-tiny', img_size=224, patch_size=16),
        neck=None,
        head=dict(
            type='VisionTransformerClsHead',
            num_classes=1000,
            in_channels=192,
            loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original')),
        init_cfg=[
            dict(type='TruncNormal', layer='Linear', std=.02),
            dict(type='Constant', layer='LayerNorm', val=1., bias=0.),
        ]))
