# FM-KT (logit level, DIST metric, MLP meta-encoder, N = 8), resnet50 -> mbv2, ImageNet-1k.
_base_ = [
    '../_base_/pairs/resnet50_mobilenet-v2_in1k.py',
    '../_base_/methods/fmkt_logits.py',
]

model = dict(
    type='FMKTDistill',
    architecture=dict(head={{_base_.flow_cls_head}}),  # num_classes, in_channels: the student's
    distiller={{_base_.distiller}})
