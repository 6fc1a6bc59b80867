# Vanilla KD (KL at temperature 1, weight 1, next to the student's label-smoothed CE), DeiT-III-S
# -> DeiT-T, ImageNet-1k: kd.py's distiller on the ViT heads' last linear layer
# (head.layers.head). Not trained here.
_base_ = ['../_base_/pairs/deit3-small_deit-tiny_in1k.py']
model = dict(
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.layers.head')),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.layers.head')),
        distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=1, loss_weight=1.0)),
        loss_forward_mappings=dict(
            loss_kl=dict(
                preds_S=dict(from_student=True, recorder='fc'),
                preds_T=dict(from_student=False, recorder='fc')))))
