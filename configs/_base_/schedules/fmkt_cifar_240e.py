# The CIFAR-100 recipe of FM-KT's authors: SGD lr 0.1 (momentum 0.9, wd 5e-4), total batch 128
# (8 GPUs x 16, mmpretrain's CIFAR loaders), 240 epochs, lr x0.1 at 150/180/210.
_base_ = ['mmpretrain::_base_/schedules/cifar10_bs128.py']
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=240, val_interval=1)
auto_scale_lr = dict(base_batch_size=128)

# Reseed python/numpy/torch from (seed, epoch) before every training epoch: an epoch's random
# augmentations do not depend on what ran before it, so --resume is exact (see EpochSeedHook).
custom_hooks = [dict(type='EpochSeedHook')]
