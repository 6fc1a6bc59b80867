# OFM-KT (online FM-KT, no pretrained teacher): ResNet-18 with a flow head (MLP meta-encoder,
# N = 8); every step gets label-smoothed CE (0.1) and is pulled towards the detached ensemble.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs32.py',
    '../_base_/schedules/fmkt_in1k_100e.py',
    'mmpretrain::_base_/default_runtime.py',
    '../_base_/students/resnet18_in1k.py',
    '../_base_/heads/flow_cls_head.py',
]
custom_imports = dict(imports=['fmkt_plugin'], allow_failed_imports=False)
train_dataloader = dict(batch_size=64)  # x 8 GPUs = 512

model = dict(
    _scope_='mmrazor',
    type='OFMKT',
    data_preprocessor=dict(
        type='ImgDataPreprocessor', bgr_to_rgb=True,
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375]),
    architecture=dict(
        head=dict(
            _delete_=True,
            type='FlowMatchingClsHead',
            num_classes=1000,
            in_channels=512,
            flow={{_base_.flow}},
            topk=(1, 5))),
    distill_loss=dict(type='FMKTLoss', metric=dict(type='KLDivergence', tau=1, loss_weight=1.0)),
    label_smoothing=0.1)
