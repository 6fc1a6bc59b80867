# FM-KT (logit level, DIST metric, MLP meta-encoder, N = 8), ResNet-50 -> ResNet-18, CIFAR-100.
_base_ = ['../_base_/pairs/resnet50_resnet18_cifar100.py', '../_base_/methods/fmkt_logits.py']

model = dict(
    type='FMKTDistill',
    architecture=dict(
        head=dict(
            _delete_=True,
            type='FlowMatchingClsHead',
            num_classes=100,
            in_channels=512,
            flow={{_base_.flow}},
            ce_weight=1.0,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
    distiller={{_base_.distiller}})
