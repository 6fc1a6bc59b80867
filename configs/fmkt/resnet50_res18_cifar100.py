# FM-KT (logit level, DIST metric, MLP meta-encoder, N = 8), ResNet-50 -> ResNet-18, CIFAR-100.
_base_ = ['../_base_/pairs/resnet50_resnet18_cifar100.py', '../_base_/methods/fmkt_logits.py']

model = dict(
    type='FMKTDistill',
    architecture=dict(head={{_base_.flow_cls_head}}),  # num_classes, in_channels: the student's
    distiller={{_base_.distiller}})
