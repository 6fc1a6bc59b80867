"""Overhead of FM-KT over KD on the ImageNet pair ResNet-34 -> ResNet-18, in one process
(``docs/advanced_guides/overhead.md``).

Every variant runs once per repeat on the same random 224 px batch, in a fresh random order
(:func:`~benchmarks.common.timing.interleaved_times`); ratios are medians of the per-repeat
ratios. Train steps: logit-level FM-KT (``FlowMatchingClsHead``, KD as the metric) and
feature-level FM-KT (``FlowMatchingNeck``, N=8, and the mean over its config's N draw) over KD;
inference: the flow-head student at N = 1, 2, 4, 8 and the FM-KT^Theta students (head path,
2-stage, folded) over the plain ResNet-18. The models come from the cluster configs
(``configs/baselines/kd_resnet34_resnet18_in1k.py``, ``configs/fmkt/resnet34_res18_in1k.py``,
``configs/fmkt/resnet34_res18_feat_in1k.py``) with random weights. Beside the ratios: each train
step's images/s, peak memory (CUDA: ``max_memory_allocated``; CPU: the process's peak resident
size, an upper bound), matmul/conv FLOPs (``torch.utils.flop_counter``) and computing ATen
operators (:class:`OpCounter`), each relative to KD's.

The command line is :mod:`.cli` (``python -m benchmarks.overhead``).
"""
import contextlib
import copy
import os.path as osp
import resource
import statistics
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
import torch.utils._pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

import fmkt_plugin  # noqa: F401  (before any mmrazor import)
from fmkt_plugin.models.connectors import flow_num_steps

from ..common.device import AMP_DTYPES, effective_amp, optim_wrapper_cfg, quiet_logs
from ..common.files import REPO
from ..common.provenance import machine, software
from ..common.timing import interleaved_times, paired_ratio, random_cls_batch, ratio_record
from ..common.timing import timing_config as _load

KD_CONFIG = osp.join(REPO, 'configs', 'baselines', 'kd_resnet34_resnet18_in1k.py')
FMKT_CONFIG = osp.join(REPO, 'configs', 'fmkt', 'resnet34_res18_in1k.py')
FEAT_CONFIG = osp.join(REPO, 'configs', 'fmkt', 'resnet34_res18_feat_in1k.py')

_TRAIN = ('<= 1.10', lambda r: r <= 1.10)
#: the cost of the plain model (the inference of a plain student)
SAME = ('1.00 +- 0.02', lambda r: abs(r - 1.0) <= 0.02)
TARGETS = dict(train_logit=_TRAIN, train_feature=_TRAIN, train_feature_draw=_TRAIN,
               infer_flow_N8=('<= 1.12', lambda r: r <= 1.12), infer_theta_head=SAME,
               infer_theta_2stage=SAME, infer_theta_fold=SAME)
#: The fixed N of the timed FM-KT train steps (the logit-level config's).
TIMED_STEPS = 8
TRAIN_KEYS = ('kd', 'fmkt_logit', 'fmkt_feature')


def feature_draw(cfg=None) -> Tuple[int, ...]:
    """The N choices the feature-level config (``cfg``, default: loaded) draws from at every
    training iteration."""
    steps = (cfg or _load(FEAT_CONFIG)).model.architecture.neck.flow.num_steps
    return tuple(steps) if isinstance(steps, (list, tuple)) else (int(steps), )


def _feature_step_name(n: int) -> str:
    return 'fmkt_feature' if n == TIMED_STEPS else f'fmkt_feature_N{n}'


def compile_value(scope: Optional[str] = 'encoder', mode: Optional[str] = None):
    """The ``FlowMatchingConnector.compile`` value of ``--compile-flow SCOPE
    [--compile-mode MODE]`` (``False`` when ``scope`` is None)."""
    if scope is None:
        return False
    if scope == 'encoder' and mode is None:
        return True
    return dict(scope=scope, **({} if mode is None else dict(mode=mode)))


def feature_encoder_name(cfg) -> str:
    """``'MLP'`` / ``'MLP C/4'``: the feature-level meta-encoder of a config, for the row."""
    flow = cfg.model.architecture.neck.flow
    encoder = flow.get('meta_encoder') or dict(type='MLPMetaEncoder')
    name = str(encoder.get('type', 'MLPMetaEncoder')).replace('MetaEncoder', '')
    hidden = encoder.get('hidden_channels')
    channels = cfg.model.architecture.neck.in_channels
    if hidden and hidden != channels:
        name += f' C/{channels // hidden}' if channels % hidden == 0 else f' hidden {hidden}'
    return name


def build_models(compile_flow: Union[bool, dict] = False) -> Dict[str, torch.nn.Module]:
    """KD, logit-level FM-KT and feature-level FM-KT (N fixed at ``TIMED_STEPS``) algorithms,
    and the inference students; ``compile_flow`` (see :func:`compile_value`) is set as
    ``compile`` on every flow."""
    from mmrazor.registry import MODELS

    from fmkt_plugin.models.heads import fold_flow_head, plain_student_state
    quiet_logs()
    kd_cfg, fm_cfg, feat_cfg = _load(KD_CONFIG), _load(FMKT_CONFIG), _load(FEAT_CONFIG)
    fm_cfg.model.distiller.distill_losses.loss_fmkt.metric = copy.deepcopy(
        kd_cfg.model.distiller.distill_losses.loss_kl)
    fm_cfg.model.distiller.distill_losses.loss_fmkt.loss_weight = 1.0
    feat_cfg.model.architecture.neck.flow.num_steps = TIMED_STEPS
    if compile_flow:
        feat_cfg.model.architecture.neck.flow.compile = compile_flow
        fm_cfg.model.architecture.head.flow.compile = compile_flow
    torch.manual_seed(0)
    arch = copy.deepcopy(kd_cfg.model.architecture)
    head = copy.deepcopy(fm_cfg.model.architecture.head)
    models = {
        'kd': MODELS.build(kd_cfg.model),
        'fmkt_logit': MODELS.build(fm_cfg.model),
        'fmkt_feature': MODELS.build(feat_cfg.model),
        'student_plain': MODELS.build(arch),
        'student_flow': MODELS.build(dict(arch, head=head)),
        'student_theta_head': MODELS.build(
            dict(arch, head=dict(head, theta=dict(use_for_inference=True)))),
        # the two-stage FM-KT^Theta student is a plain ResNet-18 (separate instance)
        'student_theta_2stage': MODELS.build(copy.deepcopy(arch)),
    }
    for m in models.values():
        m.init_weights()
    # FM-KT^Theta by folding: a linear-flow head (perturbed, so the flow is not the identity)
    # folded into a plain ResNet-18
    linear = dict(head, flow=dict(head['flow'], meta_encoder=dict(type='LinearMetaEncoder')))
    flow_student = MODELS.build(dict(arch, head=linear))
    flow_student.init_weights()
    with torch.no_grad():
        flow_student.head.flow.meta_encoder.out.weight.normal_(std=0.01)
    folded = MODELS.build(copy.deepcopy(arch))
    folded.load_state_dict(
        plain_student_state(flow_student, *fold_flow_head(flow_student.head)), strict=True)
    models['student_theta_fold'] = folded
    return models


def _peak_mib(device: str) -> float:
    if device == 'cuda':
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def train_wrapper(model: torch.nn.Module, device: str, amp: Optional[str] = None):
    """The optim wrapper of the timed train steps: ``AmpOptimWrapper`` with ``amp`` on CUDA,
    the plain ``OptimWrapper`` otherwise."""
    from mmengine.optim import build_optim_wrapper
    optimizer = dict(type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-4)
    return build_optim_wrapper(model, optim_wrapper_cfg(optimizer, device, amp))


def train_step_fn(model: torch.nn.Module, data: dict, device: str,
                  amp: Optional[str] = None) -> Callable[[], object]:
    """One train step of ``model`` (put in train mode) on a copy of ``data``, with its own
    :func:`train_wrapper`: what the interleaved timings call."""
    model.train()  # MMRazor's train() returns None: no chaining
    wrapper = train_wrapper(model, device, amp)
    return lambda: model.train_step(copy.copy(data), wrapper)


def where(device: str) -> str:
    """The device of a setting line: the GPU's name or the CPU threads."""
    return (torch.cuda.get_device_name() if device == 'cuda' else
            f'{torch.get_num_threads()} CPU thread(s)')


def _train_steps(models, batch_data: dict, device: str, amp, repeats: int, warmup: int, say,
                 draw: Tuple[int, ...] = ()):
    """Timed train steps of KD and both FM-KT levels (N=8), and of the feature level at each
    other N of ``draw`` (names ``fmkt_feature_N<n>``, not in the throughput table)."""
    fns, peaks = {}, {}
    variants = [(name, name, None) for name in TRAIN_KEYS]
    variants += [(_feature_step_name(n), 'fmkt_feature', n) for n in draw if n != TIMED_STEPS]
    for name, model_name, steps in variants:
        model = models[model_name]
        model.train()
        wrapper = train_wrapper(model, device, amp)

        def step(model=model, wrapper=wrapper, name=name, steps=steps):
            if device == 'cuda':
                torch.cuda.reset_peak_memory_stats()
            with flow_num_steps(model, steps):  # a fixed N in training too (None: as built)
                model.train_step(copy.copy(batch_data), wrapper)
            peaks[name] = max(peaks.get(name, 0.0), _peak_mib(device))
        fns[name] = step
    times = interleaved_times(fns, repeats, warmup,
                              lambda m: say(m.replace('overhead', 'overhead train steps')))
    return times, peaks


class OpCounter(TorchDispatchMode):
    """Counts the ATen operators that compute (views excluded) on tensors of one device: in
    eager mode each launches at least one kernel, so where launches rather than arithmetic
    bound a step (small tensors on a GPU) its time follows this count. Operators on host
    tensors only (e.g. the flow's time grid on a GPU run) are not counted."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.device_type = torch.device(device).type
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not func.is_view:
            tensors = [t for t in pytree.tree_leaves((args, kwargs, out))
                       if isinstance(t, torch.Tensor)]
            if any(t.device.type == self.device_type for t in tensors):
                self.count += 1
        return out


def _train_counts(models, batch_data: dict, device: str,
                  amp) -> Tuple[Dict[str, float], Dict[str, int]]:
    """Per train step, its matmul/conv FLOPs (forward and backward) and computing ATen
    operators (:class:`OpCounter`)."""
    from torch.utils.flop_counter import FlopCounterMode
    flops, ops = {}, {}
    for name in TRAIN_KEYS:
        wrapper = train_wrapper(models[name], device, amp)
        with FlopCounterMode(display=False) as counter, OpCounter(device) as op_counter:
            models[name].train_step(copy.copy(batch_data), wrapper)
        flops[name] = float(counter.get_total_flops())
        ops[name] = op_counter.count
    return flops, ops


def infer_fn(model, inputs: torch.Tensor, amp: Optional[str] = None, steps=None):
    """One eval-mode forward (``mode='tensor'``) of ``model`` on preprocessed ``inputs``, under
    autocast with ``amp`` and with every flow at ``steps`` (None: as built)."""
    model.eval()
    device = inputs.device.type
    dtype = getattr(torch, AMP_DTYPES[amp]) if amp else None

    def fn():
        autocast = torch.autocast(device, dtype) if amp else contextlib.nullcontext()
        with torch.no_grad(), autocast, flow_num_steps(model, steps):
            model(inputs, mode='tensor')
    return fn


def preprocessed(model, images: torch.Tensor, device: str) -> torch.Tensor:
    """``images`` (uint8) through ``model``'s data preprocessor, on ``device``."""
    with torch.no_grad():
        return model.data_preprocessor(dict(inputs=images.to(device)), False)['inputs']


def _inference(models, images: torch.Tensor, device: str, amp, repeats: int, warmup: int, say):
    data = preprocessed(models['student_plain'], images, device)
    fns = {'plain': infer_fn(models['student_plain'], data, amp)}
    for n in (1, 2, 4, 8):
        fns[f'flow_N{n}'] = infer_fn(models['student_flow'], data, amp, n)
    for name in ('theta_head', 'theta_2stage', 'theta_fold'):
        fns[name] = infer_fn(models[f'student_{name}'], data, amp)
    return interleaved_times(fns, repeats * 2, warmup,
                             lambda m: say(m.replace('overhead', 'overhead inference')))


def _draw_ratio(times: Dict[str, List[float]], draw: Tuple[int, ...]) -> float:
    """Median over repeats of the feature level's mean step time over the N draw (uniform, as
    the config draws) divided by KD's step time of the same repeat."""
    names = [_feature_step_name(n) for n in draw]
    return statistics.median(
        statistics.mean(times[name][r] for name in names) / kd
        for r, kd in enumerate(times['kd']))


def _ratios(times, feature_encoder: str = 'MLP', draw: Tuple[int, ...] = ()) -> List[dict]:
    rows = [('train_logit', 'train step, FM-KT logit level (MLP, N=8) / KD', 'fmkt_logit', 'kd'),
            ('train_feature', 'train step, FM-KT feature level (FlowMatchingNeck, '
             f'{feature_encoder}, N=8) + KD / KD', 'fmkt_feature', 'kd')]
    if len(draw) > 1:
        rows.append(('train_feature_draw', f'train step, FM-KT feature level ({feature_encoder}'
                     f', the config\'s N draw: mean over N in {{{", ".join(map(str, draw))}}})'
                     ' + KD / KD', _draw_ratio(times, draw), None))
    rows += [(f'infer_flow_N{n}', f'inference, flow-head student N={n} / plain ResNet-18',
              f'flow_N{n}', 'plain') for n in (1, 2, 4, 8)]
    rows += [('infer_theta_head', 'inference, FlowMatchingClsHead theta path / plain ResNet-18',
              'theta_head', 'plain'),
             ('infer_theta_2stage', 'inference, FM-KT^Theta 2-stage student (LinearClsHead) / '
              'plain', 'theta_2stage', 'plain'),
             ('infer_theta_fold', 'inference, FM-KT^Theta folded student (linear flow folded '
              'into LinearClsHead) / plain', 'theta_fold', 'plain')]
    return [ratio_record(key, name, num if den is None else paired_ratio(times, num, den),
                         *TARGETS.get(key, ())) for key, name, num, den in rows]


def run_overhead(size: int = 224, batch: int = 8, repeats: int = 5, warmup: int = 2,
                 threads: int = 0, progress=None, device: str = 'cpu',
                 amp: Optional[str] = None, compile_flow: Union[bool, dict] = False) -> dict:
    """The timings, ratios, throughput and setting of ``repeats`` timed rounds (medians) after
    ``warmup`` untimed ones, on a batch of ``batch`` images of ``size`` px, with ``threads``
    torch threads (0: as is), ``amp`` on CUDA (fp32 on the CPU) and every flow's ``compile``
    set to ``compile_flow`` (:func:`compile_value`); progress lines go to ``progress``."""
    if threads:
        torch.set_num_threads(threads)
    say = progress or (lambda msg: None)
    used_amp = effective_amp(amp, device)
    if amp and not used_amp:
        say(f'overhead: --amp {amp} needs CUDA; autocast is off on {device} (fp32)')
    say('overhead: building ResNet-34 -> ResNet-18 models')
    models = {k: m.to(device) for k, m in build_models(compile_flow).items()}
    batch_data = random_cls_batch(batch, size)
    feat_cfg = _load(FEAT_CONFIG)  # the config as shipped: its N draw and encoder
    draw = feature_draw(feat_cfg)
    times, peaks = _train_steps(models, batch_data, device, used_amp, repeats, warmup, say, draw)
    # counted in eager mode only: a compiled flow does the same arithmetic, and its fused
    # kernels are not ATen operators
    flops, ops = ({}, {}) if compile_flow else _train_counts(models, batch_data, device,
                                                              used_amp)
    times.update(_inference(models, batch_data['inputs'], device, used_amp, repeats, warmup,
                            say))
    med = {k: statistics.median(v) for k, v in times.items()}
    throughput = {name: dict(images_per_s=batch / med[name], peak_mib=peaks.get(name, 0.0),
                             gflop=flops[name] / 1e9 if name in flops else None,
                             flops_vs_kd=flops[name] / flops['kd'] if name in flops else None,
                             ops=ops.get(name),
                             ops_vs_kd=ops[name] / ops['kd'] if name in ops else None)
                  for name in TRAIN_KEYS}
    return dict(
        setting=(f'ResNet-34 -> ResNet-18, {size} px, batch {batch}, {where(device)}, '
                 f'{used_amp or "fp32"}{_compiled_note(compile_flow)}, '
                 f'torch {torch.__version__}'),
        machine=machine(device), software=software(),
        size=size, batch=batch, repeats=repeats, warmup=warmup, amp=used_amp, amp_requested=amp,
        compile_flow=compile_flow, threads=torch.get_num_threads(), median_s=med,
        throughput=throughput, times_s=times,
        ratios=_ratios(times, feature_encoder_name(feat_cfg), draw))


def _compiled_note(compile_flow: Union[bool, dict]) -> str:
    if not compile_flow:
        return ''
    if compile_flow is True:
        return ', compiled flows'
    extra = ''.join(f', {k} {v}' for k, v in compile_flow.items() if k != 'scope')
    return f', compiled flows (scope {compile_flow.get("scope", "encoder")}{extra})'
