"""The benchmark's methods, one record each: everything the planner, the ETA, the runner, the
report and the tune mode need about a method. Adding a method is one :class:`Method` entry in
:data:`REGISTRY` (and, to tune it, one grid in :data:`benchmarks.tuning.GRID`).
"""
import copy
from dataclasses import dataclass
from functools import partial
from typing import Callable, Dict, List, Optional, Tuple

from mmengine.config import Config

from .configs import (
    HPARAMS,
    PAIRS,
    classifier_cfg,
    flow_distiller,
    logit_distiller,
    preprocessor,
    teacher_cfg,
    teacher_ref,
)
from .settings import apply_settings

__all__ = ['Method', 'REGISTRY', 'METHODS', 'get', 'method_cfg', 'method_hparams', 'method_picks']

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
            the tuned ones (paths as in :mod:`benchmarks.tuning`, e.g. ``'theta.lr_scale'``);
            they enter only this method's hyperparameters (and cache key).
        tuned_as: take the tuned settings of this method first (its own, where it has a grid,
            on top).
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
    tuned_as: Optional[str] = None


def _distill(algorithm: str, student: dict, distiller: dict, teacher: dict) -> dict:
    if not teacher:
        raise ValueError(f'{algorithm}: this method needs a teacher (teacher_cache)')
    if algorithm == 'FMKTDistill' and 'teacher_ckpt' in teacher and not teacher['teacher_ckpt']:
        # a live teacher without weights (timing, tests): say that a random teacher is meant
        teacher = dict(teacher, allow_random_teacher=True)
    return dict(_scope_='mmrazor', type=algorithm, data_preprocessor=preprocessor(),
                architecture=student, distiller=distiller, **teacher)


def _map_teacher(pair: str, teacher: dict) -> dict:
    """The teacher arguments of a method that reads the teacher's last-stage map
    (``teacher_maps``): the cached teacher when it serves maps, else (a live teacher's
    checkpoint, or none: tests, timing) a live teacher of the pair's architecture."""
    cached = teacher.get('teacher')
    if isinstance(cached, dict) and cached.get('maps_file'):
        return teacher
    return dict(teacher=teacher_cfg(pair).model.to_dict(),
                teacher_ckpt=teacher.get('teacher_ckpt'))


def _kl(hp: dict) -> dict:
    kd = hp['kd']
    return dict(type='KLDivergence', tau=kd['tau'], loss_weight=kd['kd_weight'])


def _dist_loss(hp: dict) -> dict:
    d = hp['dist']
    return dict(type='DISTLoss', tau=d['tau'], inter_loss_weight=d['inter'],
                intra_loss_weight=d['intra'], loss_weight=1.0)


def build_student(pair: str, hp: dict, teacher: dict) -> dict:
    """The student alone (CE)."""
    return classifier_cfg(PAIRS[pair]['student'])


def build_kd(pair: str, hp: dict, teacher: dict) -> dict:
    """Vanilla KD: ``ce_weight`` CE + ``kd_weight`` T^2 KL."""
    student = classifier_cfg(PAIRS[pair]['student'], ce_weight=hp['kd']['ce_weight'])
    return _distill('SingleTeacherDistill', student, logit_distiller('loss_kl', _kl(hp)), teacher)


#: Hidden width of the capacity control's MLP head (``kd_mlp``): 2 762 parameters on the
#: benchmark's 32-channel student, about the flow head's MLP block and output layer without its
#: time embedding (3 232).
MLP_HEAD_MID = 64


def build_kd_mlp(pair: str, hp: dict, teacher: dict) -> dict:
    """KD with a two-layer MLP head (mmpretrain ``StackedLinearClsHead``, ReLU) instead of the
    linear one: a capacity control for FM-KT's flow head, whose MLP block adds non-linear head
    capacity that no plain (linear-head) student has."""
    student = classifier_cfg(PAIRS[pair]['student'], ce_weight=hp['kd']['ce_weight'])
    head = student['head']
    student['head'] = dict(type='StackedLinearClsHead', num_classes=head['num_classes'],
                           in_channels=head['in_channels'], mid_channels=[MLP_HEAD_MID],
                           loss=head['loss'])
    distiller = logit_distiller('loss_kl', _kl(hp))
    distiller['student_recorders']['fc']['source'] = 'head.layers.1.fc'
    return _distill('SingleTeacherDistill', student, distiller, teacher)


def build_dkd(pair: str, hp: dict, teacher: dict) -> dict:
    """DKD (MMRazor's ``DKDLoss``) + CE."""
    d = hp['dkd']
    student = classifier_cfg(PAIRS[pair]['student'], ce_weight=d['ce_weight'])
    loss = dict(type='DKDLoss', tau=d['tau'], alpha=d['alpha'], beta=d['beta'], loss_weight=1.0,
                reduction='batchmean')
    return _distill('SingleTeacherDistill', student,
                    logit_distiller('loss_dkd', loss, with_labels=True), teacher)


def build_dist(pair: str, hp: dict, teacher: dict) -> dict:
    """DIST (MMRazor's ``DISTLoss``) + CE."""
    student = classifier_cfg(PAIRS[pair]['student'], ce_weight=hp['dist']['ce_weight'])
    # DISTLoss.forward(logits_S, logits_T)
    distiller = logit_distiller('loss_dist', _dist_loss(hp), keys=('logits_S', 'logits_T'))
    return _distill('SingleTeacherDistill', student, distiller, teacher)


def _fmkt(pair: str, hp: dict, teacher: dict, metric: dict, ce_weight: float,
          flow: dict) -> dict:
    student = classifier_cfg(PAIRS[pair]['student'], head='flow', ce_weight=ce_weight,
                             flow=flow)
    return _distill('FMKTDistill', student, flow_distiller(metric, hp['metric_weight']), teacher)


def build_fmkt_kd(pair: str, hp: dict, teacher: dict) -> dict:
    """FM-KT with the KD loss as the per-step metric."""
    return _fmkt(pair, hp, teacher, _kl(hp), hp['kd']['ce_weight'], hp['flow'])


def build_fmkt_dist(pair: str, hp: dict, teacher: dict) -> dict:
    """FM-KT with the DIST loss as the per-step metric."""
    return _fmkt(pair, hp, teacher, _dist_loss(hp), hp['dist']['ce_weight'], hp['flow'])


#: Meta-encoder of the feature-level flow: a one-block MLP, full width (``fmkt_feat``, the
#: earlier default) or with its hidden width a quarter of the map's channels
#: (``fmkt_feat_narrow``, as ``configs/_base_/methods/fmkt_features.py``).
FEATURE_META_ENCODER = dict(type='MLPMetaEncoder', num_blocks=1)
#: The narrow MLP's hidden width: the map's channels divided by this.
NARROW_HIDDEN_RATIO = 4


def build_fmkt_feat(pair: str, hp: dict, teacher: dict, hidden_ratio: int = 1) -> dict:
    """Feature-level FM-KT (``configs/_base_/methods/fmkt_features.py``): KD on the logits
    (KD's settings) + a ``FlowMatchingNeck`` on the student's last 7x7 map (rectified flow, N
    drawn from {1, 2, 4, 8, 16} per iteration, 8 at test) whose every step's estimate is scored
    with MSE against the teacher's last-stage map projected to the student's channels
    (``TeacherProjector``); the transported map feeds the student's pooling and linear head.
    ``hidden_ratio`` > 1 narrows the MLP's hidden width to ``channels // hidden_ratio`` (the
    config's is 4; 1, the full-width MLP, was its default before)."""
    if not teacher:
        raise ValueError('fmkt_feat: this method needs a teacher')
    s_ch = PAIRS[pair]['student']['widths'][-1]
    t_ch = PAIRS[pair]['teacher']['widths'][-1]
    student = classifier_cfg(PAIRS[pair]['student'], ce_weight=hp['kd']['ce_weight'])
    encoder = copy.deepcopy(FEATURE_META_ENCODER)
    if hidden_ratio > 1:
        encoder['hidden_channels'] = max(1, s_ch // hidden_ratio)
    student['neck'] = dict(
        type='FlowMatchingNeck', in_channels=s_ch, with_pool=True,
        flow=dict(type='FlowMatchingConnector', schedule=dict(type='RectifiedFlowSchedule'),
                  meta_encoder=encoder,
                  num_steps=(1, 2, 4, 8, 16), test_num_steps=8))
    distiller = logit_distiller('loss_kl', _kl(hp))
    distiller['student_recorders']['steps'] = dict(type='ModuleOutputs', source='neck.flow')
    distiller['teacher_recorders']['feat'] = dict(type='ModuleOutputs',
                                                  source='backbone.stages.3')
    distiller['connectors'] = dict(proj=dict(type='TeacherProjector', in_channels=t_ch,
                                             out_channels=s_ch))
    distiller['distill_losses']['loss_fmkt'] = dict(type='FMKTLoss', metric='mse',
                                                    loss_weight=1.0)
    distiller['loss_forward_mappings']['loss_fmkt'] = dict(
        preds=dict(from_student=True, recorder='steps', data_idx=0),
        target=dict(from_student=False, recorder='feat', connector='proj'))
    return _distill('FMKTDistill', student, distiller, _map_teacher(pair, teacher))


def build_fmkt_fold(pair: str, hp: dict, teacher: dict) -> dict:
    """FM-KT (KD metric) with an affine meta-encoder, to be folded into a linear head."""
    flow = dict(copy.deepcopy(hp['flow']), **copy.deepcopy(hp['fold']))
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
    """The KD baseline's plain head with FM-KT (KD metric) as an auxiliary head: the plain
    linear head (the flow head's ``theta_fc``) takes KD's loss (``ce_weight`` CE + ``kd_weight``
    T^2 KL towards the teacher), the flow head FM-KT's, and both train the backbone; the
    deployed student is the backbone with the plain head."""
    cfg = build_fmkt_kd(pair, hp, teacher)
    cfg['architecture']['head']['theta'] = dict(
        tau=hp['kd']['tau'], kd_weight=0.0, ce_weight=hp['kd']['ce_weight'],
        detach_feature=False, use_for_inference=True)
    distiller = cfg['distiller']
    # theta_fc returns (1, B, K): FMKTLoss over that one "step" is the KD loss on the plain head
    distiller['student_recorders']['plain'] = dict(type='ModuleOutputs', source='head.theta_fc')
    distiller['distill_losses']['loss_plain_kd'] = dict(type='FMKTLoss', metric=_kl(hp))
    distiller['loss_forward_mappings']['loss_plain_kd'] = dict(
        preds=dict(from_student=True, recorder='plain'),
        target=dict(from_student=False, recorder='fc'))
    return cfg


def build_ofmkt(pair: str, hp: dict, teacher: dict) -> dict:
    """OFM-KT: no teacher, the detached step ensemble is the target."""
    o = hp['ofmkt']
    metric = dict(type='KLDivergence', tau=o['tau'], loss_weight=o['kd_weight'])
    return dict(_scope_='mmrazor', type='OFMKT', data_preprocessor=preprocessor(),
                architecture=classifier_cfg(PAIRS[pair]['student'], head='flow', flow=hp['flow']),
                distill_loss=dict(type='FMKTLoss', metric=metric),
                label_smoothing=o['label_smooth'], ce_weight=1.0)


def _rival_teacher(pair: str, teacher: dict) -> dict:
    args = _map_teacher(pair, teacher)
    # without a checkpoint (the cached teacher, cache keys, timing) no weights are loaded
    return dict(teacher=copy.deepcopy(args['teacher']), teacher_ckpt=args.get('teacher_ckpt'),
                allow_random_teacher=args.get('teacher_ckpt') is None)


#: Last stage of ``FMNISTConvNet`` (``stages.3`` = conv, BN, ReLU): where the rivals work.
_LAST_STAGE = 'backbone.stages.3'


def build_diffkd(pair: str, hp: dict, teacher: dict) -> dict:
    """DiffKD (Huang et al., NeurIPS 2023) as its authors run it (``HPARAMS['diffkd']``,
    ``docs/rivals.md``): a feature branch on the last-stage maps and a logit branch (kernel 1,
    KL) in place of KD."""
    d = hp['diffkd']
    s_ch = PAIRS[pair]['student']['widths'][-1]
    t_ch = PAIRS[pair]['teacher']['widths'][-1]
    feat = dict(type='ModuleOutputs', source=_LAST_STAGE)
    fc = dict(type='ModuleOutputs', source='head.fc')
    losses = dict(
        loss_diffkd=dict(
            type='DiffKDLoss',
            connector=dict(type='DiffKDConnector', student_channels=s_ch,
                           teacher_channels=t_ch, kernel_size=d['kernel_size'],
                           num_steps=d['num_steps'],
                           ae_channels=int(round(d['ae_student_ratio'] * s_ch)),
                           proj_norm=d['proj_norm']),
            metric='mse', loss_weight=d['loss_weight'],
            diffusion_weight=d['diffusion_weight'], ae_weight=d['ae_weight']),
        loss_diffkd_logits=dict(
            type='DiffKDLoss',
            connector=dict(type='DiffKDConnector', student_channels=10, teacher_channels=10,
                           kernel_size=1, num_steps=d['num_steps'], ae_channels=None,
                           proj_norm=d['proj_norm']),
            metric=dict(type='KLDivergence', tau=d['logit_tau'], loss_weight=1.0),
            loss_weight=d['logit_weight'], diffusion_weight=d['diffusion_weight']))
    distiller = dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=fc, feat=feat), teacher_recorders=dict(fc=fc, feat=feat),
        distill_losses=losses,
        loss_forward_mappings=dict(
            loss_diffkd=dict(preds_S=dict(from_student=True, recorder='feat'),
                             preds_T=dict(from_student=False, recorder='feat')),
            loss_diffkd_logits=dict(preds_S=dict(from_student=True, recorder='fc'),
                                    preds_T=dict(from_student=False, recorder='fc'))))
    student = classifier_cfg(PAIRS[pair]['student'], ce_weight=d['ce_weight'])
    return _distill('DiffKDDistill', student, distiller, _rival_teacher(pair, teacher))


def build_rdr(pair: str, hp: dict, teacher: dict) -> dict:
    """RDR (Yao et al., AAAI 2024), our reading (``HPARAMS['rdr']``, ``docs/rivals.md``):
    branches on the student's last conv scored along the path to the projected teacher map
    (shuffle sampling, target-guided term) + KD's logit loss; the branches are folded into the
    plain student that is evaluated (``deploy='rdr'``)."""
    r = hp['rdr']
    arch = PAIRS[pair]['student']
    if arch.get('convs_per_stage', 1) != 1:
        raise ValueError(f'rdr: the student of {pair!r} must have one conv per stage')
    s_ch = arch['widths'][-1]
    t_ch = PAIRS[pair]['teacher']['widths'][-1]
    conv = f'{_LAST_STAGE}.0'
    distiller = logit_distiller('loss_kl', _kl(hp))
    distiller['student_recorders'].update(
        partials=dict(type='ModuleOutputs', source=f'{conv}.partials'),
        gt_labels=dict(type='ModuleInputs', source='head.loss_module'),
        fc_weight=dict(type='Parameter', source='head.fc.weight'),
        fc_bias=dict(type='Parameter', source='head.fc.bias'))
    distiller['teacher_recorders']['feat'] = dict(type='ModuleOutputs', source=_LAST_STAGE)
    distiller['connectors'] = dict(proj=dict(type='TeacherProjector', in_channels=t_ch,
                                             out_channels=s_ch))
    distiller['distill_losses']['loss_rdr'] = dict(
        type='RDRLoss', schedule=r['schedule'], metric='mse', loss_weight=r['loss_weight'],
        sampling=r['sampling'], guide_weight=r['guide_weight'], guide_act=r['guide_act'])
    distiller['loss_forward_mappings']['loss_rdr'] = dict(
        preds=dict(from_student=True, recorder='partials'),
        target=dict(from_student=False, recorder='feat', connector='proj'),
        gt_labels=dict(from_student=True, recorder='gt_labels', data_idx=1),
        fc_weight=dict(from_student=True, recorder='fc_weight'),
        fc_bias=dict(from_student=True, recorder='fc_bias'))
    student = classifier_cfg(arch, ce_weight=hp['kd']['ce_weight'])
    rep = dict(conv=conv, norm=f'{_LAST_STAGE}.1', kernel_sizes=tuple(r['kernel_sizes']))
    return dict(_distill('RDRDistill', student, distiller, _rival_teacher(pair, teacher)),
                rep=rep)


#: Every method, in table order.
REGISTRY: Tuple[Method, ...] = (
    Method('student', 'student alone', 'student\nalone', cost=1.0, teacher=False,
           group='reference', build=build_student),
    Method('kd', 'KD', 'KD', cost=1.1, teacher=True, group='baseline', build=build_kd),
    Method('dkd', 'DKD', 'DKD', cost=1.1, teacher=True, group='baseline', build=build_dkd),
    Method('dist', 'DIST', 'DIST', cost=1.1, teacher=True, group='baseline', build=build_dist),
    # the diffusion-family rivals, compared with KD (RDR: KD's logit loss + its feature term)
    Method('diffkd', 'DiffKD', 'DiffKD', cost=7.0, teacher=True, group='baseline',
           build=build_diffkd, versus=('kd', ), teacher_maps=True),
    Method('rdr', 'RDR (our reading)', 'RDR\n(ours)', cost=1.6, teacher=True, group='baseline',
           build=build_rdr, versus=('kd', ), teacher_maps=True, tuned_as='kd',
           deploy='rdr'),
    Method('fmkt_kd', 'FM-KT (KD metric)', 'FM-KT\n(KD)', cost=2.0, teacher=True,
           group='fmkt', build=build_fmkt_kd, versus=('kd', 'diffkd', 'rdr', 'kd_mlp')),
    Method('fmkt_dist', 'FM-KT (DIST metric)', 'FM-KT\n(DIST)', cost=2.0, teacher=True,
           group='fmkt', build=build_fmkt_dist, versus=('dist', )),
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
)

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


def method_picks(name: str, picks: Dict[str, dict]) -> dict:
    """The tuned settings a method runs with: those of ``tuned_as`` (e.g. KD's logit loss),
    then its own on top."""
    method = get(name)
    out = dict(picks.get(method.tuned_as, {})) if method.tuned_as else {}
    out.update(picks.get(method.name, {}))
    return out


def method_hparams(name: str, picks: Optional[Dict[str, dict]] = None,
                   overrides: Optional[dict] = None) -> dict:
    """``HPARAMS`` with the method's own ``fixed`` settings, its tuned settings (``picks``,
    see :mod:`benchmarks.tuning`) and then ``overrides`` (a tune trial) applied."""
    method = get(name)
    hp = copy.deepcopy(HPARAMS)
    if method.fixed:
        hp = apply_settings(hp, dict(method.fixed))
    if picks:
        hp = apply_settings(hp, method_picks(name, picks))
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
    """``Config(model=...)`` of method ``name`` on ``pair`` with ``hparams`` (default
    ``HPARAMS``); its teacher: the cached logits ``teacher_cache`` (for a later stage, its
    first stage's ensemble) and maps ``teacher_maps``, or a live ``teacher_model`` with
    ``teacher_ckpt``."""
    method = get(name)
    if pair not in PAIRS:
        raise ValueError(f'unknown pair {pair!r}; choose from {sorted(PAIRS)}')
    teacher = teacher_ref(teacher_cache, teacher_model, teacher_ckpt,
                          teacher_maps) if method.teacher else {}
    return Config(dict(model=method.build(pair, hparams or copy.deepcopy(HPARAMS), teacher)))
