# Normalized KD (Yang et al., ICCV 2023, yzd-v/cls_KD) on logits, the logit term ViTKD's authors
# run next to ViTKD (their DeiT configs: temperature 1, gamma 1): the target class's
# teacher-weighted log-likelihood and gamma T^2 x the cross-entropy of the renormalised non-target
# distributions; needs the ground-truth labels.
distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(
        fc=dict(type='ModuleOutputs', source='head.fc'),
        gt_labels=dict(type='ModuleInputs', source='head.loss_module')),
    teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_nkd=dict(type='NKDLoss', tau=1.0, gamma=1.0, loss_weight=1.0)),
    loss_forward_mappings=dict(
        loss_nkd=dict(
            preds_S=dict(from_student=True, recorder='fc'),
            preds_T=dict(from_student=False, recorder='fc'),
            gt_labels=dict(recorder='gt_labels', from_student=True, data_idx=1))))
