# The FM-KT authors' DeiT recipe (shaoshitong/FM-KT-DeiT, deit-s3_distill_deit-t_img.py):
# DeiT-III-S -> DeiT-T on ImageNet-1k, ViTKD on the tokens (../baselines/vitkd_...) and FM-KT on
# the logits as the authors run it (../_base_/methods/fmkt_authors.py: DIST, a 2-block MLP
# meta-encoder, N = 8 in training and at test) in place of the student's head; the teacher's
# logits are its head's last linear layer. Not trained here.
_base_ = [
    '../baselines/vitkd_deit3-small_deit-tiny_in1k.py',
    '../_base_/methods/fmkt_authors.py',
]
model = dict(
    type='FMKTDistill',
    # the preset's flow head on DeiT-T's class token, with the student's label-smoothed CE on
    # every step (the authors score each step with the student's own classification loss)
    architecture=dict(
        head=dict(
            _delete_=True,
            type='FlowMatchingClsHead',
            num_classes=1000,
            in_channels=192,
            flow={{_base_.flow_cls_head.flow}},
            spatial_expand={{_base_.flow_cls_head.spatial_expand}},
            ce_weight=1.0,
            loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, mode='original'),
            topk=(1, 5))),
    distiller=dict(
        student_recorders=dict(steps=dict(type='ModuleOutputs', source='head.step_head')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.layers.head')),
        distill_losses=dict(loss_fmkt={{_base_.distiller.distill_losses.loss_fmkt}}),
        loss_forward_mappings=dict(loss_fmkt=dict(
            preds=dict(from_student=True, recorder='steps'),
            target=dict(from_student=False, recorder='fc')))))
