# PKD (Cao et al., 2022) on the Fashion-MNIST scenes, RetinaNet R-34 (width 32) -> R-18 (width
# 16): the recipe of pkd_retinanet_x101_r50_fpn_2x_coco.py (Pearson-correlation imitation of the
# first 4 FPN levels, loss weight 10) on the CPU-sized pair.
_base_ = ['../_base_/pairs/retinanet_r34w_r18_fpn_fmnist-det.py']

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
