# FM-KT on the FPN, Fashion-MNIST scenes, RetinaNet R-34 (width 32) -> R-18 (width 16): the
# recipe of fmkt_retinanet_x101_r50_fpn_2x_coco.py on the CPU-sized pair. A flow (4 Euler steps,
# rectified flow, MLP meta-encoder) on each of the first 4 FPN levels of the student; the
# transported maps feed the student's head; every step's estimate is scored with PKD against the
# teacher's FPN output of that level (flow weight 10, averaged over the steps). The flows are
# averaged for evaluation (FlowEMAHook); the COCO decay of 0.999 spans ~1000 of its ~180k
# iterations, here the momentum is scaled to the few hundred iterations of this schedule.
_base_ = [
    '../_base_/pairs/retinanet_r34w_r18_fpn_fmnist-det.py', '../_base_/methods/fmkt_fpn.py'
]

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
            f'loss_fmkt_fpn{i}': dict(type='FMKTLoss', metric=dict(type='PKDLoss'), loss_weight=10)
            for i in (0, 1, 2, 3)
        },
        loss_forward_mappings={{_base_.fpn_loss_forward_mappings}}))

custom_hooks = [dict(type='EpochSeedHook'), dict(type='FlowEMAHook', momentum=0.02)]
