# FM-KT^Theta, auxiliary form, resnet50 -> resnet18, ImageNet-1k: the student keeps a plain
# linear head (the flow head's `theta_fc`) trained exactly as MMRazor's KD student (CE + KL
# towards the teacher's logits, tau 1, weight 3), and carries the FM-KT flow head of
# resnet50_res18_in1k.py as an auxiliary head; both heads train the backbone. Validation scores
# the plain head, and `tools/convert_fmkt_ckpt_to_student.py CONFIG CKPT OUT --theta` exports
# the backbone with that head: an ordinary ResNet-18, no inference overhead.
# On the Fashion-MNIST benchmark this form kept about half of FM-KT's gain over KD: retention
# 0.55 [0.23, 0.92] on the test split, 5 paired seeds (README, docs/benchmark/theta.md).
_base_ = ['./resnet50_res18_in1k.py']

model = dict(
    architecture=dict(
        head=dict(
            theta=dict(
                tau=1.0,
                kd_weight=0.0,  # the plain head's KD is the distiller's loss_plain_kd below
                ce_weight=1.0,
                detach_feature=False,
                use_for_inference=True))),
    distiller=dict(
        # theta_fc returns (1, B, K): FMKTLoss over that single step is the KD loss
        student_recorders=dict(plain=dict(type='ModuleOutputs', source='head.theta_fc')),
        distill_losses=dict(
            loss_plain_kd=dict(
                type='FMKTLoss', metric=dict(type='KLDivergence', tau=1, loss_weight=3.0))),
        loss_forward_mappings=dict(
            loss_plain_kd=dict(
                preds=dict(from_student=True, recorder='plain'),
                target=dict(from_student=False, recorder='fc')))))
