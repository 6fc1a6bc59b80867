"""Overhead of FM-KT over KD on the ImageNet pair ResNet-34 -> ResNet-18, in one process.

Measured on the same random 224 px batch, every variant once per repeat in a random order (so
a change of machine load hits all of them alike, and no variant always follows the same one),
reporting medians:

- train step (``train_step``: teacher forward + student forward/backward + SGD update) of
  logit-level FM-KT (``FlowMatchingClsHead``, MLP meta-encoder, N=8) and of feature-level FM-KT
  (``FlowMatchingNeck`` on the last stage, MSE to the projected teacher map, N=8, on top of
  the same KD loss) over vanilla KD;
- inference latency (``mode='tensor'``, eval) of the flow-head student at N = 1, 2, 4, 8, of
  the FM-KT^Theta deploy path of ``FlowMatchingClsHead`` (``theta.use_for_inference``), of the
  two-stage FM-KT^Theta student (a plain ``LinearClsHead`` ResNet-18) and of the folded
  FM-KT^Theta student (a linear-flow head folded into a ``LinearClsHead``), over the plain
  ResNet-18.

Ratios are medians of the per-repeat ratios. The models come from the project's cluster configs
(``configs/baselines/kd_resnet34_resnet18_in1k.py``, ``configs/fmkt/resnet34_res18_in1k.py``,
``configs/fmkt/resnet34_res18_feat_in1k.py``) with random weights (timing does not depend on
them), the logit-level FM-KT metric set to the KD loss and the feature-level N fixed at 8; a
further row times the feature level at every N its config draws from in training ({1, 2, 4,
8, 16}, uniformly) and reports the mean step over KD's: what a run of that config pays.

Beside the ratios, each train step's throughput (images/s, from its median time), peak
memory (CUDA: ``torch.cuda.max_memory_allocated`` of its steps; CPU: the process's peak
resident size, which only grows, so the CPU figure is an upper bound shared by the variants)
its matrix-multiply/convolution FLOPs (forward + backward, ``torch.utils.flop_counter``,
relative to KD's: the floor of the time ratio on a compute-bound device) and its count of
computing ATen operators (``OpCounter``, relative to KD's: in eager mode each launches a
kernel, so this is what the ratio tends to where launches, not arithmetic, bound the step, as
for the flow's small tensors on a GPU) are reported.
``--compile-flow`` runs every flow's meta-encoder through ``torch.compile``
(``FlowMatchingConnector(compile=True)``), ``--compile-flow flow`` the whole unrolled flow
(``compile=dict(scope='flow')``), ``--compile-mode reduce-overhead`` adds CUDA graphs
(the compilation happens in the untimed warm-up
repeats). ``--amp fp16|bf16`` trains through mmengine's ``AmpOptimWrapper`` (as
``tools/train.py --amp``) and runs inference under autocast; it needs ``--device cuda`` (on
the CPU autocast stays off and the run is fp32).

Run alone, from the repository root:
``python -m benchmarks.overhead [--size 224 --batch 8 --repeats 5] [--device cuda --amp bf16]
[--compile-flow [flow] [--compile-mode reduce-overhead]]``.
"""
import argparse
import contextlib
import copy
import json
import os.path as osp
import resource
import statistics
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.utils._pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

import fmkt_plugin  # noqa: F401  (before any mmrazor import)

from .common.device import AMP_DTYPES, effective_amp, optim_wrapper_cfg
from .common.files import REPO
from .common.provenance import machine, software
from .common.timing import interleaved_times
from .common.timing import paired_ratio as _paired_ratio
from .common.timing import random_cls_batch as _batch
from .common.timing import timing_config as _load
from .engine import eval_num_steps, quiet_logs

KD_CONFIG = osp.join(REPO, 'configs', 'baselines', 'kd_resnet34_resnet18_in1k.py')
FMKT_CONFIG = osp.join(REPO, 'configs', 'fmkt', 'resnet34_res18_in1k.py')
FEAT_CONFIG = osp.join(REPO, 'configs', 'fmkt', 'resnet34_res18_feat_in1k.py')

TARGETS = {
    'train_logit': ('<= 1.10', lambda r: r <= 1.10),
    'train_feature': ('<= 1.10', lambda r: r <= 1.10),
    'train_feature_draw': ('<= 1.10', lambda r: r <= 1.10),
    'infer_flow_N8': ('<= 1.12', lambda r: r <= 1.12),
    'infer_theta_head': ('1.00 +- 0.02', lambda r: abs(r - 1.0) <= 0.02),
    'infer_theta_2stage': ('1.00 +- 0.02', lambda r: abs(r - 1.0) <= 0.02),
    'infer_theta_fold': ('1.00 +- 0.02', lambda r: abs(r - 1.0) <= 0.02),
}


#: The fixed N of the timed FM-KT train steps (the logit-level config's).
TIMED_STEPS = 8


def feature_draw(cfg=None) -> Tuple[int, ...]:
    """The N choices the feature-level config (``cfg``, default: loaded) draws from at every
    training iteration."""
    steps = (cfg or _load(FEAT_CONFIG)).model.architecture.neck.flow.num_steps
    return tuple(steps) if isinstance(steps, (list, tuple)) else (int(steps), )


def _feature_step_name(n: int) -> str:
    """Timing key of the feature-level train step at ``n`` steps."""
    return 'fmkt_feature' if n == TIMED_STEPS else f'fmkt_feature_N{n}'


def compile_value(scope: Optional[str] = 'encoder', mode: Optional[str] = None):
    """The ``FlowMatchingConnector.compile`` value of ``--compile-flow SCOPE
    [--compile-mode MODE]`` (``False`` when ``scope`` is None)."""
    if scope is None:
        return False
    if scope == 'encoder' and mode is None:
        return True
    return dict(scope=scope, **({} if mode is None else dict(mode=mode)))


def feature_config(compile_flow: Union[bool, dict] = False):
    """The feature-level FM-KT config with N fixed at ``TIMED_STEPS`` (as the logit level);
    ``compile_flow`` is its flow's ``compile`` value."""
    feat_cfg = _load(FEAT_CONFIG)
    feat_cfg.model.architecture.neck.flow.num_steps = TIMED_STEPS
    if compile_flow:
        feat_cfg.model.architecture.neck.flow.compile = compile_flow
    return feat_cfg


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


def build_models(num_classes: int = 1000,
                 compile_flow: Union[bool, dict] = False) -> Dict[str, torch.nn.Module]:
    """KD, logit-level FM-KT and feature-level FM-KT algorithms, and inference students;
    ``compile_flow`` (``True`` or a dict, see :func:`compile_value`) is set as ``compile`` on
    every flow."""
    from mmrazor.registry import MODELS

    quiet_logs()
    kd_cfg = _load(KD_CONFIG)
    fm_cfg = _load(FMKT_CONFIG)
    kd_metric = copy.deepcopy(kd_cfg.model.distiller.distill_losses.loss_kl)
    fm_cfg.model.distiller.distill_losses.loss_fmkt.metric = kd_metric
    fm_cfg.model.distiller.distill_losses.loss_fmkt.loss_weight = 1.0

    feat_cfg = feature_config(compile_flow)
    if compile_flow:
        fm_cfg.model.architecture.head.flow.compile = compile_flow

    torch.manual_seed(0)
    models = {
        'kd': MODELS.build(kd_cfg.model),
        'fmkt_logit': MODELS.build(fm_cfg.model),
        'fmkt_feature': MODELS.build(feat_cfg.model),
    }
    arch = copy.deepcopy(kd_cfg.model.architecture)
    models['student_plain'] = MODELS.build(arch)
    head = copy.deepcopy(fm_cfg.model.architecture.head)
    models['student_flow'] = MODELS.build(dict(arch, head=head))
    head_theta = dict(head, theta=dict(use_for_inference=True))
    models['student_theta_head'] = MODELS.build(dict(arch, head=head_theta))
    # the two-stage FM-KT^Theta student is a plain ResNet-18 (separate instance)
    models['student_theta_2stage'] = MODELS.build(copy.deepcopy(arch))
    for m in models.values():
        m.init_weights()
    models['student_theta_fold'] = _folded_student(MODELS, arch, head)
    return models


def _folded_student(registry, arch: dict, head: dict) -> torch.nn.Module:
    """FM-KT^Theta by folding: a ResNet-18 with a linear-flow head (its meta-encoder perturbed
    so the flow is not the identity), folded into a plain ResNet-18."""
    from fmkt_plugin.models.heads import fold_flow_head, plain_student_state
    linear = dict(head, flow=dict(head['flow'], meta_encoder=dict(type='LinearMetaEncoder')))
    flow_student = registry.build(dict(arch, head=linear))
    flow_student.init_weights()
    with torch.no_grad():
        flow_student.head.flow.meta_encoder.out.weight.normal_(std=0.01)
    folded = registry.build(copy.deepcopy(arch))
    folded.load_state_dict(
        plain_student_state(flow_student, *fold_flow_head(flow_student.head)), strict=True)
    return folded


def _peak_mib(device: str) -> float:
    if device == 'cuda':
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def train_wrapper(model: torch.nn.Module, device: str, amp: Optional[str]):
    """The optim wrapper of the timed train steps: ``AmpOptimWrapper`` with ``amp`` on CUDA,
    the plain ``OptimWrapper`` otherwise."""
    from mmengine.optim import build_optim_wrapper
    optimizer = dict(type='SGD', lr=1e-4, momentum=0.9, weight_decay=1e-4)
    return build_optim_wrapper(model, optim_wrapper_cfg(optimizer, device, amp))


def _train_steps(models, batch_data: dict, device: str, amp, repeats: int, warmup: int, say,
                 draw: Tuple[int, ...] = ()):
    """Timed train steps of KD and both FM-KT levels (N=8), and of the feature level at each
    other N of ``draw`` (names ``fmkt_feature_N<n>``, not in the throughput table)."""
    fns, peaks = {}, {}
    variants = [(name, name, None) for name in ('kd', 'fmkt_logit', 'fmkt_feature')]
    variants += [(_feature_step_name(n), 'fmkt_feature', n) for n in draw
                 if n != TIMED_STEPS]
    for name, model_name, steps in variants:
        model = models[model_name]
        model.train()
        wrapper = train_wrapper(model, device, amp)

        def step(model=model, wrapper=wrapper, name=name, steps=steps):
            if device == 'cuda':
                torch.cuda.reset_peak_memory_stats()
            with eval_num_steps(model, steps):  # a fixed N in training too (None: as built)
                model.train_step(copy.copy(batch_data), wrapper)
            peaks[name] = max(peaks.get(name, 0.0), _peak_mib(device))
        fns[name] = step
    times = interleaved_times(fns, repeats, warmup,
                      lambda m: say(m.replace('overhead', 'overhead train steps')))
    return times, peaks


class OpCounter(TorchDispatchMode):
    """Counts the ATen operators that compute (views excluded) on tensors of one device: in
    eager mode each launches at least one kernel, so on a device whose steps are bound by
    launches rather than arithmetic (small tensors on a GPU) the step time follows this count.
    Operators that only touch host tensors (e.g. the flow's time grid on a GPU run) are not
    counted."""

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
    """Per model, one train step's matrix-multiply and convolution FLOPs (forward and
    backward, ``torch.utils.flop_counter``: the work a compute-bound device cannot skip) and
    its computing ATen operators (:class:`OpCounter`: what a launch-bound device pays for)."""
    from torch.utils.flop_counter import FlopCounterMode
    flops, ops = {}, {}
    for name in ('kd', 'fmkt_logit', 'fmkt_feature'):
        wrapper = train_wrapper(models[name], device, amp)
        with FlopCounterMode(display=False) as counter, OpCounter(device) as op_counter:
            models[name].train_step(copy.copy(batch_data), wrapper)
        flops[name] = float(counter.get_total_flops())
        ops[name] = op_counter.count
    return flops, ops


def _autocast(device: str, amp: Optional[str]):
    if amp is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=getattr(torch, AMP_DTYPES[amp]))


def _inference(models, images: torch.Tensor, device: str, amp, repeats: int, warmup: int, say):
    with torch.no_grad():
        data = models['student_plain'].data_preprocessor(dict(inputs=images.to(device)),
                                                         False)['inputs']
    for name in ('student_plain', 'student_flow', 'student_theta_head', 'student_theta_2stage',
                 'student_theta_fold'):
        models[name].eval()

    def infer(model, steps=None):
        def fn():
            with torch.no_grad(), _autocast(device, amp), eval_num_steps(model, steps):
                model(data, mode='tensor')
        return fn

    fns = {'plain': infer(models['student_plain'])}
    for n in (1, 2, 4, 8):
        fns[f'flow_N{n}'] = infer(models['student_flow'], n)
    fns['theta_head'] = infer(models['student_theta_head'])
    fns['theta_2stage'] = infer(models['student_theta_2stage'])
    fns['theta_fold'] = infer(models['student_theta_fold'])
    return interleaved_times(fns, repeats * 2, warmup,
                     lambda m: say(m.replace('overhead', 'overhead inference')))


def _draw_ratio(times: Dict[str, List[float]], draw: Tuple[int, ...]) -> float:
    """Median over repeats of the feature level's mean step time over the N draw (uniform, as
    the config draws) divided by KD's step time of the same repeat."""
    names = [_feature_step_name(n) for n in draw]
    return statistics.median(
        statistics.mean(times[name][r] for name in names) / kd
        for r, kd in enumerate(times['kd']))


def _ratios(train_times, infer_times, feature_encoder: str = 'MLP',
            draw: Tuple[int, ...] = ()) -> List[dict]:
    ratios = []

    def record(key, name, ratio):
        target = TARGETS.get(key)
        ratios.append(dict(key=key, name=name, ratio=ratio,
                           target=target[0] if target else 'analysis',
                           met=bool(target[1](ratio)) if target else True))

    def add(key, name, times, num, den):
        record(key, name, _paired_ratio(times, num, den))

    add('train_logit', 'train step, FM-KT logit level (MLP, N=8) / KD', train_times,
        'fmkt_logit', 'kd')
    add('train_feature', f'train step, FM-KT feature level (FlowMatchingNeck, {feature_encoder}, '
        'N=8) + KD / KD', train_times, 'fmkt_feature', 'kd')
    if len(draw) > 1:
        record('train_feature_draw', f'train step, FM-KT feature level ({feature_encoder}, the '
               f'config\'s N draw: mean over N in {{{", ".join(map(str, draw))}}}) + KD / KD',
               _draw_ratio(train_times, draw))
    for n in (1, 2, 4, 8):
        add(f'infer_flow_N{n}', f'inference, flow-head student N={n} / plain ResNet-18',
            infer_times, f'flow_N{n}', 'plain')
    add('infer_theta_head', 'inference, FlowMatchingClsHead theta path / plain ResNet-18',
        infer_times, 'theta_head', 'plain')
    add('infer_theta_2stage', 'inference, FM-KT^Theta 2-stage student (LinearClsHead) / plain',
        infer_times, 'theta_2stage', 'plain')
    add('infer_theta_fold', 'inference, FM-KT^Theta folded student (linear flow folded into '
        'LinearClsHead) / plain', infer_times, 'theta_fold', 'plain')
    return ratios


def run_overhead(size: int = 224, batch: int = 8, repeats: int = 5, warmup: int = 2,
                 threads: int = 0, progress=None, device: str = 'cpu',
                 amp: Optional[str] = None, compile_flow: Union[bool, dict] = False) -> dict:
    """Measure and return the timings, ratios, throughput and the setting.

    Args:
        size: image side (px).
        batch: batch size of the train step and of inference.
        repeats: timed repeats per variant (medians are reported).
        warmup: untimed repeats first.
        threads: torch threads (0: leave as is).
        progress: callable receiving progress lines.
        device: ``'cpu'`` or ``'cuda'``.
        amp: ``'fp16'`` / ``'bf16'``: mixed precision on CUDA (None, or on the CPU: fp32).
        compile_flow: every flow's ``compile`` value (``True``: its meta-encoder; a dict:
            ``scope``, ``mode``, ..., see :func:`compile_value`).
    """
    if threads:
        torch.set_num_threads(threads)
    say = progress or (lambda msg: None)
    used_amp = effective_amp(amp, device)
    if amp and not used_amp:
        say(f'overhead: --amp {amp} needs CUDA; autocast is off on {device} (fp32)')
    say('overhead: building ResNet-34 -> ResNet-18 models')
    models = {k: m.to(device) for k, m in build_models(compile_flow=compile_flow).items()}
    batch_data = _batch(batch, size)
    feat_cfg = _load(FEAT_CONFIG)  # the config as shipped: its N draw and encoder
    draw = feature_draw(feat_cfg)
    train_times, peaks = _train_steps(models, batch_data, device, used_amp, repeats, warmup, say,
                                      draw)
    # counted in eager mode only: a compiled flow does the same arithmetic, and its fused
    # kernels are not ATen operators
    flops, ops = ({}, {}) if compile_flow else _train_counts(models, batch_data, device,
                                                              used_amp)
    infer_times = _inference(models, batch_data['inputs'], device, used_amp, repeats, warmup,
                             say)
    med = {k: statistics.median(v) for k, v in {**train_times, **infer_times}.items()}
    where = (torch.cuda.get_device_name() if device == 'cuda' else
             f'{torch.get_num_threads()} CPU thread(s)')
    throughput = {name: dict(images_per_s=batch / med[name], peak_mib=peaks.get(name, 0.0),
                             gflop=flops[name] / 1e9 if name in flops else None,
                             flops_vs_kd=flops[name] / flops['kd'] if name in flops else None,
                             ops=ops.get(name),
                             ops_vs_kd=ops[name] / ops['kd'] if name in ops else None)
                  for name in ('kd', 'fmkt_logit', 'fmkt_feature')}
    return dict(
        setting=(f'ResNet-34 -> ResNet-18, {size} px, batch {batch}, {where}, '
                 f'{used_amp or "fp32"}{_compiled_note(compile_flow)}, '
                 f'torch {torch.__version__}'),
        machine=machine(device), software=software(),
        size=size, batch=batch, repeats=repeats, warmup=warmup, amp=used_amp, amp_requested=amp,
        compile_flow=compile_flow,
        threads=torch.get_num_threads(), median_s=med, throughput=throughput,
        times_s={k: v for k, v in {**train_times, **infer_times}.items()},
        ratios=_ratios(train_times, infer_times, feature_encoder_name(feat_cfg), draw))


def _compiled_note(compile_flow: Union[bool, dict]) -> str:
    if not compile_flow:
        return ''
    if compile_flow is True:
        return ', compiled flows'
    extra = ''.join(f', {k} {v}' for k, v in compile_flow.items() if k != 'scope')
    return f', compiled flows (scope {compile_flow.get("scope", "encoder")}{extra})'


def main(argv=None) -> dict:
    """Command line: measure, print the table, optionally write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=0)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--amp', default=None, choices=sorted(AMP_DTYPES),
                        help='mixed precision (mmengine AmpOptimWrapper); needs --device cuda')
    parser.add_argument('--compile-flow', nargs='?', const='encoder', default=None,
                        choices=['encoder', 'flow'],
                        help='torch.compile every flow: its meta-encoder (no value: '
                        'compile=True) or the whole unrolled flow (flow: compile.scope)')
    parser.add_argument('--compile-mode', default=None,
                        help='torch.compile mode with --compile-flow, e.g. reduce-overhead '
                        '(CUDA graphs)')
    parser.add_argument('--out', default=None, help='write the result JSON here')
    args = parser.parse_args(argv)
    if args.compile_mode and not args.compile_flow:
        parser.error('--compile-mode needs --compile-flow')
    if args.amp and args.device != 'cuda':
        parser.error('--amp needs --device cuda (mmengine\'s AmpOptimWrapper runs on CUDA)')
    result = run_overhead(args.size, args.batch, args.repeats, args.warmup, args.threads,
                          progress=lambda m: print(m, flush=True), device=args.device,
                          amp=args.amp,
                          compile_flow=compile_value(args.compile_flow, args.compile_mode))
    from .report import overhead_markdown
    print(overhead_markdown(result))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
