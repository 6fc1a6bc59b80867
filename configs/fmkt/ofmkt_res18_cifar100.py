# OFM-KT (online FM-KT, no pretrained teacher): CIFAR ResNet-18 with a flow head, CIFAR-100.
_base_ = [
    'mmpretrain::_base_/datasets/cifar100_bs16.py',
    '../_base_/schedules/fmkt_cifar_240e.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/heads/flow_cls_head.py',
]
custom_imports = dict(imports=['fmkt_plugin'], allow_failed_imports=False)

norm = dict(mean=[129.304, 124.070, 112.434], std=[68.170, 65.392, 70.418])
model = dict(
    _scope_='mmrazor',
    type='OFMKT',
    data_preprocessor=dict(type='ImgDataPreprocessor', bgr_to_rgb=False, **norm),
    architecture=dict(
        _scope_='mmpretrain',
        type='ImageClassifier',
        data_preprocessor=dict(type='ClsDataPreprocessor', to_rgb=False, num_classes=100, **norm),
        backbone=dict(type='ResNet_CIFAR', depth=18, num_stages=4, out_indices=(3, ),
                      style='pytorch'),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='FlowMatchingClsHead',
            num_classes=100,
            in_channels=512,
            flow={{_base_.flow}},
            topk=(1, 5))),
    distill_loss=dict(type='FMKTLoss', metric=dict(type='KLDivergence', tau=1, loss_weight=1.0)),
    label_smoothing=0.1)
