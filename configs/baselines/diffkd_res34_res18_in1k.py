# DiffKD, ResNet-34 -> ResNet-18 on ImageNet-1k, as its authors run it (their "B1" setting,
# 72.20 top-1 with both branches): the method part is ../_base_/methods/diffkd.py (feature
# branch on layer4 with a 1024-channel auto-encoder latent + logit branch, every weight 1,
# CE weight 1, no KD on the raw logits).
#
# Their recipe differs from the FM-KT recipe of the pair base only where set here: a total
# batch of 256 (8 GPUs x 32) at lr 0.1 (the same lr per sample as 512 at 0.2) and no weight
# decay on 1-D parameters (BatchNorm weights and biases, all biases). Shared with the base:
# SGD nesterov, momentum 0.9, wd 1e-4, 100 epochs, lr x0.1 at 30/60/90, no warm-up, no label
# smoothing. They train in fp32: run without --amp.
# The denoisers are used in training only: the student evaluated and exported is the plain
# ResNet-18.
_base_ = ['../_base_/pairs/resnet34_resnet18_in1k.py', '../_base_/methods/diffkd.py']
model = dict(type='DiffKDDistill', distiller={{_base_.distiller}})

train_dataloader = dict(batch_size=32)  # x 8 GPUs = 256
optim_wrapper = dict(
    optimizer=dict(lr=0.1),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
auto_scale_lr = dict(base_batch_size=256)
