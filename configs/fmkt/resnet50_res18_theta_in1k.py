# FM-KT^Theta by folding, resnet50 -> resnet18, ImageNet-1k: FM-KT as resnet50_res18_in1k.py with
# an affine meta-encoder (LinearMetaEncoder). Training and validation use the N-step flow head;
# `tools/convert_fmkt_ckpt_to_student.py CONFIG CKPT OUT --theta` then folds the flow and the
# step classifier into the student's plain linear head, so the deployed student is an ordinary
# ResNet-18 that gives the N-step ensemble's logits exactly, with no inference overhead.
_base_ = ['./resnet50_res18_in1k.py']

model = dict(
    architecture=dict(
        head=dict(flow=dict(meta_encoder=dict(_delete_=True, type='LinearMetaEncoder')))))
