"""Where the benchmark's model configs come from: the shipped config files (the Fashion-MNIST
pair bases ``configs/_base_/pairs/fmnist-convnet-*_w8x4.py`` and the method files under
``configs/``, read through :func:`fmkt_plugin.apis.config.load_config`), ``HPARAMS`` (the
benchmark's settings before tuning; the picks of ``benchmarks/classification/tuned.json``
override them per method) and the profiles (budgets only). :mod:`.methods` turns a method, a
pair and the settings into a model config: a shipped file's parts plus overrides.
"""
import copy
import os.path as osp
from functools import lru_cache
from typing import Dict, Optional

from mmengine.config import Config

from ..common.files import REPO

__all__ = [
    'PAIRS', 'HPARAMS', 'VIT_HPARAMS', 'PROFILES', 'CONFIG_DIR', 'shipped', 'pair_part',
    'pair_option', 'DEFAULT_FAMILY', 'family', 'picks_key', 'split_key', 'pair_hparams',
    'teacher_epochs', 'merge', 'teacher_cfg', 'teacher_ref', 'profile'
]

#: The repository's ``configs/`` folder: every path below is relative to it.
CONFIG_DIR = osp.join(REPO, 'configs')

#: How the ViT students train (AdamW, as ViTs are; the one-cycle schedule, clipping and batch of
#: ``HPARAMS``), and the token-level settings of ViTKD and NKD, its logit term (no CNN pair has
#: them): the authors' DeiT settings (alpha, beta, ratio); ``scale`` multiplies alpha and beta
#: (their sums run over 16 tokens x 96 features here, 196 x 384 on ImageNet: 49 is the
#: per-element reading); NKD at their temperature and gamma. The learning rate was chosen with
#: the student alone on the validation split (seed 0): 1e-3 86.06, 2e-3 87.20, 4e-3 86.98.
VIT_HPARAMS = dict(
    optimizer=dict(_delete_=True, type='AdamW', lr=2e-3, betas=(0.9, 0.999), weight_decay=0.05),
    vitkd=dict(alpha=3e-5, beta=3e-6, ratio=0.5, scale=1.0, nkd_tau=1.0, nkd_gamma=1.0,
               ce_weight=1.0))

#: Teacher/student pairs: their pair base (student, teacher and the facts the methods need:
#: ``student_channels``, ``teacher_channels``, ``num_classes``, ``last_stage``; for a ViT
#: student ``logits_source``, for a ViT teacher ``teacher_features``, for a CNN teacher of a ViT
#: student ``teacher_logits_source``), a label, and:
#:
#: - ``family``: of the student (default ``'cnn'``). A method runs on the pairs of the
#:   families it names (``Method.families``), a teacher-free method once per family; a tuned
#:   pick holds for one family, chosen over its pairs; the pooled verdicts pool the pairs of
#:   one family.
#: - ``hparams``: overrides of ``HPARAMS`` for the pair's students (merged as
#:   ``--cfg-options``: ``_delete_=True`` replaces an entry); ``teacher_hparams``: for its
#:   teacher (default: ``hparams``).
#: - ``teacher_epoch_scale``: a multiplier of the profile's teacher epochs.
#:
#: ``wide``: a wider teacher (w=32, same depth); ``deep``: a deeper one (w=16, 2 convs per
#: stage, 8 convs); the student of both: 4 convs, widths 8, 8, 16, 32.
#: ``vit``: a ViT of width 96, 6 layers -> a ViT of width 48, 4 layers (7x7 patches).
#: ``cnn-vit``: the ``wide`` pair's CNN teacher (trained as there) -> the same ViT student.
PAIRS: Dict[str, dict] = {
    'wide': dict(config='_base_/pairs/fmnist-convnet-w32x4_w8x4.py', label='w32x4 -> w8x4'),
    'deep': dict(config='_base_/pairs/fmnist-convnet-w16x8_w8x4.py', label='w16x8 -> w8x4'),
    'vit': dict(
        config='_base_/pairs/fmnist-vit-d96x6_d48x4.py', label='ViT d96x6 -> ViT d48x4',
        family='vit', hparams=VIT_HPARAMS,
        # a ViT teacher needs more epochs than the CNN teachers to stand clearly above its
        # student: after the profiles' 3 it scored 87.50 on the validation split, the student
        # alone 87.20 (seed 0); it trains 4x the profile's teacher epochs
        teacher_epoch_scale=4),
    'cnn-vit': dict(
        config='_base_/pairs/fmnist-convnet-w32x4_vit-d48x4.py', label='w32x4 -> ViT d48x4',
        family='vit', hparams=VIT_HPARAMS, teacher_hparams={}),
}
#: Hyperparameters before tuning (literature defaults for small-image KD). The tune mode
#: (``python -m benchmarks.run --tune``) sweeps the grid of :mod:`.tuning` on the validation
#: split and writes each method's picks to ``benchmarks/classification/tuned.json``, which the
#: benchmark applies on top of these, per method.
HPARAMS = dict(
    batch_size=128,
    # SGD (nesterov) with a one-cycle schedule (per iteration), as the reference measurement.
    optimizer=dict(type='SGD', lr=0.2, momentum=0.9, nesterov=True, weight_decay=5e-4),
    # gradient-norm clipping for every method (the serial 8-step unroll of a flow otherwise can
    # blow up at this peak learning rate; the authors' detection recipes clip too).
    clip_grad=dict(max_norm=5.0),
    one_cycle=dict(pct_start=0.25, div_factor=25.0, final_div_factor=1e3),
    # Vanilla KD (Hinton): 0.1 CE + 0.9 T^2 KL, T=4; also the per-step metric of FM-KT (KD).
    kd=dict(tau=4.0, kd_weight=0.9, ce_weight=0.1),
    # DKD (CIFAR settings of the paper: T=4, alpha=1, beta=8) + CE.
    dkd=dict(tau=4.0, alpha=1.0, beta=8.0, ce_weight=1.0),
    # DIST (CIFAR settings of the paper: tau=4, beta=gamma=2) + CE.
    dist=dict(tau=4.0, inter=2.0, intra=2.0, ce_weight=1.0),
    # FM-KT flow: rectified flow, one MLP block, N=8 in training; the headline evaluates at the
    # trained N. flow_on: 'map' runs it on the student's last 7x7 map (each step pooled before
    # the step head), 'vector' on the pooled feature.
    flow=dict(schedule='rectified', num_steps=8, meta_encoder=dict(type='mlp', num_blocks=1)),
    flow_on='vector',
    # weight of FM-KT's per-step metric (FMKTLoss.loss_weight).
    metric_weight=1.0,
    # learning-rate multiplier of the flow's parameters (meta-encoder, time embedding): with a
    # teacher, at the full rate the flow's gradient (shared by the serial steps) dominated the
    # clipped norm on the validation split; OFM-KT was better at the full rate.
    flow_lr_mult=dict(fmkt=0.1, ofmkt=1.0),
    # OFM-KT: per-step label-smoothed CE (0.1) + KL(T=4) to the detached step ensemble.
    ofmkt=dict(label_smooth=0.1, tau=4.0, kd_weight=1.0),
    # FM-KT^Theta stage 2: KD (as the KD baseline) from the frozen FM-KT (KD metric) student's
    # ensemble into a plain student initialised from that student's backbone and step head.
    theta=dict(lr_scale=0.5, init_from_stage1=True),
    # FM-KT^Theta by folding: FM-KT (KD metric) whose meta-encoder is affine (LinearMetaEncoder),
    # trained as FM-KT (KD metric) otherwise; the ensemble is folded into the plain student's
    # linear head after training and the folded plain student is what is evaluated.
    fold=dict(meta_encoder=dict(type='linear')),
    # FM-KT^Theta, joint form: FM-KT (KD metric) with a plain linear head (the flow head's
    # ``theta_fc``) trained alongside on the student's feature with KD(tau) towards the detached
    # N-step ensemble + CE, at the KD baseline's settings; the deployed student is the backbone
    # with that head (``joint_bb``: the head's KD also trains the backbone). ``fmkt_aux`` trains
    # that plain head with the KD baseline's own loss (towards the teacher) instead, the flow
    # head acting as an auxiliary head on the shared backbone (settings: ``kd``).
    joint=dict(tau=4.0, kd_weight=0.9, ce_weight=0.1),
    # DiffKD as its authors run it (docs/rivals.md): a feature branch on the last-stage maps
    # (1x1 conv + BN auto-encoder of the teacher map to a BN-normalised latent, MSE
    # reconstruction; the student map projected to the latent; 5 DDIM steps of the kernel-3
    # denoiser; projection 1x1 conv + BN; MSE to the teacher's latent; the diffusion loss) and a
    # second instance on the logits (kernel 1, no auto-encoder, KL at tau 1, weight 1, plus its
    # diffusion loss) in place of KD; CE weight 1. The latent: for ResNet-34 -> ResNet-18 the
    # authors' 1024 channels are twice the student's 512; here twice the student's 32 (the
    # teacher-relative reading, 256 channels for the wide teacher, costs about 30x a KD step).
    diffkd=dict(num_steps=5, kernel_size=3, ae_student_ratio=2, proj_norm=True,
                loss_weight=1.0, diffusion_weight=1.0, ae_weight=1.0, logit_tau=1.0,
                logit_weight=1.0, ce_weight=1.0),
    # RDR, our reading (no public code; docs/rivals.md): 4 branches on the last conv, rectified
    # path, MSE weight 1, shuffle sampling (each partial sum meets a random grid time), the
    # target-guided term (each partial sum through the student's detached head, CE to the label)
    # at weight 1; KD's logit loss (``kd``) next to it.
    rdr=dict(kernel_sizes=(3, 1, 3, 1), schedule='rectified', loss_weight=1.0,
             sampling='shuffle', guide_weight=1.0, guide_act='relu'),
)

#: Budgets per profile. ``train_size``/``test_size`` None = the full 60k/10k. ``eval_steps``:
#: inference step counts evaluated as analysis (the headline uses the trained N). ``amp``:
#: mixed precision of the student runs (CUDA only; off on CPU). ``tune_seeds``: the seeds of the
#: tune mode (every trial runs on each of them and on every pair).
PROFILES = {
    'smoke': dict(seeds=(0, ), pairs=('wide', ),
                  methods=('kd', 'diffkd', 'rdr', 'fmkt_kd', 'fmkt_fold'),
                  teacher_epochs=1, epochs=1, theta_epochs=1, train_size=1024, test_size=500,
                  jobs=1, eval_steps=(1, 2, 4, 8), amp=None, tune_seeds=(0, ),
                  overhead=dict(size=32, batch=2, repeats=1, warmup=1, detection=False)),
    'quick': dict(seeds=(0, ), pairs=('wide', 'deep'), methods=None, teacher_epochs=1,
                  epochs=1, theta_epochs=1, train_size=None, test_size=None, jobs=2,
                  eval_steps=(1, 8), amp=None, tune_seeds=(0, ),
                  overhead=dict(size=224, batch=8, repeats=2, warmup=1, detection=True)),
    # The main job: the headline comparison on 5 paired seeds in at most 25 minutes on 2 idle
    # cores. Methods: the references, the baselines, FM-KT with both metrics, OFM-KT and the
    # FM-KT^Theta form chosen on the validation split (docs/theta.md). Evaluated at the trained
    # N only; the overhead table without the rival and detection rows.
    'default': dict(seeds=(0, 1, 2, 3, 4), pairs=('wide', 'deep'),
                    methods=('student', 'kd', 'dkd', 'dist', 'fmkt_kd', 'fmkt_dist', 'ofmkt',
                             'fmkt_aux'),
                    teacher_epochs=3, epochs=3,
                    theta_epochs=2, train_size=None, test_size=None,
                    jobs=2, eval_steps=(), amp=None, tune_seeds=(0, ),
                    overhead=dict(size=224, batch=8, repeats=4, warmup=1, detection=False,
                                  rivals=False)),
    # Everything else at the main job's budget (its runs are reused from the run cache): the
    # rivals (DiffKD, RDR), the other FM-KT^Theta forms and the capacity control
    # (docs/theta.md), the feature-level rows, the N analysis (N = 1, 2, 4, 8), the pairs of a
    # ViT student (their methods, ViTKD and FM-KT + ViTKD where the teacher is a ViT; their
    # picks and pooled verdicts their own), and the overhead table with the rival and detection
    # rows.
    'extended': dict(seeds=(0, 1, 2, 3, 4), pairs=('wide', 'deep', 'vit', 'cnn-vit'),
                     methods=None,
                     teacher_epochs=3, epochs=3,
                     theta_epochs=2, train_size=None, test_size=None,
                     jobs=2, eval_steps=(1, 2, 4, 8), amp=None, tune_seeds=(0, ),
                     overhead=dict(size=224, batch=8, repeats=6, warmup=2, detection=True,
                                   rivals=True, vit=True)),
    'full': dict(seeds=(0, 1, 2), pairs=('wide', 'deep'), methods=None,
                 teacher_epochs=20, epochs=15, theta_epochs=5, train_size=None, test_size=None,
                 jobs=1, eval_steps=(1, 2, 4, 8), amp=None, tune_seeds=(0, 1, 2),
                 overhead=dict(size=224, batch=8, repeats=20, warmup=5, detection=True)),
    # one CUDA GPU: many runs share it (small models leave it mostly idle), bf16 autocast.
    # Sized from the `full` run on one H100 (9-13 runs sharing it: about 11 s per KD epoch,
    # 20 s per FM-KT epoch): about 12 minutes of student runs + 2 of teachers.
    'gpu': dict(seeds=tuple(range(6)), pairs=('wide', 'deep'), methods=None,
                teacher_epochs=10, epochs=6, theta_epochs=3, train_size=None, test_size=None,
                jobs=12, eval_steps=(1, 2, 4, 8), amp='bf16', tune_seeds=(0, 1, 2, 3),
                overhead=dict(size=224, batch=256, repeats=20, warmup=5, detection=False)),
}


def profile(name: str) -> dict:
    """A deep copy of a profile's budget."""
    if name not in PROFILES:
        raise ValueError(f'unknown profile {name!r}; choose from {sorted(PROFILES)}')
    return copy.deepcopy(PROFILES[name])


@lru_cache(maxsize=None)
def _load(rel: str) -> dict:
    from fmkt_plugin.apis.config import load_config
    return load_config(osp.join(CONFIG_DIR, rel)).to_dict()


def shipped(rel: str, key: Optional[str] = None):
    """A deep copy of the shipped config file ``configs/<rel>`` as a dict, or of its entry
    ``key`` (dotted, e.g. ``'model.architecture.head.theta'``).

    Raises:
        KeyError: ``key`` names no entry of the file (names the file).
    """
    node = _load(rel)
    for part in (key.split('.') if key else ()):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f'configs/{rel} has no entry {key!r}')
        node = node[part]
    return copy.deepcopy(node)


def pair_part(pair: str, key: str):
    """Entry ``key`` of ``pair``'s pair base (``'student'``, ``'teacher'``,
    ``'student_channels'``, ``'model.data_preprocessor'`` ...).

    Raises:
        ValueError: unknown pair, naming the known ones.
    """
    if pair not in PAIRS:
        raise ValueError(f'unknown pair {pair!r}; choose from {sorted(PAIRS)}')
    return shipped(PAIRS[pair]['config'], key)


def pair_option(pair: str, key: str, default=None):
    """Entry ``key`` of ``pair``'s pair base, or ``default`` where the base has none (e.g.
    ``logits_source``: ``'head.fc'`` for the CNN pairs)."""
    try:
        return pair_part(pair, key)
    except KeyError:
        return default


#: The family of a pair whose entry names none (the CNN pairs): its tuned picks are keyed by the
#: method's name alone.
DEFAULT_FAMILY = 'cnn'


def family(pair: str) -> str:
    """The student family of ``pair`` (:data:`DEFAULT_FAMILY` unless its entry says
    otherwise)."""
    if pair not in PAIRS:
        raise ValueError(f'unknown pair {pair!r}; choose from {sorted(PAIRS)}')
    return PAIRS[pair].get('family', DEFAULT_FAMILY)


def picks_key(method: str, pair: Optional[str] = None) -> str:
    """The key of a method's tuned settings for ``pair``'s family (no pair: a CNN pair): the
    method's name for the default family, ``'<method>@<family>'`` for another (tuned on its own
    pairs). :func:`split_key` reads it back."""
    fam = family(pair) if pair is not None else DEFAULT_FAMILY
    return method if fam == DEFAULT_FAMILY else f'{method}@{fam}'


def split_key(key: str) -> tuple:
    """``(method, family)`` of a picks key (:func:`picks_key`)."""
    method, _, fam = key.partition('@')
    return method, fam or DEFAULT_FAMILY


def pair_hparams(pair: Optional[str] = None, teacher: bool = False) -> dict:
    """``HPARAMS`` with ``pair``'s overrides for its students (``teacher``: for its teacher);
    a deep copy, of ``HPARAMS`` itself for a pair without any, or no pair.

    Raises:
        ValueError: an unknown pair.
    """
    if pair is None:
        return copy.deepcopy(HPARAMS)
    family(pair)  # a known pair
    entry = PAIRS[pair]
    overrides = entry.get('teacher_hparams', entry.get('hparams')) if teacher else \
        entry.get('hparams')
    return merge(HPARAMS, overrides) if overrides else copy.deepcopy(HPARAMS)


def teacher_epochs(pair: str, epochs: int) -> int:
    """The epochs of ``pair``'s teacher under a profile's ``epochs`` (its
    ``teacher_epoch_scale`` times them)."""
    family(pair)  # a known pair
    return int(epochs * PAIRS[pair].get('teacher_epoch_scale', 1))


def merge(base: dict, options: dict) -> dict:
    """``base`` with ``options`` merged as ``--cfg-options`` merge them: dotted keys, dicts
    merged into dicts, ``_delete_=True`` to replace one."""
    cfg = Config(dict(node=copy.deepcopy(base)))
    cfg.merge_from_dict({f'node.{k}': v for k, v in options.items()})
    return cfg.to_dict()['node']


def teacher_cfg(pair: str) -> Config:
    """The teacher of ``pair`` (its pair base's ``teacher``), a plain classifier trained with
    CE."""
    return Config(dict(model=pair_part(pair, 'teacher')))


def teacher_ref(teacher_cache: Optional[str], teacher_model: Optional[dict] = None,
                teacher_ckpt: Optional[str] = None, teacher_maps: Optional[str] = None) -> dict:
    """The ``teacher`` (and ``teacher_ckpt``) arguments of a distillation algorithm: the cached
    logits (and last-stage maps, ``teacher_maps``) when ``teacher_cache`` is given, else a live
    teacher."""
    if teacher_cache:
        cached = dict(type='CachedLogitsTeacher', cache_file=teacher_cache)
        if teacher_maps:
            cached['maps_file'] = teacher_maps
        return dict(teacher=cached)
    if teacher_model is None:
        raise ValueError('a distillation method needs teacher_cache or teacher_model')
    return dict(teacher=teacher_model, teacher_ckpt=teacher_ckpt)
