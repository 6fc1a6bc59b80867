# Vanilla KD (Hinton et al.): KL divergence between student and teacher logits.
distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=1, loss_weight=3)),
    loss_forward_mappings=dict(
        loss_kl=dict(
            preds_S=dict(from_student=True, recorder='fc'),
            preds_T=dict(from_student=False, recorder='fc'))))
