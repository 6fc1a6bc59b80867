"""The benchmark's methods, one record each: everything the planner, the ETA, the runner, the
report and the tune mode need about a method. Adding a method is one :class:`Method` entry in
:data:`REGISTRY` (and, to tune it, one grid in :data:`benchmarks.classification.tuning.GRID`).
"""
import copy
from dataclasses import dataclass
from functools import partial
from typing import Callable, Dict, List, Optional, Tuple, Union

from mmengine.config import Config

from .configs import (
    DEFAULT_FAMILY,
    PAIRS,
    family,
    merge,
    pair_hparams,
    pair_option,
    pair_part,
    picks_key,
    shipped,
    teacher_ref,
)
from .settings import apply_settings

__all__ = [
    'Method', 'REGISTRY', 'METHODS', 'get', 'applies', 'method_cfg', 'method_hparams',
    'method_picks'
]

Builder = Callable[[str, dict, dict], dict]


@dataclass(frozen=True)
class Method:
    """One method of the benchmark.

    Attributes:
        name: key (job ids, cache files, results).
        label: name in tables.
        short: name under a bar of the plot (may hold a line break).
        cost: ETA prior: cost of one epoch relative to the student alone's on the same device
            (rescaled by the measured speed once runs finish).
        teacher: needs the pair's teacher (teacher-free methods run once per seed and are
            listed under every pair).
        group: ``'reference'`` (no distillation), ``'baseline'`` (the methods FM-KT is
            compared with), ``'fmkt'`` (ours, candidates for "best FM-KT") or ``'variant'``
            (ours, reported but not a candidate).
        build: config builder ``(pair, hparams, teacher_args) -> model config dict``.
        versus: methods this one is compared with, paired by seed (this minus that).
        stage_of: method whose trained run this one starts from (its ``ensemble_logits`` and
            ``ckpt``); this one then trains ``theta_epochs``.
        deploy: how the deployed plain student is made from the trained one, evaluated in its
            place (its top-1 is the method's): ``'fold'`` (the affine flow folded into the
            linear head), ``'rdr'`` (RDR's branches folded into one convolution) or
            ``'theta'`` (the flow head's trained plain head ``theta_fc`` as the linear head).
        teacher_maps: the method reads the teacher's last-stage maps: the teacher job caches
            them with the logits and the method's teacher serves both
            (``CachedLogitsTeacher`` with ``maps_file``): no method runs a live teacher.
        lr_mult_key: key of ``HPARAMS['flow_lr_mult']`` for the flow's parameters.
        fixed: settings ``((path, value), ...)`` of this method, applied to ``HPARAMS`` before
            the tuned ones (paths as in :mod:`.tuning`, e.g. ``'theta.lr_scale'``);
            they enter only this method's hyperparameters (and cache key).
        tuned_as: take the tuned settings of this method (or of these methods, in order)
            first (its own, where it has a grid, on top).
        families: the student families (``configs.family``) of the pairs it runs on: the
            feature-map methods need a CNN's maps, the token methods a ViT's tokens.
    """

    name: str
    label: str
    short: str
    cost: float
    teacher: bool
    group: str
    build: Builder
    versus: Tuple[str, ...] = ()
    stage_of: Optional[str] = None
    deploy: Optional[str] = None
    teacher_maps: bool = False
    lr_mult_key: str = 'fmkt'
    fixed: Tuple[Tuple[str, object], ...] = ()
    tuned_as: Union[None, str, Tuple[str, ...]] = None
    families: Tuple[str, ...] = (DEFAULT_FAMILY, )


#: The shipped config files the methods are built from (relative to ``configs/``).
KD_FILE = '_base_/methods/kd.py'
DKD_FILE = '_base_/methods/dkd.py'
DIST_FILE = '_base_/methods/dist.py'
DIFFKD_FILE = '_base_/methods/diffkd.py'
RDR_FILE = '_base_/methods/rdr.py'
#: logit-level FM-KT: the flow head (``flow_cls_head``) and its distiller
FMKT_FILE = '_base_/methods/fmkt_logits.py'
#: feature-level FM-KT: the flow neck's flow (``feature_flow``) and its distiller (KD's too)
FMKT_FEATURES_FILE = '_base_/methods/fmkt_features.py'
#: where the feature-level flow neck is written out
FMKT_FEATURES_CONFIG = 'fmkt/resnet34_res18_feat_in1k.py'
#: FM-KT^Theta with a plain head trained by KD beside the flow head (auxiliary form)
THETA_AUX_CONFIG = 'fmkt/resnet50_res18_theta-aux_in1k.py'
OFMKT_CONFIG = 'fmkt/ofmkt_res18_in1k.py'
#: ViTKD (its distiller: ``vitkd_distiller``) and NKD, the logit term its authors run with it
VITKD_FILE = '_base_/methods/vitkd.py'
NKD_FILE = '_base_/methods/nkd.py'
#: where the shipped method files record the logits of a linear head
LINEAR_LOGITS = 'head.fc'


def _student(pair: str, ce_weight: float = 1.0) -> dict:
    """The pair's student (linear head), its CE weighted ``ce_weight``."""
    return merge(pair_part(pair, 'student'), {'head.loss.loss_weight': ce_weight})


def _logit_sources(pair: str) -> Tuple[str, str]:
    """Where ``pair``'s student and teacher heads put their logits: ``logits_source`` and
    ``teacher_logits_source`` of its pair base (``head.layers.head`` of a ViT's head; the
    teacher's default: the student's), ``head.fc`` where the base names none."""
    student = pair_option(pair, 'logits_source', LINEAR_LOGITS)
    return student, pair_option(pair, 'teacher_logits_source', student)


def _retarget_logits(distiller: dict, pair: str) -> dict:
    """``distiller`` with its recorders of a linear head's logits (``head.fc``, as the shipped
    method files write them) moved to where ``pair``'s heads put them."""
    sources = dict(zip(('student_recorders', 'teacher_recorders'), _logit_sources(pair)))
    if set(sources.values()) == {LINEAR_LOGITS}:
        return distiller
    distiller = copy.deepcopy(distiller)
    for side, source in sources.items():
        for recorder in (distiller.get(side) or {}).values():
            if recorder.get('source') == LINEAR_LOGITS:
                recorder['source'] = source
    return distiller


def _distill(algorithm: str, pair: str, student: dict, distiller: dict, teacher: dict) -> dict:
    """The pair base's distillation model (its preprocessor) with ``algorithm``, ``student``,
    ``distiller`` (its logit recorders where the pair's heads put the logits) and the teacher
    arguments ``teacher`` (a cached teacher serving the logits there too)."""
    if not teacher:
        raise ValueError(f'{algorithm}: this method needs a teacher (teacher_cache)')
    if algorithm == 'FMKTDistill' and 'teacher_ckpt' in teacher and not teacher['teacher_ckpt']:
        # a live teacher without weights (timing, tests): say that a random teacher is meant
        teacher = dict(teacher, allow_random_teacher=True)
    source = _logit_sources(pair)[1]
    cached = teacher.get('teacher')
    if source != LINEAR_LOGITS and isinstance(cached, dict) and \
            cached.get('type') == 'CachedLogitsTeacher':
        teacher = dict(teacher, teacher=dict(cached, logits_at=source))
    model = pair_part(pair, 'model')
    return dict(_scope_=model['_scope_'], type=algorithm,
                data_preprocessor=model['data_preprocessor'], architecture=student,
                distiller=_retarget_logits(distiller, pair), **teacher)


def _map_teacher(pair: str, teacher: dict) -> dict:
    """The teacher arguments of a method that reads the teacher's last-stage map
    (``teacher_maps``): the cached teacher when it serves maps, else (a live teacher's
    checkpoint, or none: tests, timing) a live teacher of the pair's architecture."""
    cached = teacher.get('teacher')
    if isinstance(cached, dict) and cached.get('maps_file'):
        return teacher
    return dict(teacher=pair_part(pair, 'teacher'), teacher_ckpt=teacher.get('teacher_ckpt'))


def _kl(hp: dict) -> dict:
    """KD's loss at the benchmark's settings: ``kd_weight`` x T^2 KL."""
    kd = hp['kd']
    return dict(type='KLDivergence', tau=kd['tau'], loss_weight=kd['kd_weight'])


def _dist_options(hp: dict) -> dict:
    """DIST's settings, as options of a shipped ``DISTLoss``."""
    d = hp['dist']
    return dict(tau=d['tau'], inter_loss_weight=d['inter'], intra_loss_weight=d['intra'],
                loss_weight=1.0)


def _kd_distiller(hp: dict, rel: str = KD_FILE) -> dict:
    """The ``distiller`` of ``rel`` (kd.py, or a file that extends it) with KD's settings."""
    return merge(shipped(rel, 'distiller'), {'distill_losses.loss_kl': _kl(hp)})


def build_student(pair: str, hp: dict, teacher: dict) -> dict:
    """The student alone (CE): the pair base's student."""
    return pair_part(pair, 'student')


def build_kd(pair: str, hp: dict, teacher: dict) -> dict:
    """Vanilla KD (kd.py): ``ce_weight`` CE + ``kd_weight`` T^2 KL."""
    return _distill('SingleTeacherDistill', pair, _student(pair, hp['kd']['ce_weight']),
                    _kd_distiller(hp), teacher)


#: Hidden width of the capacity control's MLP head (``kd_mlp``): 2 762 parameters on the
#: benchmark's 32-channel student, about the flow head's MLP block and output layer without its
#: time embedding (3 232).
MLP_HEAD_MID = 64


def build_kd_mlp(pair: str, hp: dict, teacher: dict) -> dict:
    """KD with a two-layer MLP head (mmpretrain ``StackedLinearClsHead``, ReLU) instead of the
    linear one: a capacity control for FM-KT's flow head, whose MLP block adds non-linear head
    capacity that no plain (linear-head) student has."""
    cfg = build_kd(pair, hp, teacher)
    head = cfg['architecture']['head']
    cfg['architecture']['head'] = dict(type='StackedLinearClsHead',
                                       num_classes=head['num_classes'],
                                       in_channels=head['in_channels'],
                                       mid_channels=[MLP_HEAD_MID], loss=head['loss'])
    cfg['distiller']['student_recorders']['fc']['source'] = 'head.layers.1.fc'
    return cfg


def build_dkd(pair: str, hp: dict, teacher: dict) -> dict:
    """DKD (dkd.py, MMRazor's ``DKDLoss``) + CE; the loss averaged over the batch
    (``batchmean``, MMRazor's default) at weight 1."""
    d = hp['dkd']
    distiller = merge(shipped(DKD_FILE, 'distiller'), {'distill_losses.loss_dkd': dict(
        tau=d['tau'], alpha=d['alpha'], beta=d['beta'], loss_weight=1.0,
        reduction='batchmean')})
    return _distill('SingleTeacherDistill', pair, _student(pair, d['ce_weight']), distiller,
                    teacher)


def build_dist(pair: str, hp: dict, teacher: dict) -> dict:
    """DIST (dist.py, MMRazor's ``DISTLoss``) + CE."""
    distiller = merge(shipped(DIST_FILE, 'distiller'),
                      {'distill_losses.loss_dist': _dist_options(hp)})
    return _distill('SingleTeacherDistill', pair, _student(pair, hp['dist']['ce_weight']),
                    distiller, teacher)


def _flow_student(pair: str, hp: dict, ce_weight: float = 1.0,
                  flow: Optional[dict] = None) -> dict:
    """The pair's student with the shipped flow head (``flow_cls_head`` of fmkt_logits.py,
    merged over the linear head as the shipped FM-KT configs merge it) and the benchmark's flow
    settings ``flow`` (default ``hp['flow']``) merged into its flow; with ``hp['flow_on'] ==
    'map'`` without neck, so that the flow runs on the last map and each step is pooled."""
    student = pair_part(pair, 'student')
    head = merge(student['head'], shipped(FMKT_FILE, 'flow_cls_head'))
    flow = copy.deepcopy(flow or hp['flow'])
    # inference at the trained N unless the settings say otherwise (a tune trial's N)
    flow.setdefault('test_num_steps', flow['num_steps'])
    student['head'] = merge(head, dict(ce_weight=ce_weight, flow=flow))
    if hp['flow_on'] == 'map':
        student['neck'] = None
    return student


def _fmkt(pair: str, hp: dict, teacher: dict, metric: dict, ce_weight: float,
          flow: Optional[dict] = None) -> dict:
    """FM-KT on the logits (fmkt_logits.py) with ``metric`` as the per-step metric (replacing
    the shipped one) at ``hp['metric_weight']``."""
    distiller = merge(shipped(FMKT_FILE, 'distiller'), {'distill_losses.loss_fmkt': dict(
        metric=dict(_delete_=True, **metric), loss_weight=hp['metric_weight'])})
    return _distill('FMKTDistill', pair, _flow_student(pair, hp, ce_weight, flow), distiller,
                    teacher)


def build_fmkt_kd(pair: str, hp: dict, teacher: dict) -> dict:
    """FM-KT with the KD loss as the per-step metric."""
    return _fmkt(pair, hp, teacher, _kl(hp), hp['kd']['ce_weight'])


def build_fmkt_dist(pair: str, hp: dict, teacher: dict) -> dict:
    """FM-KT with the DIST loss as the per-step metric: the shipped metric (DIST) with the
    benchmark's DIST settings."""
    metric = merge(shipped(FMKT_FILE, 'distiller.distill_losses.loss_fmkt.metric'),
                   _dist_options(hp))
    return _fmkt(pair, hp, teacher, metric, hp['dist']['ce_weight'])


#: The FM-KT authors' preset (their logit-level FlowAlignModule), read part by part.
FMKT_AUTHORS_FILE = '_base_/methods/fmkt_authors.py'
#: The parts of the authors' preset that differ from the benchmark's FM-KT here, each a set of
#: options of the flow head (``head``) or of the flow's ``FMKTLoss`` (``loss``); the
#: ``authors`` methods switch on all of them (``AUTHORS_PARTS``) or one.
#:   block: 2 blocks LN(x + W2 ReLU(W1 x)), no biases, no output layer, random init;
#:   time_embed: the sinusoid of the raw time with C features, [cos, sin], Linear-ReLU-Linear;
#:   estimate: the teacher estimate z_s - v;
#:   dist: their DIST (beta = gamma = 2, T = 1, the correlations' epsilon 1e-5);
#:   dist_eps: only the epsilon 1e-5 of their DIST, the benchmark's DIST otherwise;
#:   expand: the pooled feature expanded to 7x7, and the first-count dirac assignment (neither
#:       changes the MLP flow here: no pair moves at their ratio 1).
AUTHORS_PARTS = ('block', 'time_embed', 'estimate', 'dist', 'expand')


def _authors_options(part: str, metric: str) -> Tuple[dict, dict]:
    """``(head options, loss options)`` of one part of the authors' preset, read from
    fmkt_authors.py."""
    head = shipped(FMKT_AUTHORS_FILE, 'flow_cls_head')
    encoder = head['flow']['meta_encoder']
    loss = shipped(FMKT_AUTHORS_FILE, 'distiller.distill_losses.loss_fmkt')
    if part == 'block':
        return {'flow.meta_encoder': {k: encoder[k] for k in
                                      ('block', 'num_blocks', 'zero_init_out')}}, {}
    if part == 'time_embed':
        return {'flow.meta_encoder': {k: encoder[k] for k in ('time_embed_dim', 'time_embed')}}, {}
    if part == 'estimate':
        return {'flow.estimate': head['flow']['estimate']}, {}
    if part == 'expand':
        return ({'spatial_expand': head['spatial_expand']},
                {k: loss[k] for k in ('dirac_ratio', 'dirac_count')})
    if part in ('dist', 'dist_eps'):
        if metric != 'dist':
            raise ValueError(f'authors part {part!r} is one of the DIST metric')
        align = shipped(FMKT_AUTHORS_FILE, 'align')
        return {}, {'metric': dict(_delete_=True, **align) if part == 'dist' else
                    dict(type=align['type'], eps=align['eps'])}
    raise ValueError(f'unknown part {part!r} of the authors\' preset')


def build_fmkt_authors(pair: str, hp: dict, teacher: dict, metric: str = 'kd',
                       parts: Tuple[str, ...] = AUTHORS_PARTS) -> dict:
    """FM-KT (``metric``: ``'kd'`` or ``'dist'``) at the benchmark's settings with ``parts`` of
    the authors' preset (``configs/_base_/methods/fmkt_authors.py``) switched on: all of them,
    or one, to see what each does."""
    cfg = build_fmkt_kd(pair, hp, teacher) if metric == 'kd' else \
        build_fmkt_dist(pair, hp, teacher)
    for part in parts:
        if part == 'dist' and metric != 'dist':
            continue  # the KD metric of the benchmark is the authors' 'kl' (T = 4)
        head_opts, loss_opts = _authors_options(part, metric)
        cfg['architecture']['head'] = merge(cfg['architecture']['head'], head_opts)
        losses = cfg['distiller']['distill_losses']
        losses['loss_fmkt'] = merge(losses['loss_fmkt'], loss_opts)
    return cfg


#: The feature-level flow's MLP hidden width for ``fmkt_feat_narrow``: the map's channels
#: divided by this (as fmkt_features.py: 128 for 512); ``fmkt_feat`` runs the full width.
NARROW_HIDDEN_RATIO = 4


def build_fmkt_feat(pair: str, hp: dict, teacher: dict, hidden_ratio: int = 1) -> dict:
    """Feature-level FM-KT (fmkt_features.py, its neck as resnet34_res18_feat_in1k.py writes
    it): KD on the logits (KD's settings) + a ``FlowMatchingNeck`` on the student's last map
    whose every step's estimate is scored with MSE against the teacher's last-stage map
    projected to the student's channels (``TeacherProjector``); the transported map feeds the
    student's pooling and linear head. ``hidden_ratio`` > 1 sets the MLP's hidden width to
    ``channels // hidden_ratio``; 1 runs it at full width (the MLP's own default)."""
    if not teacher:
        raise ValueError('fmkt_feat: this method needs a teacher')
    s_ch = pair_part(pair, 'student_channels')
    last = pair_part(pair, 'last_stage')
    encoder = shipped(FMKT_FEATURES_FILE, 'feature_flow.meta_encoder')
    encoder.pop('hidden_channels')
    if hidden_ratio > 1:
        encoder['hidden_channels'] = max(1, s_ch // hidden_ratio)
    student = _student(pair, hp['kd']['ce_weight'])
    student['neck'] = merge(shipped(FMKT_FEATURES_CONFIG, 'model.architecture.neck'), {
        'in_channels': s_ch, 'flow.meta_encoder': dict(_delete_=True, **encoder)})
    distiller = merge(_kd_distiller(hp, FMKT_FEATURES_FILE), {
        'teacher_recorders.feat.source': last,
        'connectors.proj': dict(in_channels=pair_part(pair, 'teacher_channels'),
                                out_channels=s_ch)})
    return _distill('FMKTDistill', pair, student, distiller, _map_teacher(pair, teacher))


def build_fmkt_fold(pair: str, hp: dict, teacher: dict) -> dict:
    """FM-KT (KD metric) with an affine meta-encoder, to be folded into a linear head."""
    flow = dict(hp['flow'], meta_encoder=dict(_delete_=True, **hp['fold']['meta_encoder']))
    return _fmkt(pair, hp, teacher, _kl(hp), hp['kd']['ce_weight'], flow)


def build_fmkt_joint(pair: str, hp: dict, teacher: dict, detach_feature: bool = True) -> dict:
    """FM-KT (KD metric) + a plain linear head trained jointly with KD towards the detached
    ensemble + CE (FM-KT^Theta, joint form), on the detached student feature (the plain head
    does not train the backbone) or, ``detach_feature=False``, training the backbone too."""
    cfg = build_fmkt_kd(pair, hp, teacher)
    # eval-mode forward returns the plain head's logits: the trained model scores as deployed
    cfg['architecture']['head']['theta'] = dict(copy.deepcopy(hp['joint']),
                                                detach_feature=detach_feature,
                                                use_for_inference=True)
    return cfg


def build_fmkt_aux(pair: str, hp: dict, teacher: dict) -> dict:
    """FM-KT^Theta, auxiliary form (resnet50_res18_theta-aux_in1k.py): the KD baseline's plain
    head with FM-KT (KD metric) as an auxiliary head. The plain linear head (the flow head's
    ``theta_fc``) takes KD's loss (``ce_weight`` CE + ``kd_weight`` T^2 KL towards the
    teacher, the config's ``loss_plain_kd``), the flow head FM-KT's, and both train the
    backbone; the deployed student is the backbone with the plain head."""
    cfg = build_fmkt_kd(pair, hp, teacher)
    cfg['architecture']['head']['theta'] = merge(
        shipped(THETA_AUX_CONFIG, 'model.architecture.head.theta'),
        dict(tau=hp['kd']['tau'], ce_weight=hp['kd']['ce_weight']))
    aux = shipped(THETA_AUX_CONFIG, 'model.distiller')
    distiller = cfg['distiller']
    distiller['student_recorders']['plain'] = aux['student_recorders']['plain']
    distiller['distill_losses']['loss_plain_kd'] = merge(
        aux['distill_losses']['loss_plain_kd'], {'metric': _kl(hp)})
    distiller['loss_forward_mappings']['loss_plain_kd'] = \
        aux['loss_forward_mappings']['loss_plain_kd']
    return cfg


def build_ofmkt(pair: str, hp: dict, teacher: dict) -> dict:
    """OFM-KT (ofmkt_res18_in1k.py): no teacher, the detached step ensemble is the target,
    scored per step with KL at OFM-KT's settings, next to the label-smoothed CE."""
    o = hp['ofmkt']
    shipped_model = shipped(OFMKT_CONFIG, 'model')
    model = pair_part(pair, 'model')
    return dict(_scope_=shipped_model['_scope_'], type=shipped_model['type'],
                data_preprocessor=model['data_preprocessor'],
                architecture=_flow_student(pair, hp),
                distill_loss=merge(shipped_model['distill_loss'], {'metric': dict(
                    tau=o['tau'], loss_weight=o['kd_weight'])}),
                label_smoothing=o['label_smooth'], ce_weight=1.0)


def _rival_teacher(pair: str, teacher: dict) -> dict:
    args = _map_teacher(pair, teacher)
    # without a checkpoint (the cached teacher, cache keys, timing) no weights are loaded
    return dict(teacher=copy.deepcopy(args['teacher']), teacher_ckpt=args.get('teacher_ckpt'),
                allow_random_teacher=args.get('teacher_ckpt') is None)


def build_diffkd(pair: str, hp: dict, teacher: dict) -> dict:
    """DiffKD (Huang et al., NeurIPS 2023) as its authors run it (diffkd.py with
    ``HPARAMS['diffkd']``, ``docs/rivals.md``): a feature branch on the last-stage maps and a
    logit branch (kernel 1, KL) in place of KD."""
    d = hp['diffkd']
    s_ch = pair_part(pair, 'student_channels')
    last = pair_part(pair, 'last_stage')
    k = pair_part(pair, 'num_classes')
    steps = dict(num_steps=d['num_steps'], proj_norm=d['proj_norm'])
    distiller = merge(shipped(DIFFKD_FILE, 'distiller'), {
        'student_recorders.feat.source': last,
        'teacher_recorders.feat.source': last,
        'distill_losses.loss_diffkd': dict(
            connector=dict(student_channels=s_ch,
                           teacher_channels=pair_part(pair, 'teacher_channels'),
                           kernel_size=d['kernel_size'],
                           ae_channels=int(round(d['ae_student_ratio'] * s_ch)), **steps),
            loss_weight=d['loss_weight'], diffusion_weight=d['diffusion_weight'],
            ae_weight=d['ae_weight']),
        'distill_losses.loss_diffkd_logits': dict(
            connector=dict(student_channels=k, teacher_channels=k, **steps),
            metric=dict(tau=d['logit_tau']),
            loss_weight=d['logit_weight'], diffusion_weight=d['diffusion_weight'])})
    return _distill('DiffKDDistill', pair, _student(pair, d['ce_weight']), distiller,
                    _rival_teacher(pair, teacher))


def build_rdr(pair: str, hp: dict, teacher: dict) -> dict:
    """RDR (Yao et al., AAAI 2024), our reading (rdr.py with ``HPARAMS['rdr']``,
    ``docs/rivals.md``): branches on the student's last conv scored along the path to the
    projected teacher map (shuffle sampling, target-guided term) + KD's logit loss; the branches
    are folded into the plain student that is evaluated (``deploy='rdr'``). The benchmark's
    student has no residual around that conv."""
    r = hp['rdr']
    student = _student(pair, hp['kd']['ce_weight'])
    if student['backbone'].get('convs_per_stage', 1) != 1:
        raise ValueError(f'rdr: the student of {pair!r} must have one conv per stage')
    last = pair_part(pair, 'last_stage')
    conv = f'{last}.0'
    distiller = merge(_kd_distiller(hp, RDR_FILE), {
        'student_recorders.partials.source': f'{conv}.partials',
        'teacher_recorders.feat.source': last,
        'connectors.proj': dict(in_channels=pair_part(pair, 'teacher_channels'),
                                out_channels=pair_part(pair, 'student_channels')),
        'distill_losses.loss_rdr': dict(
            schedule=r['schedule'], loss_weight=r['loss_weight'], sampling=r['sampling'],
            guide_weight=r['guide_weight'], guide_act=r['guide_act'])})
    rep = merge(shipped(RDR_FILE, 'rep'), dict(conv=conv, norm=f'{last}.1', residual=None,
                                               kernel_sizes=tuple(r['kernel_sizes'])))
    return dict(_distill('RDRDistill', pair, student, distiller, _rival_teacher(pair, teacher)),
                rep=rep)


def _vitkd_parts(pair: str, hp: dict) -> dict:
    """ViTKD's distiller (vitkd.py's ``vitkd_distiller``) on ``pair``'s token widths, at the
    settings ``hp['vitkd']`` (alpha and beta times ``scale``)."""
    v = hp['vitkd']
    return merge(shipped(VITKD_FILE, 'vitkd_distiller'), {'distill_losses.loss_vitkd': dict(
        student_dims=pair_part(pair, 'student_channels'),
        teacher_dims=pair_part(pair, 'teacher_channels'), alpha=v['alpha'] * v['scale'],
        beta=v['beta'] * v['scale'], ratio=v['ratio'])})


def _join(first: dict, second: dict) -> dict:
    """One distiller with the recorders, losses and mappings of two (their names distinct)."""
    out = copy.deepcopy(first)
    for key in ('student_recorders', 'teacher_recorders', 'distill_losses',
                'loss_forward_mappings'):
        clash = set(out.get(key) or {}) & set(second.get(key) or {})
        if clash and any(out[key][k] != second[key][k] for k in clash):
            raise ValueError(f'two method files name different {key} {sorted(clash)}')
        out[key] = dict(out.get(key) or {}, **copy.deepcopy(second.get(key) or {}))
    return out


def build_vitkd(pair: str, hp: dict, teacher: dict) -> dict:
    """ViTKD (Yang et al., 2022) as its authors run it on DeiT: CE (``ce_weight``) + ViTKD on
    the tokens (vitkd.py) + NKD on the logits (nkd.py, their logit term)."""
    v = hp['vitkd']
    nkd = merge(shipped(NKD_FILE, 'distiller'), {'distill_losses.loss_nkd': dict(
        tau=v['nkd_tau'], gamma=v['nkd_gamma'])})
    return _distill('SingleTeacherDistill', pair, _student(pair, v['ce_weight']),
                    _join(_vitkd_parts(pair, hp), nkd), _map_teacher(pair, teacher))


def build_fmkt_dist_vitkd(pair: str, hp: dict, teacher: dict) -> dict:
    """The FM-KT authors' DeiT recipe in the benchmark: FM-KT (DIST metric) on the logits and
    ViTKD on the tokens (no NKD: the flow's per-step DIST is the logit term)."""
    cfg = build_fmkt_dist(pair, hp, _map_teacher(pair, teacher))
    # build_fmkt_dist placed the logit recorders already; ViTKD's parts record no logits
    cfg['distiller'] = _join(cfg['distiller'], _vitkd_parts(pair, hp))
    return cfg


#: Every method, in table order.
REGISTRY: Tuple[Method, ...] = (
    Method('student', 'student alone', 'student\nalone', cost=1.0, teacher=False,
           group='reference', build=build_student, families=('cnn', 'vit')),
    Method('kd', 'KD', 'KD', cost=1.1, teacher=True, group='baseline', build=build_kd,
           families=('cnn', 'vit')),
    Method('dkd', 'DKD', 'DKD', cost=1.1, teacher=True, group='baseline', build=build_dkd),
    Method('dist', 'DIST', 'DIST', cost=1.1, teacher=True, group='baseline', build=build_dist,
           families=('cnn', 'vit')),
    # the diffusion-family rivals, compared with KD (RDR: KD's logit loss + its feature term)
    Method('diffkd', 'DiffKD', 'DiffKD', cost=7.0, teacher=True, group='baseline',
           build=build_diffkd, versus=('kd', ), teacher_maps=True),
    Method('rdr', 'RDR (our reading)', 'RDR\n(ours)', cost=1.6, teacher=True, group='baseline',
           build=build_rdr, versus=('kd', ), teacher_maps=True, tuned_as='kd',
           deploy='rdr'),
    Method('fmkt_kd', 'FM-KT (KD metric)', 'FM-KT\n(KD)', cost=2.0, teacher=True,
           group='fmkt', build=build_fmkt_kd, versus=('kd', 'diffkd', 'rdr', 'kd_mlp')),
    Method('fmkt_dist', 'FM-KT (DIST metric)', 'FM-KT\n(DIST)', cost=2.0, teacher=True,
           group='fmkt', build=build_fmkt_dist, versus=('dist', ), families=('cnn', 'vit')),
    # ViT students: ViTKD with its logit term (NKD) as its authors run it, and the FM-KT
    # authors' DeiT recipe (FM-KT (DIST) + ViTKD), both reading the teacher's cached tokens
    Method('vitkd', 'ViTKD + NKD', 'ViTKD\n+NKD', cost=1.7, teacher=True, group='baseline',
           build=build_vitkd, teacher_maps=True, families=('vit', )),
    Method('fmkt_dist_vitkd', 'FM-KT (DIST metric) + ViTKD', 'FM-KT\n(DIST)+ViTKD', cost=1.9,
           teacher=True, group='fmkt', build=build_fmkt_dist_vitkd,
           versus=('vitkd', 'fmkt_dist'), teacher_maps=True,
           tuned_as=('fmkt_dist', 'vitkd'), families=('vit', )),
    Method('fmkt_theta', 'FM-KT^Theta (2-stage, plain head)', 'Theta\n(2-stage)', cost=1.1,
           teacher=True, group='variant', build=build_kd, versus=('kd', ),
           stage_of='fmkt_kd', tuned_as='fmkt_kd'),
    # feature level: reported, not a candidate for "best FM-KT" (its logit loss is KD's)
    Method('fmkt_feat', 'FM-KT feature level, MLP hidden C (+ KD)', 'FM-KT\n(feat., C)',
           cost=2.5, teacher=True, group='variant', build=build_fmkt_feat, versus=('kd', ),
           teacher_maps=True, tuned_as='kd'),
    Method('fmkt_feat_narrow', 'FM-KT feature level, MLP hidden C/4 (+ KD)',
           'FM-KT\n(feat., C/4)', cost=2.3, teacher=True, group='variant',
           build=partial(build_fmkt_feat, hidden_ratio=NARROW_HIDDEN_RATIO),
           versus=('kd', 'fmkt_feat'), teacher_maps=True, tuned_as='kd'),
    # stage 2 as a fine-tune: a tenth of the stage-1 learning rate instead of half
    Method('fmkt_theta_ft', 'FM-KT^Theta (2-stage fine-tune, plain head)', 'Theta\n(2-st. ft)',
           cost=1.1, teacher=True, group='variant', build=build_kd, versus=('kd', ),
           stage_of='fmkt_kd', fixed=(('theta.lr_scale', 0.1), ), tuned_as='fmkt_kd'),
    Method('fmkt_fold', 'FM-KT^Theta (linear flow, folded)', 'Theta\n(folded)', cost=2.0,
           teacher=True, group='variant', build=build_fmkt_fold, versus=('kd', ),
           deploy='fold', tuned_as='fmkt_kd'),
    # the joint form: the plain head (theta_fc) learns the ensemble during FM-KT's own training
    Method('fmkt_joint', 'FM-KT^Theta (joint plain head)', 'Theta\n(joint)', cost=2.1,
           teacher=True, group='variant', build=build_fmkt_joint, versus=('kd', ),
           deploy='theta', tuned_as='fmkt_kd'),
    Method('fmkt_joint_bb', 'FM-KT^Theta (joint plain head, trains backbone)',
           'Theta\n(joint, bb)', cost=2.1, teacher=True, group='variant',
           build=partial(build_fmkt_joint, detach_feature=False), versus=('kd', ),
           deploy='theta', tuned_as='fmkt_kd'),
    # capacity control: KD with an MLP head of about the flow head's size (not deployable plain)
    Method('kd_mlp', 'KD + MLP head (capacity control)', 'KD\n+MLP head', cost=1.0,
           teacher=True, group='reference', build=build_kd_mlp, versus=('kd', ),
           tuned_as='kd'),
    Method('fmkt_aux', 'FM-KT^Theta (KD head + auxiliary flow head)', 'Theta\n(aux)',
           cost=2.1, teacher=True, group='variant', build=build_fmkt_aux, versus=('kd', ),
           deploy='theta', tuned_as='fmkt_kd'),
    Method('ofmkt', 'OFM-KT (online, no teacher)', 'OFM-KT\n(online)', cost=2.0, teacher=False,
           group='fmkt', build=build_ofmkt, versus=('student', ), lr_mult_key='ofmkt'),
    # the FM-KT authors' preset (configs/_base_/methods/fmkt_authors.py) and each of its parts
    # alone, against FM-KT here, at the same tuned settings (docs/benchmark/authors.md)
) + tuple(
    Method(f'fmkt_{metric}_authors{suffix}', f'FM-KT ({metric.upper()} metric), {label}',
           f'FM-KT\n({metric.upper()}, {short})', cost=2.3, teacher=True, group='variant',
           build=partial(build_fmkt_authors, metric=metric, parts=parts),
           versus=(f'fmkt_{metric}', ), tuned_as=f'fmkt_{metric}')
    for metric in ('kd', 'dist')
    for suffix, label, short, parts in (
        ('', "the authors' preset", 'authors', AUTHORS_PARTS),
        ('_block', "authors' MLP block", "a. block", ('block', )),
        ('_temb', "authors' time embedding", "a. time", ('time_embed', )),
        ('_est', "authors' estimate z_s - v", "a. est.", ('estimate', )),
        ('_eps', "authors' DIST epsilon", "a. eps", ('dist_eps', )))
    if not (metric == 'kd' and suffix == '_eps')
    and not (metric == 'dist' and suffix == '_est'))

_BY_NAME: Dict[str, Method] = {m.name: m for m in REGISTRY}
#: Method names in table order.
METHODS: List[str] = [m.name for m in REGISTRY]


def get(name: str) -> Method:
    """The record of ``name``.

    Raises:
        ValueError: unknown method, naming the known ones.
    """
    if name not in _BY_NAME:
        raise ValueError(f'unknown method {name!r}; choose from {METHODS}')
    return _BY_NAME[name]


def applies(name: str, pair: str) -> bool:
    """Whether method ``name`` runs on ``pair``: its student's family is one of the method's,
    and a method that reads the teacher's features has them (a CNN teacher's last-stage map
    for a CNN student; a ViT teacher's tokens, ``teacher_features``, for a ViT student)."""
    method = get(name)
    if family(pair) not in method.families:
        return False
    return not method.teacher_maps or family(pair) == DEFAULT_FAMILY or \
        bool(pair_option(pair, 'teacher_features'))


def method_picks(name: str, picks: Dict[str, dict], pair: Optional[str] = None) -> dict:
    """The tuned settings a method runs with on ``pair`` (default: a CNN pair): those of
    ``tuned_as`` (e.g. KD's logit loss), then its own on top, each as tuned for the pair's
    family."""
    method = get(name)
    sources = method.tuned_as or ()
    sources = (sources, ) if isinstance(sources, str) else tuple(sources)
    out: dict = {}
    for source in sources + (method.name, ):
        out.update(picks.get(picks_key(source, pair), {}))
    return out


def method_hparams(name: str, picks: Optional[Dict[str, dict]] = None,
                   overrides: Optional[dict] = None, pair: Optional[str] = None) -> dict:
    """``HPARAMS`` with ``pair``'s overrides (``configs.pair_hparams``), the method's own
    ``fixed`` settings, its tuned settings (``picks``, see
    :mod:`benchmarks.classification.tuning`) and then ``overrides`` (a tune trial) applied."""
    method = get(name)
    hp = pair_hparams(pair)
    if method.fixed:
        hp = apply_settings(hp, dict(method.fixed))
    if picks:
        hp = apply_settings(hp, method_picks(name, picks, pair))
    if overrides:
        hp = apply_settings(hp, overrides)
    return hp


def method_cfg(name: str,
               pair: str,
               teacher_cache: Optional[str] = None,
               teacher_model: Optional[dict] = None,
               teacher_ckpt: Optional[str] = None,
               hparams: Optional[dict] = None,
               teacher_maps: Optional[str] = None) -> Config:
    """``Config(model=...)`` of method ``name`` on ``pair`` with ``hparams`` (default: the
    pair's ``HPARAMS``); its teacher: the cached logits ``teacher_cache`` (for a later stage,
    its first stage's ensemble) and maps ``teacher_maps``, or a live ``teacher_model`` with
    ``teacher_ckpt``.

    Raises:
        ValueError: an unknown pair, or a pair of a family the method does not run on.
    """
    method = get(name)
    if pair not in PAIRS:
        raise ValueError(f'unknown pair {pair!r}; choose from {sorted(PAIRS)}')
    if not applies(name, pair):
        raise ValueError(f'{name} runs on the {"/".join(method.families)} pairs whose teacher '
                         f'gives what it reads, not on {pair!r} (a {family(pair)} student)')
    teacher = teacher_ref(teacher_cache, teacher_model, teacher_ckpt,
                          teacher_maps) if method.teacher else {}
    return Config(dict(model=method.build(pair, hparams or pair_hparams(pair), teacher)))
