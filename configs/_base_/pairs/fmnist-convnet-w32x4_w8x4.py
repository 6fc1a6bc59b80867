# The embedded Fashion-MNIST benchmark's `wide` pair: a wider teacher (base width 32,
# ../teachers/fmnist-convnet_w32x4.py), same depth -> the 4-conv student of
# ../students/fmnist-convnet_w8x4.py. The benchmark builds every method on this pair from the
# method files in ../methods and the settings in benchmarks/classification/configs.py; its
# teachers are served from their cached logits (and last-stage maps).
_base_ = ['../students/fmnist-convnet_w8x4.py', '../teachers/fmnist-convnet_w32x4.py']
model = dict(teacher={{_base_.teacher}})
