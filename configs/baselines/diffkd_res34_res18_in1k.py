# DiffKD, ResNet-34 -> ResNet-18 on ImageNet-1k, with FM-KT's ImageNet recipe (as every method
# here). See ../_base_/methods/diffkd.py. The denoiser is used in training only: the student
# evaluated and exported is the plain ResNet-18.
_base_ = ['../_base_/pairs/resnet34_resnet18_in1k.py', '../_base_/methods/diffkd.py']
model = dict(type='DiffKDDistill', distiller={{_base_.distiller}})
