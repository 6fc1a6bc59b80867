# The embedded Fashion-MNIST benchmark's `deep` pair: a deeper teacher (base width 16, 2 convs
# per stage: 8 convs) -> the 4-conv student of ../students/fmnist-convnet_w8x4.py. The teacher of
# ./fmnist-convnet-w32x4_w8x4.py with other widths and depth.
_base_ = ['./fmnist-convnet-w32x4_w8x4.py']
teacher_channels = 64
teacher = dict(
    backbone=dict(widths=(16, 16, 32, 64), convs_per_stage=2),
    head=dict(in_channels=teacher_channels))
model = dict(teacher=teacher)
