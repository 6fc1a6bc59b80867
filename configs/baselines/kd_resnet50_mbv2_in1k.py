_base_ = ['../_base_/pairs/resnet50_mobilenet-v2_in1k.py', '../_base_/methods/kd.py']
model = dict(distiller={{_base_.distiller}})
