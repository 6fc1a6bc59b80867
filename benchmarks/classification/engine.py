"""Training and evaluation of one benchmark run through the models' own ``train_step`` /
``val_step``: a model built with MMRazor's registry, SGD in mmengine's ``OptimWrapper`` with
``OneCycleLR`` stepped per iteration, over an in-memory :class:`~.data.TensorLoader`.
"""
import contextlib
import copy
import time
from typing import Callable, Dict, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS
from torch import nn

from ..common.device import optim_wrapper_cfg, quiet_logs
from ..common.files import save_tensor
from .configs import HPARAMS
from .data import Split, TensorLoader

__all__ = [
    'build_model', 'train_model', 'optim_wrapper_config', 'one_cycle_config', 'evaluate',
    'predict_logits', 'set_seed', 'flow_heads', 'eval_num_steps', 'cached_logits',
    'cached_maps', 'cached_features', 'save_state', 'read_state', 'load_state'
]

Progress = Optional[Callable[[str], None]]


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch through mmengine (model init and the flow's step draws)."""
    from mmengine.runner import set_random_seed
    set_random_seed(seed)


def build_model(cfg: Config) -> nn.Module:
    """Build ``cfg.model`` with MMRazor's registry (which reaches mmpretrain's) and init it."""
    from mmrazor.registry import MODELS

    import fmkt_plugin  # noqa: F401  (registers FM-KT components; must precede mmrazor use)

    quiet_logs()
    from . import models  # noqa: F401  (registers the benchmark modules)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    return model


def _student(model: nn.Module) -> nn.Module:
    return getattr(model, 'student', model)


def flow_heads(model: nn.Module) -> list:
    """The student's flow connectors (empty for plain heads)."""
    from fmkt_plugin.models.connectors import find_flows
    return list(find_flows(_student(model)).values())


def eval_num_steps(model: nn.Module, num_steps: Optional[int]):
    """Evaluate every flow of ``model`` with ``num_steps`` steps inside the block (None, or a
    model without a flow: as configured), through the plugin's ``flow_num_steps``."""
    from fmkt_plugin.models.connectors import flow_num_steps
    if num_steps is None or not flow_heads(model):
        return contextlib.nullcontext()
    return flow_num_steps(model, num_steps)


def optim_wrapper_config(param_names: List[str], lr_scale: float, flow_lr_mult: float,
                         device: str, amp: Optional[str],
                         hparams: Optional[dict] = None) -> dict:
    """The optim-wrapper config of a run: the optimizer of ``hparams`` (default
    :data:`HPARAMS`: SGD) at ``lr_scale`` x its rate, gradient clipping, ``amp`` on CUDA, and
    ``flow_lr_mult`` on the parameters of a flow head or neck (found among ``param_names``)."""
    hp = hparams or HPARAMS
    optim = copy.deepcopy(hp['optimizer'])
    optim['lr'] *= lr_scale
    cfg = optim_wrapper_cfg(optim, device, amp, clip_grad=hp['clip_grad'])
    # the flow of a flow head, or of a flow neck (feature-level FM-KT)
    keys = [k for k in ('head.flow.', 'neck.flow.') if any(k in n for n in param_names)]
    if keys and flow_lr_mult != 1.0:
        cfg['paramwise_cfg'] = dict(
            custom_keys={k[:-1]: dict(lr_mult=flow_lr_mult) for k in keys})
    return cfg


def one_cycle_config(peaks: List[float], total: int,
                     hparams: Optional[dict] = None) -> Optional[dict]:
    """The one-cycle schedule (of ``hparams``, default :data:`HPARAMS`) of ``total``
    iterations up to the groups' ``peaks`` (None under 4 iterations: mmengine's one-cycle needs
    one step per phase), stepped per iteration."""
    oc = (hparams or HPARAMS)['one_cycle']
    if total < 4:
        return None
    return dict(type='OneCycleLR', eta_max=peaks, total_steps=total, by_epoch=False,
                pct_start=max(oc['pct_start'], 2.0 / total), div_factor=oc['div_factor'],
                final_div_factor=oc['final_div_factor'])


def train_model(model: nn.Module,
                loader: TensorLoader,
                epochs: int,
                lr_scale: float = 1.0,
                flow_lr_mult: float = 1.0,
                progress: Progress = None,
                tag: str = '',
                amp: Optional[str] = None,
                loss_log: Optional[List[float]] = None,
                hparams: Optional[dict] = None) -> Dict[str, float]:
    """Train ``model`` (on its device) ``epochs`` epochs with the optimizer of ``hparams``
    (default :data:`HPARAMS`: SGD, nesterov; a pair may set another) with gradient clipping,
    peak rate ``lr_scale`` x its rate, ``flow_lr_mult`` on the flow's parameters, and
    one-cycle, ``amp`` on CUDA; ``progress`` gets a ``tag``-ged line per epoch; ``loss_log``
    (when given) every iteration's loss. Returns ``dict(train_time_s, last_loss, iters)``."""
    device = next(model.parameters()).device.type
    names = [n for n, _ in model.named_parameters()]
    wrapper = build_optim_wrapper(
        model, optim_wrapper_config(names, lr_scale, flow_lr_mult, device, amp, hparams))
    total = epochs * len(loader)
    schedule = one_cycle_config([group['lr'] for group in wrapper.param_groups], total,
                                hparams)
    scheduler = None if schedule is None else PARAM_SCHEDULERS.build(
        schedule, default_args=dict(optimizer=wrapper))
    model.train()
    start = time.perf_counter()
    loss = torch.tensor(float('nan'))
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        running, count = 0.0, 0
        for batch in loader:
            log_vars = model.train_step(batch, wrapper)
            if scheduler is not None:
                scheduler.step()
            loss = torch.as_tensor(log_vars['loss']).detach()
            running = running + loss  # stays on the device: no host sync per step
            count += 1
            if loss_log is not None:
                loss_log.append(float(loss))
        if progress:
            progress(f'{tag} epoch {epoch + 1}/{epochs} loss {float(running) / max(count, 1):.4f} '
                     f'({time.perf_counter() - start:.0f} s)')
    return dict(train_time_s=time.perf_counter() - start, last_loss=float(loss), iters=total)


@torch.no_grad()
def evaluate(model: nn.Module, loader: TensorLoader, num_steps: Optional[int] = None) -> float:
    """Top-1 accuracy (%) of the (student) model through ``val_step``, every flow at
    ``num_steps`` steps (None: as configured)."""
    model.eval()
    correct = total = 0
    with eval_num_steps(model, num_steps):
        for batch in loader:
            preds = model.val_step(batch)
            pred = torch.stack([p.pred_label for p in preds]).flatten()
            gt = batch['labels']
            correct += int((pred.cpu() == gt).sum())
            total += gt.numel()
    model.train()
    return 100.0 * correct / max(total, 1)


@torch.no_grad()
def predict_logits(model: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Eval-mode logits (``mode='tensor'``) of a classifier on uint8 images ``(N, 1, H, W)``."""
    model.eval()
    device = next(model.parameters()).device
    outs = []
    for start in range(0, images.shape[0], batch_size):
        data = model.data_preprocessor(dict(inputs=images[start:start + batch_size].to(device)),
                                       False)
        outs.append(model(data['inputs'], mode='tensor').float().cpu())
    model.train()
    return torch.cat(outs) if outs else torch.zeros(0, 10)


def cached_logits(model: nn.Module, split: Split, indices: Sequence[int], path: str) -> str:
    """Write ``(2, len(split), K)`` eval-mode logits for both flip states (rows not in
    ``indices`` are NaN) to ``path`` and return it."""
    idx = torch.as_tensor(indices, dtype=torch.long)
    images = split.images[idx]
    plain = predict_logits(model, images)
    flipped = predict_logits(model, images.flip(-1))
    out = torch.full((2, len(split), plain.shape[1]), float('nan'))
    out[0, idx] = plain
    out[1, idx] = flipped
    save_tensor(path, out)
    return path


def _eval_batches(model: nn.Module, split: Split, idx: torch.Tensor, batch_size: int):
    """``(flip, start, inputs)`` of the images ``idx`` in both flip states, preprocessed for
    ``model`` (in eval mode while iterated), by batches of ``batch_size``."""
    model.eval()
    device = next(model.parameters()).device
    for flip in (0, 1):
        for start in range(0, idx.numel(), batch_size):
            images = split.images[idx[start:start + batch_size]]
            images = images.flip(-1) if flip else images
            yield flip, start, model.data_preprocessor(dict(inputs=images.to(device)),
                                                       False)['inputs']
    model.train()


def _store(out: Dict[str, torch.Tensor], key: str, rows: int, flip: int, start: int,
           value: torch.Tensor) -> None:
    """Put a batch's ``value`` in fp16 at ``out[key][flip, start:]`` (``(2, rows, ...)``,
    allocated on first use)."""
    value = value.to('cpu', torch.float16)
    if key not in out:
        out[key] = torch.empty((2, rows) + tuple(value.shape[1:]), dtype=torch.float16)
    out[key][flip, start:start + value.shape[0]] = value


@torch.no_grad()
def cached_maps(model: nn.Module, split: Split, indices: Sequence[int], path: str,
                batch_size: int = 1000) -> str:
    """Write fp16 eval-mode last-stage maps of a classifier (its backbone's last output) of the
    images ``indices`` for both flip states to ``path`` and return it: ``dict(maps=(2,
    len(indices), C, H, W), rows=indices)``, so a run on a subset keeps only its images (the
    smoke profile's file was 1.5 GB of NaN rows). fp16 halves the file; the maps are ReLU
    outputs of a few units, which fp16 keeps to about 1e-3 relative."""
    idx = torch.as_tensor(indices, dtype=torch.long)
    out: Dict[str, torch.Tensor] = {}
    for flip, start, inputs in _eval_batches(model, split, idx, batch_size):
        _store(out, 'maps', idx.numel(), flip, start, model.backbone(inputs)[-1])
    save_tensor(path, dict(maps=out['maps'], rows=idx))
    return path


@torch.no_grad()
def cached_features(model: nn.Module, split: Split, indices: Sequence[int], path: str,
                    sources: Sequence[str], batch_size: int = 1000) -> str:
    """Write fp16 eval-mode outputs of a classifier's modules ``sources`` (e.g. a ViT's
    ``backbone.layers.0``: its tokens) on the images ``indices`` for both flip states to
    ``path`` and return it: ``dict(features={source: (2, len(indices), ...)}, rows=indices)``,
    what :class:`~.models.CachedLogitsTeacher` serves to the recorders of those modules."""
    idx = torch.as_tensor(indices, dtype=torch.long)
    seen: Dict[str, torch.Tensor] = {}
    hooks = [model.get_submodule(src).register_forward_hook(
        lambda _m, _i, out, src=src: seen.__setitem__(src, out)) for src in sources]
    out: Dict[str, torch.Tensor] = {}
    try:
        for flip, start, inputs in _eval_batches(model, split, idx, batch_size):
            seen.clear()
            model(inputs, mode='tensor')
            for src in sources:
                _store(out, src, idx.numel(), flip, start, seen[src])
    finally:
        for hook in hooks:
            hook.remove()
        model.train()
    save_tensor(path, dict(features=out, rows=idx))
    return path


def save_state(module: nn.Module, path: str, meta: Optional[dict] = None) -> None:
    """Save a state dict atomically (mmengine checkpoint layout)."""
    save_tensor(path, {'state_dict': module.state_dict(), 'meta': meta or {}})


def read_state(path: str, field: str = 'benchmark checkpoint') -> dict:
    """The state dict of a checkpoint (:func:`save_state`'s layout), read by the plugin's
    loader (weights only; errors name ``field`` and the file)."""
    from fmkt_plugin.utils.checkpoint import checkpoint_state_dict, load_checkpoint
    return checkpoint_state_dict(load_checkpoint(path, field), path, field)


def load_state(module: nn.Module, path: str) -> None:
    """Load a state dict saved by :func:`save_state` (weights only)."""
    module.load_state_dict(read_state(path), strict=True)
