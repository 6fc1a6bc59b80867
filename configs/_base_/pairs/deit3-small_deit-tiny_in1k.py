# ImageNet-1k, DeiT-III-Small (teacher, pretrained on ImageNet-21k, fine-tuned on 1k) -> DeiT-Tiny
# (student), the FM-KT authors' ViT pair (shaoshitong/FM-KT-DeiT). The student trains by the
# DeiT recipe of mmpretrain's deit-tiny config: 300 epochs, AdamW lr 1e-3 (batch 1024), 20-epoch
# warm-up, RandAugment, random erasing, Mixup 0.8 / CutMix 1.0, label smoothing 0.1, gradient
# clipping at 5. Every method on this pair uses this recipe, baselines included.
_base_ = [
    'mmpretrain::_base_/datasets/imagenet_bs64_swin_224.py',
    'mmpretrain::_base_/schedules/imagenet_bs1024_adamw_swin.py',
    'mmpretrain::_base_/default_runtime.py',
    '../students/deit-tiny_in1k.py',
]
custom_imports = dict(imports=['fmkt_plugin'], allow_failed_imports=False)
train_dataloader = dict(batch_size=128)  # x 8 GPUs = 1024
# Reseed python/numpy/torch from (seed, epoch) before every training epoch: an epoch's random
# augmentations do not depend on what ran before it, so --resume is exact (see EpochSeedHook).
custom_hooks = [dict(type='EpochSeedHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmclassification/v0/deit3/deit3-small-p16_in21k-pre_3rdparty_in1k_20221009-dcd90827.pth'  # noqa: E501

model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    data_preprocessor=dict(
        type='mmpretrain.ClsDataPreprocessor',
        num_classes=1000,
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True,
        batch_augments=dict(augments=[
            dict(type='Mixup', alpha=0.8),
            dict(type='CutMix', alpha=1.0),
        ])),
    teacher=dict(cfg_path='mmpretrain::deit3/deit3-small-p16_64xb64_in1k.py', pretrained=False),
    teacher_ckpt=teacher_ckpt)

# the DeiT schedule's parameter-wise settings (no weight decay on norms, biases, tokens)
optim_wrapper = dict(
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0)
        }),
    clip_grad=dict(max_norm=5.0))
find_unused_parameters = True
