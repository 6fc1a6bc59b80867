# FM-KT (logit level, DIST metric, MLP meta-encoder, N = 8), resnet50 -> resnet18, ImageNet-1k.
_base_ = [
    '../_base_/pairs/resnet50_resnet18_in1k.py',
    '../_base_/methods/fmkt_logits.py',
]

model = dict(
    type='FMKTDistill',
    architecture=dict(
        head=dict(
            _delete_=True,
            type='FlowMatchingClsHead',
            num_classes=1000,
            in_channels=512,
            flow={{_base_.flow}},
            ce_weight=1.0,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
    distiller={{_base_.distiller}})
