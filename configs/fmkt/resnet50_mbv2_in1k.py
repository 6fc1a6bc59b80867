# FM-KT (logit level, DIST metric, MLP meta-encoder, N = 8), resnet50 -> mbv2, ImageNet-1k.
_base_ = [
    '../_base_/pairs/resnet50_mbv2_in1k.py',
    '../_base_/methods/fmkt_logits.py',
]

model = dict(
    type='FMKTDistill',
    architecture=dict(
        head=dict(
            _delete_=True,
            type='FlowMatchingClsHead',
            num_classes=1000,
            in_channels=1280,
            flow={{_base_.flow}},
            ce_weight=1.0,
            loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
            topk=(1, 5))),
    distiller={{_base_.distiller}})
