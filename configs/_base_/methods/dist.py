# DIST (Huang et al., NeurIPS 2022): inter- and intra-class Pearson correlation of the logits.
distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(
        loss_dist=dict(
            type='DISTLoss', inter_loss_weight=1.0, intra_loss_weight=1.0, tau=1,
            loss_weight=2)),
    loss_forward_mappings=dict(
        loss_dist=dict(
            logits_S=dict(from_student=True, recorder='fc'),
            logits_T=dict(from_student=False, recorder='fc'))))
