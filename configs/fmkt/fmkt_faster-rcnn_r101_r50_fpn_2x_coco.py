# FM-KT on the FPN, Faster R-CNN R-101 -> R-50 (COCO, 2x): flows on FPN levels 0-3 feed the
# student's RPN and RoI heads (../_base_/methods/fmkt_fpn.py); PKD per step with flow weight 6
# (averaged over the steps); lr 0.02 with the pair's gradient clipping, as for PKD.
_base_ = ['../_base_/pairs/faster-rcnn_r101_r50_fpn_2x_coco.py', '../_base_/methods/fmkt_fpn.py']

model = dict(
    type='FMKTFpnDistill',
    architecture=dict(
        neck=dict(
            _delete_=True,
            type='FlowFPN',
            neck={{_base_.model.architecture.neck}},
            flow={{_base_.flow}},
            flow_levels={{_base_.levels}})),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders={{_base_.fpn_student_recorders}},
        teacher_recorders={{_base_.fpn_teacher_recorders}},
        distill_losses={
            f'loss_fmkt_fpn{i}': dict(type='FMKTLoss', metric=dict(type='PKDLoss'), loss_weight=6)
            for i in (0, 1, 2, 3)
        },
        loss_forward_mappings={{_base_.fpn_loss_forward_mappings}}))

custom_hooks = {{_base_.fmkt_fpn_hooks}}
