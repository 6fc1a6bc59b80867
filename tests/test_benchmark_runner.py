"""The benchmark's fast training loop trains what mmengine's ``Runner`` trains: one method,
from the same config, for the same steps and seed, gives the same loss curve and weights both
ways (``benchmarks.classification.runner``)."""
import pytest
import torch
from fixtures.smoke import divergence

from benchmarks.classification.data import Split, TensorLoader
from benchmarks.classification.engine import build_model, set_seed, train_model
from benchmarks.classification.methods import get, method_cfg, method_hparams
from benchmarks.classification.runner import runner_train
from benchmarks.classification.tuning import load_picks


def _data(tmp_path, n: int = 640):
    gen = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=gen),
                  torch.randint(0, 10, (n, ), generator=gen), 'train')
    cache = str(tmp_path / 'logits.pt')
    torch.save(torch.randn(2, n, 10, generator=gen) * 3, cache)
    maps = str(tmp_path / 'maps.pt')
    torch.save(dict(maps=torch.rand(2, n, 128, 7, 7).half(), rows=torch.arange(n)), maps)
    return split, cache, maps


@pytest.mark.slow
@pytest.mark.parametrize('method', ['fmkt_dist', 'fmkt_feat'])
def test_the_fast_loop_and_the_runner_train_the_same_model(method, tmp_path):
    """``fmkt_dist``: the flow head, its learning-rate group (0.1x) and the one-cycle schedule
    per group; ``fmkt_feat``: the flow neck, which draws its N every iteration from the seeded
    generator. 2 epochs of 5 iterations (the loader's order and flips move with the epoch)."""
    split, cache, maps = _data(tmp_path)
    hp = method_hparams(method, load_picks())
    mult = hp['flow_lr_mult'][get(method).lr_mult_key]
    assert mult == 0.1
    cfg = method_cfg(method, 'wide', teacher_cache=cache, hparams=hp,
                     teacher_maps=maps if get(method).teacher_maps else None)

    def loader():
        return TensorLoader(split, hp['batch_size'], shuffle=True, flip=True, seed=3)

    set_seed(3)
    model = build_model(cfg)
    fast = []
    train_model(model, loader(), 2, flow_lr_mult=mult, loss_log=fast)
    run = runner_train(cfg, loader(), 2, str(tmp_path / 'work'), seed=3, flow_lr_mult=mult)
    assert len(fast) == len(run['losses']) == 10
    assert len(set(fast)) > 5  # the curve moves: a test that could fail
    assert divergence(fast) is None, divergence(fast)  # equal curves must also be sane ones
    assert run['losses'] == pytest.approx(fast, rel=1e-6, abs=0)
    ours, theirs = model.state_dict(), run['model'].state_dict()
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        if value.is_floating_point():
            assert torch.allclose(value, theirs[key], rtol=1e-5, atol=1e-7), key
