# ViTKD alone (no logit term), DeiT-III-S -> DeiT-T, ImageNet-1k. Not trained here.
_base_ = [
    '../_base_/pairs/deit3-small_deit-tiny_in1k.py',
    '../_base_/methods/vitkd.py',
]
model = dict(distiller={{_base_.vitkd_distiller}})
