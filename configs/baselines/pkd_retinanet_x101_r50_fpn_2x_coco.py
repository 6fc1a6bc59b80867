# PKD (Cao et al., 2022): Pearson-correlation feature imitation on the FPN outputs, RetinaNet
# X-101-64x4d -> R-50, loss weight 10 on the first 4 FPN levels (MMRazor's PKD recipe).
_base_ = ['../_base_/pairs/retinanet_x101_r50_fpn_2x_coco.py']

pkd_weight = 10
levels = (0, 1, 2, 3)
model = dict(
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        distill_losses={
            f'loss_pkd_fpn{i}': dict(type='PKDLoss', loss_weight=pkd_weight)
            for i in levels
        },
        loss_forward_mappings={
            f'loss_pkd_fpn{i}': dict(
                preds_S=dict(from_student=True, recorder='fpn', data_idx=i),
                preds_T=dict(from_student=False, recorder='fpn', data_idx=i))
            for i in levels
        }))
