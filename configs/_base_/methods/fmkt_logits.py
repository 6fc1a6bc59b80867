# Logit-level FM-KT: a flow head on the student's pooled feature (MLP meta-encoder, rectified
# flow, N = 8 serial Euler steps in training and at test), every step's logits scored with DIST
# against the teacher's logits; the student predicts with the mean of the 8 step logits.
# The head and its flow are in ../heads/flow_cls_head.py (`flow_cls_head`, `flow`).
_base_ = ['../heads/flow_cls_head.py']
distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(steps=dict(type='ModuleOutputs', source='head.step_head')),
    teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(
        loss_fmkt=dict(
            type='FMKTLoss',
            metric=dict(
                type='DISTLoss', inter_loss_weight=1.0, intra_loss_weight=1.0, tau=1,
                loss_weight=1.0),
            loss_weight=2.0)),
    loss_forward_mappings=dict(
        loss_fmkt=dict(
            preds=dict(from_student=True, recorder='steps'),
            target=dict(from_student=False, recorder='fc'))))
