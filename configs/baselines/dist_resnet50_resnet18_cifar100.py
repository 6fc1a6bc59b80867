_base_ = ['../_base_/pairs/resnet50_resnet18_cifar100.py', '../_base_/methods/dist.py']
model = dict(distiller={{_base_.distiller}})
