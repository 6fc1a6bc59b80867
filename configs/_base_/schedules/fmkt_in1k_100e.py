# The ImageNet recipe of FM-KT's authors: SGD (nesterov) lr 0.2, wd 1e-4, total batch 512
# (8 GPUs x 64, set in the pair bases), 100 epochs, lr x0.1 at 30/60/90. They train with mixed
# precision: pass --amp to tools/train.py.
_base_ = ['mmpretrain::_base_/schedules/imagenet_bs256.py']
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=1e-4, nesterov=True))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
auto_scale_lr = dict(base_batch_size=512)

# Reseed python/numpy/torch from (seed, epoch) before every training epoch: an epoch's random
# augmentations do not depend on what ran before it, so --resume is exact (see EpochSeedHook).
custom_hooks = [dict(type='EpochSeedHook')]
