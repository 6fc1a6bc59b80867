"""The benchmark's caches: the teacher's last-stage maps (so that no method runs a live
teacher) and the kept models of flow runs (so that a later profile adds the N analysis or a
later stage without training again)."""
import os
import os.path as osp

import pytest
import torch

from benchmarks.classification import configs
from benchmarks.classification.methods import REGISTRY, method_cfg
from benchmarks.common.fmnist import IDX_BYTES, PACKAGE_DIR

#: fp16 storage of the maps: relative error of a stored value (2**-11), with headroom
MAPS_RTOL = 1e-3


@pytest.fixture(scope='module')
def fmnist_root(tmp_path_factory):
    missing = [n for n in IDX_BYTES if not osp.isfile(osp.join(PACKAGE_DIR, n + '.gz'))]
    if missing:
        pytest.fail(f'Fashion-MNIST is not installed ({PACKAGE_DIR}/{missing[0]}.gz missing): run '
                    '`bash scripts/bootstrap.sh`', pytrace=False)
    from benchmarks.classification.data import prepare_fashion_mnist
    return prepare_fashion_mnist(str(tmp_path_factory.mktemp('fmnist')))


def _teacher_caches(root, tmp_path, rows):
    from benchmarks.classification.engine import build_model, cached_logits, cached_maps
    from benchmarks.classification.jobs import _data
    split = _data(root)['train']
    torch.manual_seed(0)
    teacher = build_model(configs.teacher_cfg('wide'))
    # a few train-mode batches give the BNs running statistics that are not the identity
    with torch.no_grad():
        for start in range(0, 512, 128):
            data = teacher.data_preprocessor(dict(inputs=split.images[start:start + 128]), True)
            teacher(data['inputs'], mode='tensor')
    logits = cached_logits(teacher, split, rows, str(tmp_path / 'logits.pt'))
    maps = cached_maps(teacher, split, rows, str(tmp_path / 'maps.pt'))
    return split, teacher, logits, maps


def test_cached_maps_equal_the_live_teachers_within_fp16(fmnist_root, tmp_path):
    from mmpretrain.structures import DataSample

    from benchmarks.classification.data import TensorLoader
    from benchmarks.classification.models import CachedLogitsTeacher
    rows = list(range(0, 700, 5))
    split, teacher, logits, maps = _teacher_caches(fmnist_root, tmp_path, rows)
    cached = CachedLogitsTeacher(logits, maps_file=maps)
    # only the rows trained on are kept (a subset's file was all-NaN rows of every image)
    assert cached.maps.dtype == torch.float16 and cached.maps.shape[:2] == (2, len(rows))
    assert os.path.getsize(maps) < 2 * len(rows) * 128 * 7 * 7 * 2 * 1.01
    assert not cached.state_dict()  # nothing to load: it counts as a trained teacher
    seen = []
    cached.get_submodule('backbone.stages.3').register_forward_hook(lambda m, i, o: seen.append(o))
    batch = next(iter(TensorLoader(split, 32, indices=torch.tensor(rows), shuffle=True,
                                   flip=True, seed=5)))
    assert 0 < int(batch['flips'].sum()) < 32
    samples = [DataSample(metainfo=dict(sample_idx=int(i), flip=bool(f)))
               for i, f in zip(batch['indices'], batch['flips'])]
    cached(batch['inputs'], samples)
    teacher.eval()
    with torch.no_grad():
        data = teacher.data_preprocessor(dict(inputs=batch['inputs']), False)
        live = teacher.backbone(data['inputs'])[-1]
    assert seen[0].shape == live.shape == (32, 128, 7, 7)
    assert float(live.abs().max()) > 0.5
    torch.testing.assert_close(seen[0], live, rtol=MAPS_RTOL, atol=MAPS_RTOL * 1e-2)
    assert not torch.equal(seen[0], live.flip(-1))  # the flipped rows are the flipped images'
    with pytest.raises(ValueError, match=r'holds no maps of images \[1\]'):
        cached.lookup_maps([DataSample(metainfo=dict(sample_idx=1, flip=False))])


def test_no_method_runs_a_live_teacher(fmnist_root, tmp_path):
    """Given the caches, every method's teacher is the cached one (maps where it reads them),
    and a method that reads the maps trains on them."""
    from benchmarks.classification.data import TensorLoader
    from benchmarks.classification.engine import build_model
    from benchmarks.classification.models import CachedLogitsTeacher
    rows = list(range(256))
    split, _, logits, maps = _teacher_caches(fmnist_root, tmp_path, rows)
    for method in REGISTRY:
        if not method.teacher or 'cnn' not in method.families:
            continue
        cfg = method_cfg(method.name, 'wide', teacher_cache=logits,
                         teacher_maps=maps if method.teacher_maps else None)
        model = build_model(cfg)
        assert isinstance(model.teacher, CachedLogitsTeacher), method.name
        assert (model.teacher.maps is not None) == method.teacher_maps, method.name
        if method.name in ('diffkd', 'rdr', 'fmkt_feat_narrow'):
            from mmengine.optim import build_optim_wrapper
            wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='SGD', lr=0.01)))
            batch = next(iter(TensorLoader(split, 16, indices=torch.tensor(rows), flip=True)))
            log_vars = model.train_step(batch, wrapper)
            assert torch.isfinite(torch.as_tensor(log_vars['loss'])), method.name


def _job(root, cache_dir, method, **extra):
    base = dict(data_root=root, cache_dir=str(cache_dir), train_size=512, test_size=300,
                teacher_epochs=1, epochs=1, theta_epochs=1, threads=1, holdout=0,
                device='cpu', amp=None, eval_steps=(), pair='wide', seed=0)
    return dict(base, kind='run', id=f'{method}-wide-s0', method=method, settings={}, **extra)


@pytest.mark.slow
def test_a_later_profile_completes_cached_runs_from_their_kept_models(fmnist_root, tmp_path):
    from benchmarks.classification.jobs import run_student, run_teacher
    torch.set_num_threads(1)
    cache = tmp_path / 'cache'
    teacher = run_teacher(dict(_job(fmnist_root, cache, 'kd'), kind='teacher'), print)
    first = run_student(_job(fmnist_root, cache, 'fmkt_kd', teacher=teacher), print)
    assert not first['cached'] and set(first['top1_by_steps']) == {'8'}
    assert osp.isfile(first['ckpt']) and 'ensemble_logits' not in first
    # the extended profile: N analysis and the ensemble for FM-KT^Theta's second stage
    later = run_student(_job(fmnist_root, cache, 'fmkt_kd', teacher=teacher,
                             eval_steps=(1, 2, 8), keep_ensemble=True), print)
    assert later['cached'] and later['train_time_s'] == first['train_time_s']
    assert set(later['top1_by_steps']) == {'1', '2', '8'}
    assert later['top1_by_steps']['8'] == first['top1_by_steps']['8']
    ensemble = torch.load(later['ensemble_logits'], weights_only=True)
    assert ensemble.shape == (2, 60000, 10)
    assert int(torch.isfinite(ensemble).all(2).all(0).sum()) == 512  # the training rows
    # the same numbers as a run that evaluated them right after training
    fresh = run_student(_job(fmnist_root, tmp_path / 'fresh', 'fmkt_kd', teacher=teacher,
                             eval_steps=(1, 2, 8)), print)
    assert not fresh['cached'] and fresh['top1_by_steps'] == later['top1_by_steps']
    # a stage-2 method starts from the completed first stage
    theta = run_student(_job(fmnist_root, cache, 'fmkt_theta', teacher=teacher, stage1=later),
                        print)
    assert 0 < theta['top1'] <= 100 and theta['epochs'] == 2


def test_cached_tokens_of_a_vit_teacher_equal_the_live_teachers_within_fp16(fmnist_root,
                                                                             tmp_path):
    """The ViT pair's teacher: the outputs of its ``teacher_features`` (tokens) and its logits
    are served where a live ViT teacher's recorders read them (``head.layers.head``)."""
    from mmpretrain.structures import DataSample

    from benchmarks.classification.data import TensorLoader
    from benchmarks.classification.engine import build_model, cached_features, cached_logits
    from benchmarks.classification.jobs import _data
    from benchmarks.classification.models import CachedLogitsTeacher
    split = _data(fmnist_root)['train']
    rows = list(range(0, 300, 3))
    torch.manual_seed(0)
    teacher = build_model(configs.teacher_cfg('vit'))
    sources = configs.pair_part('vit', 'teacher_features')
    assert sources == ['backbone.layers.0', 'backbone.layers.1', 'backbone.ln1']
    logits = cached_logits(teacher, split, rows, str(tmp_path / 'logits.pt'))
    feats = cached_features(teacher, split, rows, str(tmp_path / 'tokens.pt'), sources)
    cached = CachedLogitsTeacher(logits, maps_file=feats, logits_at='head.layers.head')
    assert cached.maps is None and sorted(cached.features) == sorted(sources)
    assert not cached.state_dict()
    seen = {}
    for src in sources + ['head.layers.head']:
        cached.get_submodule(src).register_forward_hook(
            lambda m, i, o, src=src: seen.__setitem__(src, o))
    batch = next(iter(TensorLoader(split, 16, indices=torch.tensor(rows), shuffle=True,
                                   flip=True, seed=3)))
    assert 0 < int(batch['flips'].sum()) < 16
    samples = [DataSample(metainfo=dict(sample_idx=int(i), flip=bool(f)))
               for i, f in zip(batch['indices'], batch['flips'])]
    cached(batch['inputs'], samples)
    live = {}
    hooks = [teacher.get_submodule(src).register_forward_hook(
        lambda m, i, o, src=src: live.__setitem__(src, o)) for src in sources]
    teacher.eval()
    with torch.no_grad():
        data = teacher.data_preprocessor(dict(inputs=batch['inputs']), False)
        live_logits = teacher(data['inputs'], mode='tensor')
    for hook in hooks:
        hook.remove()
    for src in sources:
        assert seen[src].shape == live[src].shape == (16, 17, 96), src
        torch.testing.assert_close(seen[src], live[src], rtol=MAPS_RTOL, atol=2e-3)
    torch.testing.assert_close(seen['head.layers.head'], live_logits, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="serves no outputs of 'backbone.layers.2'"):
        cached.lookup_features(samples, 'backbone.layers.2')


def test_the_vit_methods_train_on_the_cached_tokens(fmnist_root, tmp_path):
    """Every method of the pairs of a ViT student builds with the cached teacher (tokens where
    it reads them: a ViT teacher's), its recorders find each model's logits where its head puts
    them (the ViT's ``head.layers.head``, the CNN teacher's ``head.fc``) and a step trains."""
    from mmengine.optim import build_optim_wrapper

    from benchmarks.classification.data import TensorLoader
    from benchmarks.classification.engine import build_model, cached_features, cached_logits
    from benchmarks.classification.jobs import _data
    from benchmarks.classification.methods import applies
    from benchmarks.classification.models import CachedLogitsTeacher
    split = _data(fmnist_root)['train']
    rows = list(range(64))
    expected = dict(vit=['student', 'kd', 'dist', 'fmkt_dist', 'vitkd', 'fmkt_dist_vitkd'],
                    **{'cnn-vit': ['student', 'kd', 'dist', 'fmkt_dist']})
    for pair, names in expected.items():
        torch.manual_seed(0)
        teacher = build_model(configs.teacher_cfg(pair))
        logits = cached_logits(teacher, split, rows, str(tmp_path / f'{pair}-logits.pt'))
        sources = configs.pair_option(pair, 'teacher_features')
        feats = sources and cached_features(teacher, split, rows,
                                            str(tmp_path / f'{pair}-tokens.pt'), sources)
        assert [m.name for m in REGISTRY if applies(m.name, pair)] == names
        for method in [m for m in REGISTRY if m.name in names and m.teacher]:
            cfg = method_cfg(method.name, pair, teacher_cache=logits,
                             teacher_maps=feats if method.teacher_maps else None)
            recorders = cfg.model.distiller.teacher_recorders
            assert any(r.source == ('head.fc' if pair == 'cnn-vit' else 'head.layers.head')
                       for r in recorders.values()), (pair, method.name)
            model = build_model(cfg)
            assert isinstance(model.teacher, CachedLogitsTeacher), method.name
            assert bool(model.teacher.features) == method.teacher_maps, method.name
            wrapper = build_optim_wrapper(model, dict(optimizer=dict(type='AdamW', lr=1e-3)))
            batch = next(iter(TensorLoader(split, 16, indices=torch.tensor(rows), flip=True)))
            log_vars = model.train_step(batch, wrapper)
            losses = {k for k in log_vars if k.startswith('distill.')}
            assert losses, method.name
            assert all(torch.isfinite(torch.as_tensor(v)) for v in log_vars.values())
            # the teacher's logits reach the loss: a KD student is scored against them
            # (a random ViT's zero-initialised head gives zero logits: a KL of 0 there)
            if method.name == 'kd' and pair == 'cnn-vit':
                assert float(log_vars['distill.loss_kl']) > 0, pair
            if method.teacher_maps:
                assert float(log_vars['distill.loss_vitkd']) > 0
