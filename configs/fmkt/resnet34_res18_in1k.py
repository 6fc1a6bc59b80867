# FM-KT (logit level, DIST metric, MLP meta-encoder, N = 8), resnet34 -> resnet18, ImageNet-1k.
_base_ = [
    '../_base_/pairs/resnet34_resnet18_in1k.py',
    '../_base_/methods/fmkt_logits.py',
]

model = dict(
    type='FMKTDistill',
    architecture=dict(head={{_base_.flow_cls_head}}),  # num_classes, in_channels: the student's
    distiller={{_base_.distiller}})
