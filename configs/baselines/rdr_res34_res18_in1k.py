# RDR (our reading, see ../_base_/methods/rdr.py), ResNet-34 -> ResNet-18 on ImageNet-1k, with
# FM-KT's ImageNet recipe. tools/convert_fmkt_ckpt_to_student.py folds the branches: the
# exported student is the plain ResNet-18.
_base_ = ['../_base_/pairs/resnet34_resnet18_in1k.py', '../_base_/methods/rdr.py']
model = dict(type='RDRDistill', rep={{_base_.rep}}, distiller={{_base_.distiller}})
