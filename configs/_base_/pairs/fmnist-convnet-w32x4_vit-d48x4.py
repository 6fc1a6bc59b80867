# The embedded Fashion-MNIST benchmark's `cnn-vit` pair: the CNN teacher of the `wide` pair
# (../teachers/fmnist-convnet_w32x4.py: base width 32, 4 convs) -> the ViT student of
# ../students/fmnist-vit_d48x4.py. The teacher's logits are its linear head's (head.fc), the
# student's its ViT head's last layer (head.layers.head). The benchmark serves the teacher from
# its cached logits; no token-level method runs here (a CNN teacher has no tokens).
_base_ = ['../students/fmnist-vit_d48x4.py', '../teachers/fmnist-convnet_w32x4.py']
teacher_logits_source = 'head.fc'
model = dict(teacher={{_base_.teacher}})
