# ViTKD (Yang et al., 2022, yzd-v/cls_KD) between two ViTs: the patch tokens of the student's
# first two layers mimic the teacher's (a linear map per layer, MSE sum / batch x alpha), and the
# teacher's last-layer tokens (after the final norm) are generated from the student's, half of
# them replaced by a mask token, by conv3x3-ReLU-conv3x3 on the token grid (MSE on the masked
# tokens / batch x beta / ratio). Settings of the authors' DeiT-III-S -> DeiT-T recipe: widths
# 192 -> 384, alpha 3e-5, beta 3e-6, ratio (their lambda) 0.5. The records hold the class token
# first (extra_tokens=1), which the loss drops. `vitkd_distiller` (not `distiller`), so that a
# config can extend a ViTKD config with another method file (see configs/fmkt/deit3-*).
vitkd_distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(
        low0=dict(type='ModuleOutputs', source='backbone.layers.0'),
        low1=dict(type='ModuleOutputs', source='backbone.layers.1'),
        high=dict(type='ModuleOutputs', source='backbone.ln1')),
    teacher_recorders=dict(
        low0=dict(type='ModuleOutputs', source='backbone.layers.0'),
        low1=dict(type='ModuleOutputs', source='backbone.layers.1'),
        high=dict(type='ModuleOutputs', source='backbone.ln1')),
    distill_losses=dict(
        loss_vitkd=dict(
            type='ViTKDLoss', student_dims=192, teacher_dims=384, alpha=3e-5, beta=3e-6,
            ratio=0.5, extra_tokens=1)),
    loss_forward_mappings=dict(
        loss_vitkd=dict(
            s_low0=dict(from_student=True, recorder='low0'),
            s_low1=dict(from_student=True, recorder='low1'),
            s_high=dict(from_student=True, recorder='high'),
            t_low0=dict(from_student=False, recorder='low0'),
            t_low1=dict(from_student=False, recorder='low1'),
            t_high=dict(from_student=False, recorder='high'))))
