# DiffKD (Huang et al., NeurIPS 2023, "Knowledge Diffusion for Distillation") as its authors
# run it on ImageNet: two DiffKD instances, every weight 1.
#
# Feature branch (ResNet layer4, 7x7 at 224 px): the teacher's map is compressed by a linear
# auto-encoder (1x1 conv + BN encoder to a BN-normalised `ae_channels` latent, 1x1 conv decoder,
# reconstruction MSE); the student's map is mapped by a 1x1 conv to the latent's channels, mixed
# with noise at the level the NoiseAdapter predicts and denoised by 5 DDIM steps (timesteps
# 400 .. 0 of a 1000-step linear-beta schedule) of a light denoiser (DiffKDDenoiser: two
# residual bottlenecks) trained on the teacher's latent with the noise-prediction loss; a 1x1
# conv + BN projects the result, which is matched to the teacher's latent with MSE.
# Loss: MSE + diffusion loss + reconstruction loss.
#
# Logit branch: the same on the logits, kernel 1 (the denoiser a 1x1-conv MLP), no auto-encoder;
# the denoised student logits are matched to the teacher's logits with KL divergence (tau 1).
# Loss: KL + diffusion loss. There is no KD on the raw logits: the logit branch replaces it.
#
# `ae_channels` 1024 is the authors' setting for this pair (teacher map of 512 channels). For
# other pairs set the channels (`student_channels`, `teacher_channels`; `num_classes` of the
# logit branch).
num_classes = 1000

diffkd_connector = dict(
    type='DiffKDConnector',
    student_channels=512,
    teacher_channels=512,
    kernel_size=3,
    num_steps=5,
    ae_channels=1024,
    proj_norm=True)

diffkd_logit_connector = dict(
    type='DiffKDConnector',
    student_channels=num_classes,
    teacher_channels=num_classes,
    kernel_size=1,
    num_steps=5,
    ae_channels=None,
    proj_norm=True)

distiller = dict(
    type='ConfigurableDistiller',
    student_recorders=dict(
        feat=dict(type='ModuleOutputs', source='backbone.layer4'),
        fc=dict(type='ModuleOutputs', source='head.fc')),
    teacher_recorders=dict(
        feat=dict(type='ModuleOutputs', source='backbone.layer4'),
        fc=dict(type='ModuleOutputs', source='head.fc')),
    distill_losses=dict(
        loss_diffkd=dict(
            type='DiffKDLoss',
            connector=diffkd_connector,
            metric='mse',
            loss_weight=1.0,
            diffusion_weight=1.0,
            ae_weight=1.0),
        loss_diffkd_logits=dict(
            type='DiffKDLoss',
            connector=diffkd_logit_connector,
            metric=dict(type='KLDivergence', tau=1, loss_weight=1.0),
            loss_weight=1.0,
            diffusion_weight=1.0)),
    loss_forward_mappings=dict(
        loss_diffkd=dict(
            preds_S=dict(from_student=True, recorder='feat'),
            preds_T=dict(from_student=False, recorder='feat')),
        loss_diffkd_logits=dict(
            preds_S=dict(from_student=True, recorder='fc'),
            preds_T=dict(from_student=False, recorder='fc'))))
