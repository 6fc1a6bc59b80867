# DiffKD (Huang et al., NeurIPS 2023, "Knowledge Diffusion for Distillation") on the last stage
# (ResNet layer4, 7x7 at 224 px): a light diffusion model (DiffKDDenoiser: two residual
# bottlenecks, time embedding) is trained on the teacher's layer4 map with the noise-prediction
# loss; the student's map (1x1 conv to the teacher's channels) is mixed with noise at the level
# the NoiseAdapter predicts and denoised by 5 DDIM steps (linear-beta schedule, 1000 timesteps);
# the denoised map is matched to the teacher's with MSE. Total DiffKD loss: MSE + diffusion loss
# (+ auto-encoder reconstruction when `ae_channels` is set; off here, both maps have 512
# channels). Vanilla KD on the logits is kept alongside: `distiller` extends the one of kd.py.
# Set `connector.student_channels` / `teacher_channels` for other pairs.
_base_ = ['./kd.py']

diffkd_connector = dict(
    type='DiffKDConnector',
    student_channels=512,
    teacher_channels=512,
    kernel_size=3,
    num_steps=5,
    ae_channels=None)

distiller = dict(
    student_recorders=dict(feat=dict(type='ModuleOutputs', source='backbone.layer4')),
    teacher_recorders=dict(feat=dict(type='ModuleOutputs', source='backbone.layer4')),
    distill_losses=dict(
        loss_diffkd=dict(
            type='DiffKDLoss',
            connector=diffkd_connector,
            metric='mse',
            loss_weight=1.0,
            diffusion_weight=1.0,
            ae_weight=1.0)),
    loss_forward_mappings=dict(
        loss_diffkd=dict(
            preds_S=dict(from_student=True, recorder='feat'),
            preds_T=dict(from_student=False, recorder='feat'))))
