"""The benchmark's training through mmengine's ``Runner``, the way ``tools/train.py`` trains a
config: the same model config, optimizer, clipping and one-cycle schedule as
:func:`~.engine.train_model`, over the same in-memory loader. The benchmark trains with the
fast loop (:func:`~.engine.train_model`); this path exists to show that both train the same
model the same way (``tests/test_benchmark_runner.py``) and to time the Runner's own cost."""
import copy
import time
from typing import Dict, Optional

from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from .data import TensorLoader
from .engine import build_model, one_cycle_config, optim_wrapper_config, quiet_logs

__all__ = ['runner_train']


def runner_train(cfg: Config,
                 loader: TensorLoader,
                 epochs: int,
                 work_dir: str,
                 seed: int,
                 lr_scale: float = 1.0,
                 flow_lr_mult: float = 1.0,
                 hparams: Optional[dict] = None) -> Dict[str, object]:
    """Train ``cfg.model`` ``epochs`` epochs on ``loader`` with mmengine's ``Runner``.

    Args:
        cfg: a benchmark model config (``Config(model=...)``, as :func:`.methods.method_cfg`).
        loader: the training loader (its epoch is set by the Runner's sampler-seed hook).
        epochs: training epochs.
        work_dir: the Runner's work directory (logs; no checkpoint is written).
        seed: the Runner's seed (model init and the flows' draws), as ``set_seed`` for the fast
            loop.
        lr_scale: peak learning rate relative to the benchmark's.
        flow_lr_mult: learning-rate multiplier of the flow's parameters.
        hparams: the run's hyperparameters (optimizer, clipping, one-cycle; default
            ``HPARAMS``), as :func:`~.engine.train_model` takes them.

    Returns:
        ``dict(losses=[...], train_time_s, iters, model)``: every iteration's total loss, the
        time of ``Runner.train()`` and the trained model.
    """
    from mmengine.runner import Runner

    quiet_logs()
    # the parameter names decide the flow's learning-rate group, as in the fast loop; the
    # schedule's peaks are those of the groups the optim wrapper builds
    probe = build_model(cfg)
    wrapper = optim_wrapper_config([n for n, _ in probe.named_parameters()], lr_scale,
                                   flow_lr_mult, 'cpu', None, hparams)
    peaks = [g['lr'] for g in build_optim_wrapper(probe, copy.deepcopy(wrapper)).param_groups]
    total = epochs * len(loader)
    schedule = one_cycle_config(peaks, total, hparams)
    runner = Runner(
        model=copy.deepcopy(cfg.model.to_dict()),
        work_dir=work_dir,
        train_dataloader=loader,
        train_cfg=dict(by_epoch=True, max_epochs=epochs, val_interval=epochs + 1),
        optim_wrapper=wrapper,
        param_scheduler=[schedule] if schedule else None,
        default_hooks=dict(checkpoint=None, logger=dict(type='LoggerHook', interval=1)),
        randomness=dict(seed=seed),
        default_scope='mmrazor',
        log_level='WARNING')
    start = time.perf_counter()
    model = runner.train()
    seconds = time.perf_counter() - start
    losses = [float(v) for v in runner.message_hub.log_scalars['train/loss'].data[0]]
    return dict(losses=losses, train_time_s=seconds, iters=total, model=model)


def compare(method: str = 'fmkt_dist', pair: str = 'wide', epochs: int = 1, seed: int = 0,
            train_size: Optional[int] = None, data_root: str = 'benchmark_results/cache/data/'
            'fashion_mnist', work_dir: str = 'benchmark_results/runner') -> dict:
    """Train ``method`` on ``pair`` both ways on the Fashion-MNIST training images (the first
    ``train_size``, or all) with a random teacher's logits, and time both: ``python -m
    benchmarks.classification.runner``."""
    import os

    import torch

    from ..common.files import save_tensor
    from .data import load_fashion_mnist
    from .engine import set_seed, train_model
    from .methods import get, method_cfg, method_hparams
    from .tuning import load_picks

    split = load_fashion_mnist(data_root, splits=('train', ))['train']
    indices = torch.arange(train_size or len(split))
    os.makedirs(work_dir, exist_ok=True)
    cache = os.path.join(work_dir, 'teacher_logits.pt')
    gen = torch.Generator().manual_seed(seed)
    save_tensor(cache, torch.randn(2, len(split), 10, generator=gen) * 3)
    hp = method_hparams(method, load_picks(), pair=pair)
    mult = hp['flow_lr_mult'][get(method).lr_mult_key]
    if get(method).teacher_maps:
        raise ValueError(f'{method} reads teacher maps; pick a logit method')
    cfg = method_cfg(method, pair, teacher_cache=cache if get(method).teacher else None,
                     hparams=hp)

    def loader():
        return TensorLoader(split, hp['batch_size'], indices=indices, shuffle=True,
                            flip=True, seed=seed)

    set_seed(seed)
    fast_losses: list = []
    fast = train_model(build_model(cfg), loader(), epochs, flow_lr_mult=mult,
                       loss_log=fast_losses, hparams=hp)
    start = time.perf_counter()
    run = runner_train(cfg, loader(), epochs, os.path.join(work_dir, 'work'), seed,
                       flow_lr_mult=mult, hparams=hp)
    total = time.perf_counter() - start
    diff = max(abs(a - b) for a, b in zip(fast_losses, run['losses']))
    return dict(method=method, pair=pair, iters=fast['iters'], fast_s=fast['train_time_s'],
                runner_train_s=run['train_time_s'], runner_total_s=total,
                max_abs_loss_diff=diff, threads=torch.get_num_threads())


if __name__ == '__main__':
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--method', default='fmkt_dist')
    parser.add_argument('--pair', default='wide')
    parser.add_argument('--epochs', type=int, default=1)
    parser.add_argument('--train-size', type=int, default=None)
    parser.add_argument('--data-root', default='benchmark_results/cache/data/fashion_mnist')
    parser.add_argument('--work-dir', default='benchmark_results/runner')
    args = parser.parse_args()
    out = compare(args.method, args.pair, args.epochs, train_size=args.train_size,
                  data_root=args.data_root, work_dir=args.work_dir)
    print(f"{out['method']} on {out['pair']}, {out['iters']} iterations, {out['threads']} "
          f"threads: fast loop {out['fast_s']:.2f} s, Runner.train() "
          f"{out['runner_train_s']:.2f} s ({out['runner_train_s'] / out['fast_s']:.3f}x), "
          f"Runner built and trained {out['runner_total_s']:.2f} s; largest loss difference "
          f"{out['max_abs_loss_diff']:.3g}")
