# FM-KT on the FPN, the parts shared by every detection pair: a flow (4 Euler steps, rectified
# flow, one-block MLP meta-encoder) on each of the first 4 FPN levels of the student, whose
# transported maps feed the student's heads; every step's estimate (entry 0 of the flow's output)
# is scored with PKD against the teacher's FPN output of that level; an EMA (decay 0.999) of the
# flows is used for evaluation and saved. A pair config wraps its neck in FlowFPN with `flow` and
# `levels`, and sets the loss weight of each level (MMRazor's PKD weights: 6 for Faster R-CNN,
# 10 for RetinaNet).
levels = (0, 1, 2, 3)
flow = dict(
    type='FlowMatchingConnector',
    schedule=dict(type='RectifiedFlowSchedule'),
    meta_encoder=dict(type='MLPMetaEncoder', num_blocks=1),
    num_steps=4)
fpn_student_recorders = {
    f'flow{i}': dict(type='ModuleOutputs', source=f'neck.flows.{i}')
    for i in levels
}
fpn_teacher_recorders = dict(fpn=dict(type='ModuleOutputs', source='neck'))
fpn_loss_forward_mappings = {
    f'loss_fmkt_fpn{i}': dict(
        preds=dict(from_student=True, recorder=f'flow{i}', data_idx=0),
        target=dict(from_student=False, recorder='fpn', data_idx=i))
    for i in levels
}
fmkt_fpn_hooks = [dict(type='EpochSeedHook'), dict(type='FlowEMAHook', momentum=0.001)]
