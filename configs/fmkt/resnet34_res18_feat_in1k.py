# FM-KT at feature level (+ KD on logits), resnet34 -> resnet18, ImageNet-1k: see
# ../_base_/methods/fmkt_features.py. Evaluation runs the student with its flow neck (N = 8;
# change with --cfg-options model.architecture.neck.flow.test_num_steps=4).
_base_ = [
    '../_base_/pairs/resnet34_resnet18_in1k.py',
    '../_base_/methods/fmkt_features.py',
]

model = dict(
    type='FMKTDistill',
    architecture=dict(
        neck=dict(
            _delete_=True,
            type='FlowMatchingNeck',
            in_channels=512,
            with_pool=True,
            flow={{_base_.feature_flow}})),
    distiller={{_base_.distiller}})
