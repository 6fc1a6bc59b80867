# Logit-level FM-KT as its authors run it (FlowAlignModule of shaoshitong/FM-KT-DeiT, their
# DeiT-III-S -> DeiT-T recipe): fmkt_logits.py with their choices. Each choice below is an option
# of the plugin; tests/test_fmkt_authors_reference.py checks the preset against their formulas, to
# 1e-12 in float64. docs/advanced_guides/maths.md lists what differs from our defaults.
#   - DIST with beta = gamma = 2, temperature 1 and the correlations' epsilon 1e-5 (DISTMetric);
#   - the MLP meta-encoder: 2 blocks LN(x + W2 ReLU(W1 x)), no biases, no output layer, random
#     init (block='authors', zero_init_out=False);
#   - the time embedding: a sinusoid of the raw time with as many features as the student's
#     pre-logit channels, [cos, sin], then Linear-ReLU-Linear (time_embed_dim=None);
#   - the teacher estimate z_s - v (estimate='displacement');
#   - the pooled feature expanded to 7x7 before the flow (spatial_expand=7; it matters only for a
#     3x3 conv encoder, e.g. ConvMetaEncoder(bias=False, zero_init_out=False, ...));
#   - the dirac ratio's count: the first int((1 - r) B) targets (r = 1 here: no pair moves);
#   - N = 8 serial Euler steps in training and at test, CE on every step at weight 1.
# `second_kd` is the authors' second_kd: a plain linear head on the student's (not detached)
# feature, trained with the flow's metric towards the detached ensemble plus CE at the flow's
# weight, that replaces the flow at test. Switch it on with
#     model = dict(architecture=dict(head=dict(theta={{_base_.second_kd}})))
_base_ = ['./fmkt_logits.py']

align = dict(
    type='DISTMetric', eps=1e-5, inter_loss_weight=2.0, intra_loss_weight=2.0, tau=1.0,
    loss_weight=1.0)
flow_cls_head = dict(
    flow=dict(
        type='FlowMatchingConnector',
        meta_encoder=dict(
            _delete_=True,
            type='MLPMetaEncoder',
            block='authors',
            num_blocks=2,
            zero_init_out=False,
            time_embed_dim=None,
            time_embed=dict(time_scale=1, order='cos_sin', activation='relu')),
        estimate='displacement',
        num_steps=8,
        test_num_steps=8),
    spatial_expand=7,
    ce_weight=1.0)
second_kd = dict(
    metric=align, kd_weight=1.0, ce_weight=1.0, detach_feature=False, use_for_inference=True)
distiller = dict(
    distill_losses=dict(
        loss_fmkt=dict(
            metric=dict(_delete_=True, **align),
            loss_weight=1.0,
            dirac_ratio=1.0,
            dirac_count='first')))
