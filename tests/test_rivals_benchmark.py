"""DiffKD / RDR model configs of the Fashion-MNIST benchmark and their overhead measurement."""
import os.path as osp
import sys

import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from benchmarks.classification.configs import PAIRS, family, teacher_cfg  # noqa: E402
from benchmarks.classification.engine import build_model, save_state  # noqa: E402
from benchmarks.classification.jobs import _deployed_student  # noqa: E402
from benchmarks.classification.methods import method_cfg, method_hparams  # noqa: E402

#: the rivals read a CNN's last-stage maps: they run on the CNN pairs (methods.applies)
CNN_PAIRS = sorted(p for p in PAIRS if family(p) == 'cnn')


def _batch(n=4):
    from mmpretrain.structures import DataSample
    gen = torch.Generator().manual_seed(0)
    images = (torch.rand(n, 1, 28, 28, generator=gen) * 255).to(torch.uint8)
    samples = []
    for i in range(n):
        s = DataSample(metainfo=dict(sample_idx=i, flip=False))
        samples.append(s.set_gt_label(i % 10))
    return dict(inputs=images, data_samples=samples)


@pytest.fixture(scope='module')
def teacher_files(tmp_path_factory):
    out = tmp_path_factory.mktemp('fmnist_teachers')
    paths = {}
    for pair in CNN_PAIRS:
        torch.manual_seed(0)
        teacher = build_model(teacher_cfg(pair))
        paths[pair] = str(out / f'{pair}.pth')
        save_state(teacher, paths[pair])
    return paths


@pytest.mark.parametrize('pair', CNN_PAIRS)
@pytest.mark.parametrize('method', ['diffkd', 'rdr'])
def test_builders_give_models_that_train(method, pair, teacher_files):
    from mmengine.optim import build_optim_wrapper
    torch.manual_seed(0)
    cfg = method_cfg(method, pair, teacher_model=teacher_cfg(pair).model.to_dict(),
                     teacher_ckpt=teacher_files[pair])
    assert cfg.model.teacher_ckpt == teacher_files[pair] and not cfg.model.allow_random_teacher
    model = build_model(cfg)
    student_before = {k: v.clone() for k, v in model.student.state_dict().items()}
    wrapper = build_optim_wrapper(model, dict(type='OptimWrapper', optimizer=dict(
        type='SGD', lr=0.1, momentum=0.9)))
    log_vars = model.train_step(_batch(), wrapper)
    name = f'distill.loss_{method}'
    assert name in log_vars and torch.isfinite(torch.as_tensor(log_vars[name]))
    assert torch.isfinite(torch.as_tensor(log_vars['loss']))
    after = model.student.state_dict()
    assert sum(not torch.equal(v, after[k]) for k, v in student_before.items()
               if v.is_floating_point()) > 0
    if method == 'rdr':
        plain = _deployed_student('rdr', model, pair, cfg.model.to_dict()).eval()
        model.student.eval()
        x = model.student.data_preprocessor(dict(inputs=_batch()['inputs']), False)['inputs']
        with torch.no_grad():
            want, got = model.student(x, mode='tensor'), plain(x, mode='tensor')
        assert (got - want).abs().max() <= 1e-5 * max(1.0, want.abs().max().item())
        assert sum(p.numel() for p in plain.parameters()) < sum(
            p.numel() for p in model.student.parameters())


def test_builder_inputs_are_checked():
    with pytest.raises(ValueError, match='unknown method'):
        method_cfg('nope', 'wide')
    with pytest.raises(ValueError, match='unknown pair'):
        method_cfg('rdr', 'nope', teacher_cache='x')
    with pytest.raises(ValueError, match="'diffkd.steps' names no entry"):
        method_hparams('diffkd', overrides={'diffkd.steps': 3})
    # the cached teacher serving maps is passed through; no weights are loaded for it
    cfg = method_cfg('diffkd', 'wide', teacher_cache='t.pt', teacher_maps='m.pt').model
    assert cfg.teacher == dict(type='CachedLogitsTeacher', cache_file='t.pt', maps_file='m.pt')
    assert cfg.teacher_ckpt is None and cfg.allow_random_teacher


@pytest.mark.slow
def test_overhead_measurement_runs():
    from benchmarks.overhead import rivals as overhead
    result = overhead.run_rival_overhead(size=32, batch=2, repeats=1, warmup=0)
    keys = [r['key'] for r in result['ratios']]
    assert keys == [k for k, *_ in overhead.OVERHEAD_RATIOS]
    assert all(r['ratio'] > 0 for r in result['ratios'])
    assert set(result['median_s']) == set(overhead.TRAIN_KEYS) | set(overhead.INFER_KEYS)
