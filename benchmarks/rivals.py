"""DiffKD and RDR in the embedded benchmark: model-config builders.

:func:`rival_cfg` (:func:`diffkd_cfg`, :func:`rdr_cfg`) returns ``Config(model=...)`` for one
method on one Fashion-MNIST pair. The benchmark passes the cached teacher serving the logits and
the last-stage maps (``CachedLogitsTeacher`` with ``maps_file``); without one (cache keys,
tests) a live teacher of the pair's architecture stands in.

- DiffKD (Huang et al., NeurIPS 2023) as its authors run it (``HPARAMS['diffkd']``): a feature
  branch on the last-stage maps (BN auto-encoder of the teacher map to a latent of twice the
  student's channels, 5 DDIM steps of the kernel-3 denoiser, projection 1x1 conv + BN, MSE,
  diffusion and reconstruction losses) and a logit branch (kernel 1, KL at tau 1) in place of
  KD.
- RDR (Yao et al., AAAI 2024), our reading (no public code; ``HPARAMS['rdr']``): 4 linear
  conv + BN branches grafted onto the student's last conv, their partial sums scored along the
  rectified path to the projected teacher map at shuffled grid times, a target-guided CE term,
  KD on the logits. :func:`rdr_deployed_student` folds the branches into the plain student,
  which is what is evaluated and deployed.

Settings: the papers' first, then tuned on the validation split like every method
(``benchmarks/tuning.py``).
"""
import copy
from typing import Optional

import torch
from mmengine.config import Config

from .configs import HPARAMS, PAIRS, classifier_cfg, logit_distiller, preprocessor

__all__ = ['RIVAL_METHODS', 'RIVAL_HPARAMS', 'rival_cfg', 'diffkd_cfg', 'rdr_cfg',
           'rdr_deployed_student']

RIVAL_METHODS = ['diffkd', 'rdr']

#: The rivals' settings before tuning: ``HPARAMS['diffkd']`` and ``HPARAMS['rdr']``.
RIVAL_HPARAMS = {m: HPARAMS[m] for m in RIVAL_METHODS}

#: Last-stage module names of ``FMNISTConvNet`` (``stages.3`` = conv, BN, ReLU [, ...]).
_LAST_STAGE = 'backbone.stages.3'


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
                                  data_preprocessor=preprocessor(), architecture=student,
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
    distiller = logit_distiller('loss_kl', dict(type='KLDivergence', tau=kd['tau'],
                                                loss_weight=kd['kd_weight']))
    distiller['student_recorders'].update(
        partials=dict(type='ModuleOutputs', source=f'{conv}.partials'),
        gt_labels=dict(type='ModuleInputs', source='head.loss_module'),
        fc_weight=dict(type='Parameter', source='head.fc.weight'),
        fc_bias=dict(type='Parameter', source='head.fc.bias'))
    distiller['teacher_recorders']['feat'] = dict(type='ModuleOutputs', source=_LAST_STAGE)
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
                                  data_preprocessor=preprocessor(), architecture=student,
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
