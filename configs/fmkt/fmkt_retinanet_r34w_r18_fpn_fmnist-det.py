# FM-KT on the FPN, Fashion-MNIST scenes, RetinaNet R-34 (width 32) -> R-18 (width 16): the
# recipe of fmkt_retinanet_x101_r50_fpn_2x_coco.py on the CPU-sized pair. A flow (4 Euler steps,
# rectified flow, MLP meta-encoder) on each of the first 4 FPN levels of the student; the
# transported maps feed the student's head; every step's estimate is scored with PKD against the
# teacher's FPN output of that level (flow weight 10, averaged over the steps). The flows are
# averaged for evaluation (FlowEMAHook); the COCO decay of 0.999 spans ~1000 of its ~180k
# iterations, here the momentum is scaled to the few hundred iterations of this schedule.
_base_ = ['../_base_/pairs/retinanet_r34w_r18_fpn_fmnist-det.py']

flow_weight = 10
levels = (0, 1, 2, 3)
flow = dict(
    type='FlowMatchingConnector',
    schedule='rectified',
    meta_encoder=dict(type='mlp', num_blocks=1),
    num_steps=4)
model = dict(
    type='FMKTFpnDistill',
    architecture=dict(
        neck=dict(
            _delete_=True,
            type='FlowFPN',
            neck={{_base_.model.architecture.neck}},
            flow=flow,
            flow_levels=levels)),
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders={
            f'flow{i}': dict(type='ModuleOutputs', source=f'neck.flows.{i}')
            for i in levels
        },
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        distill_losses={
            f'loss_fmkt_fpn{i}': dict(
                type='FMKTLoss', metric=dict(type='PKDLoss'), loss_weight=flow_weight)
            for i in levels
        },
        loss_forward_mappings={
            f'loss_fmkt_fpn{i}': dict(
                preds=dict(from_student=True, recorder=f'flow{i}'),
                target=dict(from_student=False, recorder='fpn', data_idx=i))
            for i in levels
        }))

custom_hooks = [dict(type='EpochSeedHook'), dict(type='FlowEMAHook', momentum=0.02)]
