"""The authors' preset (configs/_base_/methods/fmkt_authors.py) against the FM-KT authors'
logit-level ``FlowAlignModule`` (shaoshitong/FM-KT-DeiT, mmcls/models/classifiers/common.py),
written here from their formulas with plain torch ops on shared weights and the same random
draws: loss, step logits, inference prediction and every gradient agree to 1e-12 in float64,
for N = 1, 2, 4, 8, the KD and DIST metrics, the MLP and the conv meta-encoders, and
``second_kd``. Each of the preset's options switched back to our default changes the result.
"""
import copy
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmpretrain.structures import DataSample

from fmkt_plugin.models.heads import FlowMatchingClsHead
from fmkt_plugin.models.losses import FMKTLoss

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRESET = Config.fromfile(osp.join(ROOT, 'configs/_base_/methods/fmkt_authors.py'))
B, C, K, S = 6, 8, 5, 7  # batch, student channels, classes, the expanded map's side

# ------------------------------------------------------------------------------------------
# the reference: their FlowAlignModule (logit_based), forward, loss and inference
# ------------------------------------------------------------------------------------------


def _sinusoid(t, dim):
    """Their timestep embedding: raw t, float32 frequencies, [cos, sin]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None] * freqs.to(t.dtype)[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _ln2d(x, w, b):
    return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1], ), w, b).permute(0, 3, 1, 2)


def _velocity(p, x, encoder):
    if encoder == 'mlp':  # blocks of LN(x + W2 ReLU(W1 x)), 1x1 convs without bias
        for blk in p['blocks']:
            x = _ln2d(x + F.conv2d(F.relu(F.conv2d(x, blk['w1'])), blk['w2']), blk['ln_w'],
                      blk['ln_b'])
        return x
    # conv: SiLU, 3x3 conv, GroupNorm(1), SiLU, 3x3 conv, no biases
    h = F.conv2d(F.silu(x), p['conv1'], padding=1)
    h = F.group_norm(h, 1, p['gn_w'], p['gn_b'])
    return F.conv2d(F.silu(h), p['conv2'], padding=1)


def _fc(w, b, x):  # AdaptiveAvgPool2d(1), Flatten, Linear
    return F.linear(x.mean(dim=(2, 3)), w, b)


def _kd(s, t, tem=4.0):  # their KDLoss(temperature=4, alpha=0, beta=1)
    return tem**2 * F.kl_div(F.log_softmax(s / tem, 1), F.softmax(t / tem, 1),
                             reduction='batchmean')


def _pearson(a, b, eps=1e-5):
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + eps)


def _dist(s, t, beta=2.0, gamma=2.0, tem=1.0):  # their DISTLoss for loss_type 'dist'
    ys, yt = (s / tem).softmax(1), (t / tem).softmax(1)
    inter = tem**2 * (1 - _pearson(ys, yt).mean())
    intra = tem**2 * (1 - _pearson(ys.t(), yt.t()).mean())
    return beta * inter + gamma * intra


def reference(p, feature, teacher, target, steps, align, encoder, second_kd, training,
              dirac_ratio=1.0, weight=1.0):
    """Their forward: ``(loss, prediction, step outputs)``."""
    # a pooled feature is expanded to S x S (their DeiT head); a map is used as it is (CIFAR)
    sf = feature[..., None, None].expand(-1, -1, S, S) if feature.dim() == 2 else feature
    teacher = teacher.clone()
    n_dirac = int((1 - dirac_ratio) * teacher.shape[0])
    teacher[:n_dirac][torch.randperm(n_dirac)] = teacher[:n_dirac].clone()
    if not training and second_kd:
        return None, _fc(p['copy_w'], p['copy_b'], sf), []
    x, outputs, loss = sf, [], 0.0
    for i in reversed(range(1, steps + 1)):
        t = torch.ones(feature.shape[0], dtype=feature.dtype) * i / steps
        emb = F.linear(F.relu(F.linear(_sinusoid(t, C), p['te_w1'], p['te_b1'])), p['te_w2'],
                       p['te_b2'])
        v = _velocity(p, x + emb.view(-1, C, 1, 1), encoder)
        x = x - v / steps
        out = _fc(p['fc_w'], p['fc_b'], sf - v)
        outputs.append(out)
        if training:
            loss = loss + (align(out, teacher) + F.cross_entropy(out, target)) * weight / steps
    ensemble = torch.stack(outputs).mean(0)
    if training and second_kd:
        light = _fc(p['copy_w'], p['copy_b'], sf)
        loss = loss + (align(light, ensemble.detach()) + F.cross_entropy(light, target)) * weight
    return (loss if training else None), ensemble, outputs


# ------------------------------------------------------------------------------------------
# the plugin under the preset
# ------------------------------------------------------------------------------------------


def _merge(base: dict, options: dict) -> dict:
    cfg = Config(dict(node=copy.deepcopy(base)))
    cfg.merge_from_dict({f'node.{k}': v for k, v in options.items()})
    return cfg.to_dict()['node']


CONV = dict(_delete_=True, type='ConvMetaEncoder', bias=False, zero_init_out=False,
            time_embed_dim=None, time_embed=dict(time_scale=1, order='cos_sin', activation='relu'))
KD_METRIC = dict(type='KLDivergence', tau=4.0, loss_weight=1.0)


def build(steps, metric, encoder, second_kd, head_options=None, loss_options=None):
    """The preset's head and FMKTLoss at ``C`` channels and ``K`` classes, in float64."""
    head_cfg = _merge(PRESET.flow_cls_head.to_dict(), {
        'num_classes': K, 'in_channels': C, 'flow.num_steps': steps,
        'flow.test_num_steps': steps})
    if encoder == 'conv':
        head_cfg = _merge(head_cfg, {'flow.meta_encoder': CONV})
    align = PRESET.align.to_dict() if metric == 'dist' else dict(KD_METRIC)
    if second_kd:
        head_cfg['theta'] = dict(PRESET.second_kd.to_dict(), metric=align)
    head_cfg = _merge(head_cfg, head_options or {})
    head_cfg.pop('type')
    loss_cfg = _merge(PRESET.distiller.distill_losses.loss_fmkt.to_dict(), {'metric': dict(
        _delete_=True, **align)})
    loss_cfg = _merge(loss_cfg, loss_options or {})
    loss_cfg.pop('type')
    torch.manual_seed(0)
    head = FlowMatchingClsHead(**head_cfg).double()
    for param in head.parameters():  # random, well away from any zero init
        torch.nn.init.normal_(param, std=0.3)
    return head, FMKTLoss(**loss_cfg).double()


def shared(head, encoder):
    """The plugin's parameters under their names in the reference."""
    enc = head.flow.meta_encoder
    te = enc.time_embed.mlp
    p = dict(te_w1=te[0].weight, te_b1=te[0].bias, te_w2=te[2].weight, te_b2=te[2].bias,
             fc_w=head.step_head.fc.weight, fc_b=head.step_head.fc.bias)
    if encoder == 'mlp':
        p['blocks'] = [dict(w1=b.fc1.weight, w2=b.fc2.weight, ln_w=b.norm.weight,
                            ln_b=b.norm.bias) for b in enc.blocks]
    else:
        p.update(conv1=enc.body[1].weight, gn_w=enc.body[2].weight, gn_b=enc.body[2].bias,
                 conv2=enc.body[4].weight)
    if head.theta_fc is not None:
        p.update(copy_w=head.theta_fc.fc.weight, copy_b=head.theta_fc.fc.bias)
    return p


def _flat(p):
    out = []
    for value in p.values():
        out += [t for blk in value for t in blk.values()] if isinstance(value, list) else [value]
    return out


def plugin(head, loss, feature, teacher, target, training):
    """The plugin's loss (head losses + FMKTLoss on the recorded step logits), prediction and
    step logits."""
    head.train(training)
    loss.train(training)
    recorded = []
    hook = head.step_head.register_forward_hook(lambda m, i, o: recorded.append(o))
    try:
        samples = [DataSample().set_gt_label(int(y)) for y in target]
        if training:
            losses = head.loss((feature, ), samples)
            total = sum(losses.values()) + loss(recorded[0], teacher)
            return total, recorded[0].mean(0), recorded[0]
        return None, head((feature, )), recorded[0] if recorded else None
    finally:
        hook.remove()


def _inputs(map_size=None):
    gen = torch.Generator().manual_seed(1)
    shape = (B, C) if map_size is None else (B, C, map_size, map_size)
    feature = torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(B, K, generator=gen, dtype=torch.float64) * 2
    target = torch.randint(0, K, (B, ), generator=gen)
    return feature, teacher, target


def _compare(steps, metric, encoder, second_kd, head_options=None, loss_options=None,
             dirac_ratio=1.0, map_size=None):
    """Largest differences (loss, steps, prediction, gradients) between the plugin and the
    reference, training and eval."""
    head, loss = build(steps, metric, encoder, second_kd, head_options, loss_options)
    params = shared(head, encoder)
    ref_params = {k: ([{n: t.detach().clone().requires_grad_() for n, t in blk.items()}
                       for blk in v] if isinstance(v, list) else
                      v.detach().clone().requires_grad_()) for k, v in params.items()}
    align = _dist if metric == 'dist' else _kd
    feature, teacher, target = _inputs(map_size)
    ref_feature = feature.detach().clone().requires_grad_()
    torch.manual_seed(7)
    ours, ours_pred, ours_steps = plugin(head, loss, feature, teacher, target, True)
    torch.manual_seed(7)
    theirs, theirs_pred, theirs_steps = reference(ref_params, ref_feature, teacher, target,
                                                  steps, align, encoder, second_kd, True,
                                                  dirac_ratio=dirac_ratio)
    grads = torch.autograd.grad(ours, [feature] + _flat(params))
    ref_grads = torch.autograd.grad(theirs, [ref_feature] + _flat(ref_params))
    diffs = dict(loss=(ours - theirs).abs().item(),
                 steps=(ours_steps - torch.stack(theirs_steps)).abs().max().item(),
                 train_pred=(ours_pred - theirs_pred).abs().max().item(),
                 grads=max((a - b).abs().max().item() for a, b in zip(grads, ref_grads)))
    with torch.no_grad():
        _, ours_eval, _ = plugin(head, loss, feature, teacher, target, False)
        _, theirs_eval, _ = reference(ref_params, ref_feature, teacher, target, steps, align,
                                      encoder, second_kd, False)
    diffs['eval_pred'] = (ours_eval - theirs_eval).abs().max().item()
    assert torch.isfinite(ours) and ours.abs() > 1e-3
    return diffs


@pytest.mark.parametrize('second_kd', [False, True], ids=['flow', 'second_kd'])
@pytest.mark.parametrize('encoder', ['mlp', 'conv'])
@pytest.mark.parametrize('metric', ['kd', 'dist'])
@pytest.mark.parametrize('steps', [1, 2, 4, 8])
def test_preset_matches_the_authors_flow_align_module(steps, metric, encoder, second_kd):
    diffs = _compare(steps, metric, encoder, second_kd)
    assert max(diffs.values()) < 1e-12, diffs


def test_preset_matches_with_the_authors_dirac_draws():
    """r = 0.5: the first int((1 - r) B) teacher rows permuted by the same torch.randperm draw
    (the plugin on a copy, the authors' code in place)."""
    diffs = _compare(4, 'dist', 'mlp', False, loss_options={'dirac_ratio': 0.5},
                     dirac_ratio=0.5)
    assert max(diffs.values()) < 1e-12, diffs


@pytest.mark.parametrize('encoder', ['mlp', 'conv'])
def test_preset_matches_the_authors_map_level_flow(encoder):
    """Their CIFAR form: the flow on the student's pre-pool map (a student without the
    pooling neck), each step's estimate pooled by the step head."""
    diffs = _compare(4, 'dist', encoder, True, map_size=4)
    assert max(diffs.values()) < 1e-12, diffs


#: each preset option set back to our default (and, for the dirac count, to the random draw)
SWITCHED_BACK = {
    'dist_eps': dict(metric='dist', loss_options={'metric.eps': 1e-8},
                     head_options={}),
    'estimate': dict(head_options={'flow.estimate': 'interpolant'}),
    'spatial_expand': dict(encoder='conv', head_options={'spatial_expand': None}),
    'time_embed': dict(head_options={'flow.meta_encoder.time_embed': dict(
        _delete_=True, time_scale=1000, order='sin_cos', activation='silu')}),
    'mlp_block': dict(head_options={'flow.meta_encoder.block': 'prenorm'}),
    'conv_bias': dict(encoder='conv', head_options={'flow.meta_encoder.bias': True}),
    'second_kd_detached': dict(second_kd=True, head_options={'theta.detach_feature': True}),
    'second_kd_metric': dict(second_kd=True, head_options={'theta.metric': None}),
    'dirac_count': dict(loss_options={'dirac_ratio': 0.5, 'dirac_count': 'random'},
                        dirac_ratio=0.5),
}


@pytest.mark.parametrize('option', sorted(SWITCHED_BACK))
def test_each_option_switched_back_changes_the_result(option):
    case = dict(steps=4, metric='dist', encoder='mlp', second_kd=False)
    case.update(copy.deepcopy(SWITCHED_BACK[option]))
    if option == 'time_embed':
        head, _ = build(4, 'dist', 'mlp', False, case['head_options'])
        emb = head.flow.meta_encoder.time_embed
        assert (emb.time_scale, emb.order) == (1000, 'sin_cos')
    diffs = _compare(**case)
    assert max(diffs.values()) > 1e-6, diffs
