# The FlowMatchingClsHead of logit-level FM-KT (the flow of ../methods/fmkt_logit_flow.py on the
# student's pooled feature, a linear step head, the mean of the N step logits as the prediction,
# CE on that mean). A config swaps the student's head for it by merging:
#     model = dict(architecture=dict(head={{_base_.flow_cls_head}}))
# No _delete_: num_classes and in_channels stay those of the student's LinearClsHead.
_base_ = ['../methods/fmkt_logit_flow.py']

flow_cls_head = dict(
    type='FlowMatchingClsHead',
    flow={{_base_.flow}},
    ce_weight=1.0,
    loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
    topk=(1, 5))
