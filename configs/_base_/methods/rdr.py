# RDR (Yao et al., AAAI 2024) as OUR READING of its abstract and of a public summary (no public
# code): the last conv of the student's last block (ResNet-18 layer4.1.conv2 + bn2) becomes 4
# re-parameterisable linear branches (3x3, 1x1, 3x3, 1x1 conv + BN; the first a copy of the
# original, the others start at zero). The partial sums F_1 .. F_4 (plus the block's identity:
# pre-activation block outputs) are scored with MSE against points of the rectified path from
# the detached F_1 (t=1) to the teacher's layer4 map projected to the student (TeacherProjector:
# BN + 1x1 conv), at the grid times 3/4, 1/2, 1/4, 0 assigned by a fresh random permutation per
# sample and iteration (shuffle sampling). Target-guided term (our guess): every partial sum,
# read by the student's own classifier (ReLU, global pooling, head.fc with detached weights), is
# scored with the cross-entropy of the ground-truth label, weight 1. After training the branches
# fold into one conv: the exported student is the plain ResNet-18. Vanilla KD on the logits is
# kept alongside: `distiller` extends kd.py's.
_base_ = ['./kd.py']

rep = dict(
    conv='backbone.layer4.1.conv2',
    norm='backbone.layer4.1.bn2',
    residual='backbone.layer4.1',
    kernel_sizes=(3, 1, 3, 1),
    zero_init_extra=True)

distiller = dict(
    student_recorders=dict(
        partials=dict(type='ModuleOutputs', source='backbone.layer4.1.conv2.partials'),
        gt_labels=dict(type='ModuleInputs', source='head.loss_module'),
        fc_weight=dict(type='Parameter', source='head.fc.weight'),
        fc_bias=dict(type='Parameter', source='head.fc.bias')),
    teacher_recorders=dict(feat=dict(type='ModuleOutputs', source='backbone.layer4')),
    connectors=dict(proj=dict(type='TeacherProjector', in_channels=512, out_channels=512)),
    distill_losses=dict(
        loss_rdr=dict(
            type='RDRLoss',
            schedule='rectified',
            metric='mse',
            loss_weight=1.0,
            sampling='shuffle',
            guide_weight=1.0,
            guide_act='relu')),
    loss_forward_mappings=dict(
        loss_rdr=dict(
            preds=dict(from_student=True, recorder='partials'),
            target=dict(from_student=False, recorder='feat', connector='proj'),
            gt_labels=dict(from_student=True, recorder='gt_labels', data_idx=1),
            fc_weight=dict(from_student=True, recorder='fc_weight'),
            fc_bias=dict(from_student=True, recorder='fc_bias'))))
