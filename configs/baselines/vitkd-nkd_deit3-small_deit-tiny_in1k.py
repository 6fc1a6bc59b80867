# ViTKD + NKD, DeiT-III-S -> DeiT-T, ImageNet-1k, as ViTKD's authors run it (yzd-v/cls_KD,
# deit-s3_distill_deit-t_img.py): ViTKD on the tokens (./vitkd_deit3-small_deit-tiny_in1k.py) and
# NKD (../_base_/methods/nkd.py: temperature 1, gamma 1) on the logits of the ViT heads' last
# linear layer (head.layers.head), next to the student's label-smoothed CE. Not trained here.
_base_ = [
    './vitkd_deit3-small_deit-tiny_in1k.py',
    '../_base_/methods/nkd.py',
]
model = dict(
    distiller=dict(
        student_recorders=dict(
            fc=dict(type='ModuleOutputs', source='head.layers.head'),
            gt_labels={{_base_.distiller.student_recorders.gt_labels}}),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.layers.head')),
        distill_losses={{_base_.distiller.distill_losses}},
        loss_forward_mappings={{_base_.distiller.loss_forward_mappings}}))
