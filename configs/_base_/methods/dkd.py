# Decoupled KD (Zhao et al., CVPR 2022) on logits; needs the ground-truth labels.
distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(
        fc=dict(type='ModuleOutputs', source='head.fc'),
        gt_labels=dict(type='ModuleInputs', source='head.loss_module')),
    teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(
        loss_dkd=dict(type='DKDLoss', tau=1, beta=0.5, loss_weight=1, reduction='mean')),
    loss_forward_mappings=dict(
        loss_dkd=dict(
            preds_S=dict(from_student=True, recorder='fc'),
            preds_T=dict(from_student=False, recorder='fc'),
            gt_labels=dict(recorder='gt_labels', from_student=True, data_idx=1))))
