"""DiffKD and RDR in the embedded benchmark: model-config builders and overhead measurements.

Builders (:func:`rival_cfg`, :func:`diffkd_cfg`, :func:`rdr_cfg`) return ``Config(model=...)``
for one method on one Fashion-MNIST pair, from the same pieces as
:func:`benchmarks.configs.method_cfg` (``FMNISTConvNet`` classifiers, the pair's teacher, the KD
baseline's logit loss and weights) plus the method's feature-level part on the last stage
(7x7 maps). Both methods need the teacher's *feature map*, so they take a live teacher (the
pair's teacher classifier and its checkpoint), not the cached logits.

- DiffKD (Huang et al., NeurIPS 2023): ``DiffKDDistill`` + ``DiffKDLoss`` on the last stage
  (student map 1x1-convolved to the teacher's channels, noise adapter, 5 DDIM steps of the
  light denoiser in the 32-channel latent of DiffKD's linear auto-encoder of the teacher map,
  MSE to the teacher's latent, diffusion and reconstruction losses),
  next to KD on the logits.
- RDR (Yao et al., AAAI 2024), our reading (no public code): ``RDRDistill`` grafts 4 linear
  conv + BN branches (3x3, 1x1, 3x3, 1x1) onto the student's last conv; ``RDRLoss`` scores the
  partial sums against the rectified path from the detached base feature to the projected
  teacher map; KD on the logits next to it. :func:`rdr_deployed_student` folds the branches
  into the plain student, which is what is evaluated and deployed.

Hyperparameters (:data:`RIVAL_HPARAMS`) are the papers' / authors' code defaults where they
exist (DiffKD: 5 DDIM steps over the less noisy half of 1000 linear-beta timesteps, unit weights
of the three DiffKD terms) and fixed in advance otherwise; none was chosen on the test split.

Overhead (:func:`run_rival_overhead`, ImageNet ResNet-34 -> ResNet-18 from the cluster configs,
as ``benchmarks/overhead.py``): train step of DiffKD and of RDR over KD, inference of their
deployed students over the plain ResNet-18.
"""
import copy
import os.path as osp
import statistics
from typing import Dict, Optional

import torch
from mmengine.config import Config

from .common.files import REPO
from .common.timing import timing_config as _load
from .configs import HPARAMS, NORM, PAIRS, classifier_cfg

__all__ = [
    'RIVAL_METHODS', 'RIVAL_LABELS', 'RIVAL_HPARAMS', 'rival_cfg', 'diffkd_cfg', 'rdr_cfg',
    'rdr_deployed_student', 'build_overhead_models', 'OVERHEAD_RATIOS', 'run_rival_overhead'
]

RIVAL_METHODS = ['diffkd', 'rdr']
RIVAL_LABELS = {'diffkd': 'DiffKD', 'rdr': 'RDR (our reading)'}

#: The rivals' settings before tuning: ``HPARAMS['diffkd']`` and ``HPARAMS['rdr']``.
RIVAL_HPARAMS = {m: HPARAMS[m] for m in RIVAL_METHODS}

#: Last-stage module names of ``FMNISTConvNet`` (``stages.3`` = conv, BN, ReLU [, ...]).
_LAST_STAGE = 'backbone.stages.3'


def _preprocessor() -> dict:
    return dict(type='mmpretrain.ClsDataPreprocessor', to_rgb=False, **NORM)


def _kd_parts(student_feat: Dict[str, dict], teacher_feat: Dict[str, dict], kd: dict) -> dict:
    """Distiller with the KD baseline's logit loss (``kd``: its ``HPARAMS['kd']`` entry, tuned
    or not) and the given feature recorders."""
    return dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc'), **student_feat),
        teacher_recorders=dict(fc=dict(type='ModuleOutputs', source='head.fc'), **teacher_feat),
        distill_losses=dict(loss_kl=dict(type='KLDivergence', tau=kd['tau'],
                                         loss_weight=kd['kd_weight'])),
        loss_forward_mappings=dict(loss_kl=dict(
            preds_S=dict(from_student=True, recorder='fc'),
            preds_T=dict(from_student=False, recorder='fc'))))


def _hparams(method: str, hparams: Optional[dict]) -> dict:
    hp = copy.deepcopy(RIVAL_HPARAMS[method])
    unknown = set(hparams or {}) - set(hp)
    if unknown:
        raise ValueError(f'{method}: unknown hyperparameters {sorted(unknown)} (known: '
                         f'{sorted(hp)})')
    hp.update(hparams or {})
    return hp


def _check_pair(pair: str) -> None:
    if pair not in PAIRS:
        raise ValueError(f'unknown pair {pair!r}; choose from {sorted(PAIRS)}')


def _teacher(pair: str, teacher_model: Optional[dict], teacher_ckpt: Optional[str]) -> dict:
    model = teacher_model or classifier_cfg(PAIRS[pair]['teacher'])
    # without a checkpoint (cache keys, timing) the random teacher is meant
    return dict(teacher=copy.deepcopy(model), teacher_ckpt=teacher_ckpt,
                allow_random_teacher=teacher_ckpt is None)


def diffkd_cfg(pair: str,
               teacher_model: Optional[dict] = None,
               teacher_ckpt: Optional[str] = None,
               hparams: Optional[dict] = None,
               kd: Optional[dict] = None) -> Config:
    """DiffKD on ``pair`` as its authors run it: a DiffKD feature branch on the last-stage maps
    and a DiffKD logit branch in place of KD (see ``HPARAMS['diffkd']``).

    Args:
        pair: a key of :data:`benchmarks.configs.PAIRS`.
        teacher_model: teacher config (default: the pair's teacher classifier; the benchmark
            passes the cached teacher serving logits and maps).
        teacher_ckpt: the trained teacher's checkpoint (loaded strictly; None: a random or
            cached teacher).
        hparams: overrides of ``HPARAMS['diffkd']``.
        kd: unused (DiffKD has no plain KD term); kept for :func:`rival_cfg`'s signature.
    """
    del kd
    _check_pair(pair)
    hp = _hparams('diffkd', hparams)
    teacher = _teacher(pair, teacher_model, teacher_ckpt)
    s_ch = PAIRS[pair]['student']['widths'][-1]
    t_ch = PAIRS[pair]['teacher']['widths'][-1]
    feat = dict(type='ModuleOutputs', source=_LAST_STAGE)
    fc = dict(type='ModuleOutputs', source='head.fc')
    losses = dict(
        loss_diffkd=dict(
            type='DiffKDLoss',
            connector=dict(type='DiffKDConnector', student_channels=s_ch,
                           teacher_channels=t_ch, kernel_size=hp['kernel_size'],
                           num_steps=hp['num_steps'],
                           ae_channels=int(round(hp['ae_student_ratio'] * s_ch)),
                           proj_norm=hp['proj_norm']),
            metric='mse', loss_weight=hp['loss_weight'],
            diffusion_weight=hp['diffusion_weight'], ae_weight=hp['ae_weight']),
        loss_diffkd_logits=dict(
            type='DiffKDLoss',
            connector=dict(type='DiffKDConnector', student_channels=10, teacher_channels=10,
                           kernel_size=1, num_steps=hp['num_steps'], ae_channels=None,
                           proj_norm=hp['proj_norm']),
            metric=dict(type='KLDivergence', tau=hp['logit_tau'], loss_weight=1.0),
            loss_weight=hp['logit_weight'], diffusion_weight=hp['diffusion_weight']))
    distiller = dict(
        type='ConfigurableDistiller',
        student_recorders=dict(fc=fc, feat=feat), teacher_recorders=dict(fc=fc, feat=feat),
        distill_losses=losses,
        loss_forward_mappings=dict(
            loss_diffkd=dict(preds_S=dict(from_student=True, recorder='feat'),
                             preds_T=dict(from_student=False, recorder='feat')),
            loss_diffkd_logits=dict(preds_S=dict(from_student=True, recorder='fc'),
                                    preds_T=dict(from_student=False, recorder='fc'))))
    student = classifier_cfg(PAIRS[pair]['student'], ce_weight=hp['ce_weight'])
    return Config(dict(model=dict(_scope_='mmrazor', type='DiffKDDistill',
                                  data_preprocessor=_preprocessor(), architecture=student,
                                  distiller=distiller, **teacher)))


def rdr_cfg(pair: str,
            teacher_model: Optional[dict] = None,
            teacher_ckpt: Optional[str] = None,
            hparams: Optional[dict] = None,
            kd: Optional[dict] = None) -> Config:
    """RDR (our reading) on ``pair``: branches on the student's last conv scored along the path
    to the projected teacher map (shuffle sampling, target-guided term) + KD on the logits.

    Arguments as :func:`diffkd_cfg` (``hparams`` overrides ``HPARAMS['rdr']``; ``kd``: the
    logit KD settings, ``HPARAMS['kd']`` layout, default ``HPARAMS['kd']``: the benchmark
    passes KD's tuned settings).
    """
    _check_pair(pair)
    hp = _hparams('rdr', hparams)
    kd = kd or HPARAMS['kd']
    arch = PAIRS[pair]['student']
    if arch.get('convs_per_stage', 1) != 1:
        raise ValueError(f'rdr_cfg: the student of {pair!r} must have one conv per stage')
    teacher = _teacher(pair, teacher_model, teacher_ckpt)
    s_ch = arch['widths'][-1]
    t_ch = PAIRS[pair]['teacher']['widths'][-1]
    conv = f'{_LAST_STAGE}.0'
    distiller = _kd_parts(
        dict(partials=dict(type='ModuleOutputs', source=f'{conv}.partials'),
             gt_labels=dict(type='ModuleInputs', source='head.loss_module'),
             fc_weight=dict(type='Parameter', source='head.fc.weight'),
             fc_bias=dict(type='Parameter', source='head.fc.bias')),
        dict(feat=dict(type='ModuleOutputs', source=_LAST_STAGE)), kd)
    distiller['connectors'] = dict(proj=dict(type='TeacherProjector', in_channels=t_ch,
                                             out_channels=s_ch))
    distiller['distill_losses']['loss_rdr'] = dict(
        type='RDRLoss', schedule=hp['schedule'], metric='mse', loss_weight=hp['loss_weight'],
        sampling=hp['sampling'], guide_weight=hp['guide_weight'], guide_act=hp['guide_act'])
    distiller['loss_forward_mappings']['loss_rdr'] = dict(
        preds=dict(from_student=True, recorder='partials'),
        target=dict(from_student=False, recorder='feat', connector='proj'),
        gt_labels=dict(from_student=True, recorder='gt_labels', data_idx=1),
        fc_weight=dict(from_student=True, recorder='fc_weight'),
        fc_bias=dict(from_student=True, recorder='fc_bias'))
    student = classifier_cfg(arch, ce_weight=kd['ce_weight'])
    rep = dict(conv=conv, norm=f'{_LAST_STAGE}.1', kernel_sizes=tuple(hp['kernel_sizes']))
    return Config(dict(model=dict(_scope_='mmrazor', type='RDRDistill',
                                  data_preprocessor=_preprocessor(), architecture=student,
                                  rep=rep, distiller=distiller, **teacher)))


def rival_cfg(method: str, pair: str, teacher_model: Optional[dict] = None,
              teacher_ckpt: Optional[str] = None, hparams: Optional[dict] = None,
              kd: Optional[dict] = None) -> Config:
    """``diffkd_cfg`` or ``rdr_cfg`` by name."""
    builders = {'diffkd': diffkd_cfg, 'rdr': rdr_cfg}
    if method not in builders:
        raise ValueError(f'unknown method {method!r}; choose from {RIVAL_METHODS}')
    return builders[method](pair, teacher_model, teacher_ckpt, hparams, kd)


def rdr_deployed_student(model: torch.nn.Module, pair: str) -> torch.nn.Module:
    """The plain student of ``pair`` carrying an RDR student's folded weights (eval-equal)."""
    from mmrazor.registry import MODELS

    from fmkt_plugin.apis.rdr_export import rdr_plain_student_state
    student = getattr(model, 'student', model)
    plain = MODELS.build(classifier_cfg(PAIRS[pair]['student']))
    device = next(student.parameters()).device
    plain.load_state_dict(rdr_plain_student_state(student), strict=True)
    return plain.to(device)


# --------------------------------------------------------------------------------------------
# overhead (ImageNet ResNet-34 -> ResNet-18, the cluster configs)

KD_CONFIG = osp.join(REPO, 'configs', 'baselines', 'kd_resnet34_resnet18_in1k.py')
DIFFKD_CONFIG = osp.join(REPO, 'configs', 'baselines', 'diffkd_res34_res18_in1k.py')
RDR_CONFIG = osp.join(REPO, 'configs', 'baselines', 'rdr_res34_res18_in1k.py')

#: (key, label, numerator, denominator, target text or None, check) of the overhead table.
OVERHEAD_RATIOS = [
    ('train_diffkd', 'train step, DiffKD (layer4, 5 DDIM steps) + KD / KD', 'diffkd', 'kd',
     None, None),
    ('train_rdr', 'train step, RDR (4 branches on layer4.1.conv2) + KD / KD', 'rdr', 'kd',
     None, None),
    ('infer_diffkd', 'inference, DiffKD student (plain ResNet-18: the denoiser is training '
     'only) / plain', 'diffkd_student', 'plain', '1.00 +- 0.02', lambda r: abs(r - 1) <= 0.02),
    ('infer_rdr_unfolded', 'inference, RDR student before folding (4 branches) / plain',
     'rdr_unfolded', 'plain', None, None),
    ('infer_rdr_folded', 'inference, RDR student folded (plain ResNet-18) / plain',
     'rdr_folded', 'plain', '1.00 +- 0.02', lambda r: abs(r - 1) <= 0.02),
]
TRAIN_KEYS = ('kd', 'diffkd', 'rdr')
INFER_KEYS = ('plain', 'diffkd_student', 'rdr_unfolded', 'rdr_folded')


def build_overhead_models() -> Dict[str, torch.nn.Module]:
    """KD, DiffKD and RDR algorithms (keys of ``TRAIN_KEYS``) and the inference students
    (``INFER_KEYS``): the plain ResNet-18, DiffKD's deployed student (a plain ResNet-18), the
    RDR student with its branches and the RDR student folded into a plain ResNet-18 (its
    extra branches perturbed first, so the fold is not trivial)."""
    from mmrazor.registry import MODELS

    import fmkt_plugin  # noqa: F401
    from benchmarks.engine import quiet_logs
    from fmkt_plugin.apis.rdr_export import rdr_plain_student_state
    quiet_logs()
    kd_cfg, diffkd_cfg_, rdr_cfg_ = _load(KD_CONFIG), _load(DIFFKD_CONFIG), _load(RDR_CONFIG)
    torch.manual_seed(0)
    models = {'kd': MODELS.build(kd_cfg.model), 'diffkd': MODELS.build(diffkd_cfg_.model),
              'rdr': MODELS.build(rdr_cfg_.model)}
    arch = copy.deepcopy(kd_cfg.model.architecture)
    models['plain'] = MODELS.build(copy.deepcopy(arch))
    models['diffkd_student'] = MODELS.build(copy.deepcopy(arch))
    for m in models.values():
        m.init_weights()
    rdr_student = copy.deepcopy(models['rdr'].student)
    with torch.no_grad():
        for rep in (m for m in rdr_student.modules() if hasattr(m, 'fold')):
            for branch in rep.branches[1:]:
                branch.bn.weight.normal_(std=0.1)
    models['rdr_unfolded'] = rdr_student
    folded = MODELS.build(copy.deepcopy(arch))
    folded.load_state_dict(rdr_plain_student_state(rdr_student), strict=True)
    models['rdr_folded'] = folded
    return models


def run_rival_overhead(size: int = 224, batch: int = 8, repeats: int = 5, warmup: int = 2,
                       device: str = 'cpu', progress=None) -> dict:
    """Time DiffKD/RDR train steps against KD and their deployed students against the plain
    ResNet-18 (same random batch, a random order per repeat, medians of paired ratios).

    Returns:
        ``dict(setting, median_s, times_s, ratios)``; ``ratios`` entries have the keys of
        ``benchmarks/overhead.py``'s (``key, name, ratio, target, met``).
    """
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.structures import DataSample

    from .common.timing import interleaved_times

    say = progress or (lambda msg: None)
    say('rival overhead: building ResNet-34 -> ResNet-18 models')
    models = {k: m.to(device) for k, m in build_overhead_models().items()}
    gen = torch.Generator().manual_seed(0)
    images = (torch.rand(batch, 3, size, size, generator=gen) * 255).to(torch.uint8)
    labels = torch.randint(0, 1000, (batch, ), generator=gen)
    data = dict(inputs=images, data_samples=[DataSample().set_gt_label(int(y)) for y in labels])

    train_fns = {}
    for name in TRAIN_KEYS:
        model = models[name]
        model.train()  # MMRazor's train() returns None: no chaining
        wrapper = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=dict(
            type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-4)))
        train_fns[name] = (lambda m=model, w=wrapper: m.train_step(copy.copy(data), w))
    say('rival overhead: train steps')
    train_times = interleaved_times(train_fns, repeats, warmup)

    with torch.no_grad():
        inputs = models['plain'].data_preprocessor(dict(inputs=images.to(device)),
                                                   False)['inputs']

    def infer(model):
        model.eval()

        def fn():
            with torch.no_grad():
                model(inputs, mode='tensor')
        return fn

    say('rival overhead: inference')
    infer_times = interleaved_times({k: infer(models[k]) for k in INFER_KEYS}, repeats * 2,
                                    warmup)
    times = {**train_times, **infer_times}
    ratios = []
    for key, name, num, den, target, check in OVERHEAD_RATIOS:
        ratio = statistics.median(a / b for a, b in zip(times[num], times[den]))
        ratios.append(dict(key=key, name=name, ratio=ratio, target=target or 'analysis',
                           met=bool(check(ratio)) if check else True))
    where = (torch.cuda.get_device_name() if device == 'cuda' else
             f'{torch.get_num_threads()} CPU thread(s)')
    return dict(setting=f'ResNet-34 -> ResNet-18, {size} px, batch {batch}, {where}, '
                        f'torch {torch.__version__}',
                median_s={k: statistics.median(v) for k, v in times.items()},
                times_s=times, ratios=ratios)
