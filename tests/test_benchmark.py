"""The embedded Fashion-MNIST benchmark, end to end on a tiny slice (profile ``smoke``).

Needs the Debian package ``dataset-fashion-mnist`` (``scripts/bootstrap.sh`` installs it); without
it these tests fail with the install command instead of being skipped.
"""
import json
import math
import os.path as osp

import pytest
import torch

from benchmarks.classification import configs
from benchmarks.classification.methods import REGISTRY, get, method_cfg
from benchmarks.common.fmnist import IDX_BYTES, PACKAGE_DIR


def _require_dataset():
    missing = [n for n in IDX_BYTES if not osp.isfile(osp.join(PACKAGE_DIR, n + '.gz'))]
    if missing:
        pytest.fail(f'Fashion-MNIST is not installed ({PACKAGE_DIR}/{missing[0]}.gz missing): run '
                    '`bash scripts/bootstrap.sh` or `apt-get install -y dataset-fashion-mnist`',
                    pytrace=False)


@pytest.fixture(scope='module')
def fmnist_root(tmp_path_factory):
    _require_dataset()
    from benchmarks.classification.data import prepare_fashion_mnist
    return prepare_fashion_mnist(str(tmp_path_factory.mktemp('fmnist')))


def _random_split(tmp_path, n: int):
    """``n`` random 28x28 training images with labels, and a cached-logits file (2 flips x n
    x 10) for them."""
    from benchmarks.classification.data import Split
    gen = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=gen),
                  torch.randint(0, 10, (n, ), generator=gen), 'train')
    cache = str(tmp_path / 'logits.pt')
    torch.save(torch.randn(2, n, 10, generator=gen) * 3, cache)
    return split, cache


def _kd_loss(preds, target, kd: dict):
    """The KD baseline's loss (``kd``: ``HPARAMS['kd']``): ``kd_weight`` T^2 KL, batch mean."""
    import torch.nn.functional as F
    tau = kd['tau']
    return kd['kd_weight'] * tau**2 * F.kl_div(F.log_softmax(preds / tau, 1),
                                               F.softmax(target / tau, 1),
                                               reduction='batchmean')


def test_dataset_is_real_fashion_mnist(fmnist_root):
    from benchmarks.classification.jobs import _data
    data = _data(fmnist_root)
    assert data['train'].images.shape == (60000, 1, 28, 28)
    assert data['test'].images.shape == (10000, 1, 28, 28)
    assert data['test'].labels.bincount().tolist() == [1000] * 10
    assert not torch.equal(data['train'].images[:10000], data['test'].images)


def test_plan_default_profile():
    """The main job: the headline methods only, no live teacher, no maps, no kept ensembles."""
    from benchmarks.classification.planning import plan_jobs, resolve_profile
    prof = resolve_profile('default')
    assert len(prof['seeds']) >= 5  # paired intervals need seeds
    jobs = plan_jobs(prof, dict(epochs=prof['epochs']))
    ids = [j['id'] for j in jobs]
    assert len(ids) == len(set(ids))
    assert ids[:2] == ['teacher-wide', 'teacher-deep']
    assert set(prof['methods']) == {'student', 'kd', 'dkd', 'dist', 'fmkt_kd', 'fmkt_dist',
                                    'ofmkt', 'fmkt_aux'}
    with_teacher = sum(get(m).teacher for m in prof['methods'])
    assert with_teacher == len(prof['methods']) - 2
    assert len(jobs) == 2 + len(prof['seeds']) * (2 + with_teacher * 2)
    assert not any(j.get('maps') or j.get('keep_ensemble') for j in jobs)
    assert prof['eval_steps'] == ()  # the headline N only; the N analysis is in `extended`
    for job in jobs:
        assert all(ids.index(dep) < ids.index(job['id']) for dep in job['after'])


def test_plan_extended_profile():
    """Everything else: every method, the teachers cache their maps for the map readers, and a
    first stage keeps its ensemble for the stage planned after it."""
    from benchmarks.classification.planning import plan_jobs, resolve_profile
    prof = resolve_profile('extended')
    assert set(prof['methods']) == {m.name for m in REGISTRY}
    default = resolve_profile('default')
    for key in ('seeds', 'teacher_epochs', 'epochs', 'train_size', 'test_size'):
        assert prof[key] == default[key], key  # the main job's runs are reused
    assert prof['pairs'] == default['pairs'] + ('vit', 'cnn-vit')
    jobs = plan_jobs(prof, dict(epochs=prof['epochs']))
    ids = [j['id'] for j in jobs]
    assert all(j['maps'] for j in jobs if j['kind'] == 'teacher' and j['pair'] != 'cnn-vit')
    theta = next(j for j in jobs if j['id'] == 'fmkt_theta-deep-s2')
    assert theta['after'] == ['teacher-deep', 'fmkt_kd-deep-s2']
    assert next(j for j in jobs if j['id'] == 'fmkt_kd-deep-s2')['keep_ensemble']
    assert not any(j.get('keep_ensemble') for j in jobs if j.get('method') == 'kd')
    for job in jobs:
        assert all(ids.index(dep) < ids.index(job['id']) for dep in job['after'])
    # the ViT pair runs its family's methods only, its teacher-free student once per seed
    vit = sorted({j['method'] for j in jobs if j.get('pair') == 'vit' and j['kind'] == 'run'})
    assert vit == ['dist', 'fmkt_dist', 'fmkt_dist_vitkd', 'kd', 'student', 'vitkd']
    hybrid = sorted({j['method'] for j in jobs if j.get('pair') == 'cnn-vit'
                     and j['kind'] == 'run'})
    assert hybrid == ['dist', 'fmkt_dist', 'kd']  # the student alone: the vit pair's runs
    assert 'student-vit-s0' in ids and 'student-wide-s0' in ids and 'student-deep-s0' not in ids
    assert not any(j.get('method') in ('vitkd', 'fmkt_dist_vitkd') and j['pair'] != 'vit'
                   for j in jobs)
    teachers = {j['pair']: j for j in jobs if j['kind'] == 'teacher'}
    assert teachers['vit']['teacher_epochs'] == 4 * prof['teacher_epochs']
    assert teachers['cnn-vit']['teacher_epochs'] == prof['teacher_epochs']
    assert not teachers['cnn-vit']['maps']  # no method of it reads a feature


def test_every_method_config_builds(tmp_path):
    from benchmarks.classification.engine import build_model
    cache = str(tmp_path / 'logits.pt')
    torch.save(torch.randn(2, 4, 10), cache)
    for method in [m for m in REGISTRY if 'cnn' in m.families]:
        model = build_model(method_cfg(method.name, 'deep', teacher_cache=cache))
        assert type(model).__name__ == {
            'student': 'ImageClassifier', 'ofmkt': 'OFMKT', 'fmkt_kd': 'FMKTDistill',
            'fmkt_dist': 'FMKTDistill', 'fmkt_fold': 'FMKTDistill', 'diffkd': 'DiffKDDistill',
            'rdr': 'RDRDistill', 'fmkt_joint': 'FMKTDistill',
            'fmkt_joint_bb': 'FMKTDistill', 'fmkt_aux': 'FMKTDistill',
            'fmkt_feat': 'FMKTDistill', 'fmkt_feat_narrow': 'FMKTDistill'}.get(
                method.name, 'FMKTDistill' if '_authors' in method.name else
                'SingleTeacherDistill')
        if method.name == 'fmkt_fold':
            assert model.student.head.flow.meta_encoder.affine


@pytest.mark.parametrize('method,detached', [('fmkt_joint', True), ('fmkt_joint_bb', False)])
def test_joint_theta_deploys_as_the_plain_student(tmp_path, method, detached):
    """FM-KT^Theta, joint form: the deployed plain student (backbone + theta_fc as head.fc of a
    LinearClsHead, loaded strictly) gives the trained model's eval logits, at the plain
    student's parameter count; the plain head's losses reach the backbone only when not
    detached."""
    from benchmarks.classification.data import TensorLoader
    from benchmarks.classification.engine import build_model, predict_logits, set_seed, train_model
    from benchmarks.classification.jobs import _evaluate
    from benchmarks.classification.methods import get, method_hparams
    split, cache = _random_split(tmp_path, 96)
    hp = method_hparams(method)
    set_seed(0)
    model = build_model(method_cfg(method, 'wide', teacher_cache=cache, hparams=hp))
    head = model.student.head
    assert get(method).deploy == 'theta' and head.theta_cfg['detach_feature'] is detached
    assert head.theta_cfg['use_for_inference']
    assert head.theta_cfg['tau'] == hp['joint']['tau']

    # the plain head's losses alone: backbone gradient only when the feature is not detached
    batch = next(iter(TensorLoader(split, 16, seed=0)))
    data = model.data_preprocessor(batch, True)
    losses = head.loss(model.student.extract_feat(data['inputs']), data['data_samples'])
    model.zero_grad()
    (losses['loss_theta_kd'] + losses['loss_theta_ce']).backward()
    backbone_grad = sum(float(p.grad.abs().sum()) for p in model.student.backbone.parameters()
                        if p.grad is not None)
    assert (backbone_grad == 0) is detached
    assert head.theta_fc.fc.weight.grad.abs().sum() > 0
    model.zero_grad()

    before = head.theta_fc.fc.weight.detach().clone()
    train_model(model, TensorLoader(split, 16, shuffle=True, flip=True, seed=0), 1)
    assert not torch.equal(head.theta_fc.fc.weight, before)  # trained jointly

    job = dict(method=method, pair='wide', eval_steps=(1, 8))
    scores = _evaluate(job, hp, model, TensorLoader(split, 32))
    assert scores['deploy_max_abs_logit_diff'] < 1e-5
    assert scores['top1'] == scores['trained_top1']
    plain = build_model(method_cfg('student', 'wide'))
    assert scores['deployed_params'] == sum(p.numel() for p in plain.parameters())
    assert scores['deployed_params'] < sum(p.numel() for p in model.student.parameters())
    # the trained model's eval logits are the plain head's, not the ensemble's
    theta = predict_logits(model.student, split.images)
    model.student.head.theta_cfg['use_for_inference'] = False
    assert (predict_logits(model.student, split.images) - theta).abs().max() > 1e-3


def test_aux_variant_trains_the_plain_head_with_kd_towards_the_teacher(tmp_path):
    """FM-KT^Theta (aux): the plain head's loss is the KD baseline's (KL towards the teacher's
    logits, not the ensemble) + CE, it reaches the backbone, and the deployed plain student
    gives the trained model's eval logits."""
    from benchmarks.classification.data import TensorLoader
    from benchmarks.classification.engine import build_model, set_seed, train_model
    from benchmarks.classification.jobs import _evaluate
    from benchmarks.classification.methods import method_hparams
    split, cache = _random_split(tmp_path, 64)
    hp = method_hparams('fmkt_aux')
    set_seed(0)
    model = build_model(method_cfg('fmkt_aux', 'wide', teacher_cache=cache, hparams=hp))
    head = model.student.head
    assert head.theta_cfg['kd_weight'] == 0 and not head.theta_cfg['detach_feature']
    assert head.theta_cfg['ce_weight'] == hp['kd']['ce_weight']

    batch = next(iter(TensorLoader(split, 16, seed=0)))
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    assert {'distill.loss_plain_kd', 'distill.loss_fmkt'} <= set(losses)
    # the recorded plain-head logits against the recorded teacher logits: KD's own loss
    distiller = model.distiller
    plain = distiller.student_recorders.get_recorder('plain').get_record_data()[0]
    target = distiller.teacher_recorders.get_recorder('fc').get_record_data()
    torch.testing.assert_close(losses['distill.loss_plain_kd'], _kd_loss(plain, target, hp['kd']),
                               rtol=1e-4, atol=1e-6)
    model.zero_grad()
    losses['distill.loss_plain_kd'].backward()
    assert sum(float(p.grad.abs().sum()) for p in model.student.backbone.parameters()
               if p.grad is not None) > 0

    train_model(model, TensorLoader(split, 16, shuffle=True, flip=True, seed=0), 1)
    scores = _evaluate(dict(method='fmkt_aux', pair='wide', eval_steps=(1, 8)), hp, model,
                       TensorLoader(split, 32))
    assert scores['deploy_max_abs_logit_diff'] < 1e-5
    assert scores['top1'] == scores['trained_top1']


def test_capacity_control_is_kd_with_an_mlp_head(tmp_path):
    """kd_mlp: KD's loss on the logits of a two-layer MLP head of about the flow head's size."""
    from benchmarks.classification.data import TensorLoader
    from benchmarks.classification.engine import build_model
    from benchmarks.classification.methods import method_hparams
    split, cache = _random_split(tmp_path, 32)
    hp = method_hparams('kd_mlp')
    model = build_model(method_cfg('kd_mlp', 'wide', teacher_cache=cache, hparams=hp))
    head = model.student.head
    assert type(head).__name__ == 'StackedLinearClsHead'
    assert 2000 < sum(p.numel() for p in head.parameters()) < 4000
    batch = next(iter(TensorLoader(split, 16, seed=0)))
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    logits = model.distiller.student_recorders.get_recorder('fc').get_record_data()
    target = model.distiller.teacher_recorders.get_recorder('fc').get_record_data()
    # the recorded logits are the MLP head's output (train mode: the same batch statistics)
    torch.testing.assert_close(logits, model.student(data['inputs'], mode='tensor'),
                               rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(losses['distill.loss_kl'], _kd_loss(logits, target, hp['kd']),
                               rtol=1e-4, atol=1e-6)


def test_feature_level_fmkt_row_trains_its_flow_neck(tmp_path):
    """fmkt_feat: a live teacher's last map, projected, is the target of every step of the
    student's flow neck (MSE) beside KD on the logits; the neck's flow trains at the flow
    learning-rate multiplier."""
    from mmengine.optim import build_optim_wrapper

    from benchmarks.classification.data import TensorLoader
    from benchmarks.classification.engine import (
        build_model,
        evaluate,
        optim_wrapper_config,
        train_model,
    )
    from benchmarks.classification.methods import method_hparams
    split, cache = _random_split(tmp_path, 48)
    hp = method_hparams('fmkt_feat')
    model = build_model(method_cfg('fmkt_feat', 'wide', teacher_cache=cache, hparams=hp))
    assert type(model.teacher).__name__ == 'ImageClassifier'  # live, not the cached logits
    neck = model.student.neck
    assert type(neck).__name__ == 'FlowMatchingNeck'
    batch = next(iter(TensorLoader(split, 16, seed=0)))
    losses = model(**model.data_preprocessor(batch, True), mode='loss')
    assert {'distill.loss_kl', 'distill.loss_fmkt'} <= set(losses)
    assert torch.isfinite(losses['distill.loss_fmkt']) and losses['distill.loss_fmkt'] > 0
    names = [n for n, _ in model.named_parameters()]
    wrapper = build_optim_wrapper(model, optim_wrapper_config(names, 1.0, 0.1, 'cpu', None))
    lrs = {id(p): g['lr'] for g in wrapper.optimizer.param_groups for p in g['params']}
    flow_p = next(p for n, p in model.named_parameters() if 'neck.flow' in n)
    conv_p = next(p for n, p in model.named_parameters() if 'architecture.backbone' in n)
    assert lrs[id(flow_p)] == pytest.approx(0.1 * lrs[id(conv_p)])
    before = {n: p.detach().clone() for n, p in neck.named_parameters()}
    train_model(model, TensorLoader(split, 16, shuffle=True, flip=True, seed=0), 1,
                flow_lr_mult=0.1)
    assert any(not torch.equal(p, before[n]) for n, p in neck.named_parameters())
    assert 0 <= evaluate(model, TensorLoader(split, 16)) <= 100


@pytest.mark.slow
def test_compiled_flow_neck_trains_as_the_eager_one(tmp_path):
    """The compile switch inside a real FMKTDistill (feature row, live teacher): with
    ``aot_eager`` (dynamo + AOTAutograd, eager kernels) every loss and gradient of a train
    forward equals the eager model's bit for bit, and the state dicts have the same keys."""
    from benchmarks.classification.data import TensorLoader
    from benchmarks.classification.engine import build_model
    from benchmarks.classification.methods import method_hparams
    from fmkt_plugin.models.connectors import flow_num_steps
    split, cache = _random_split(tmp_path, 16)
    hp = method_hparams('fmkt_feat_narrow')
    models = []
    for compile_cfg in (False, dict(backend='aot_eager')):
        cfg = method_cfg('fmkt_feat_narrow', 'wide', teacher_cache=cache, hparams=hp)
        cfg.model.architecture.neck.flow.compile = compile_cfg
        torch.manual_seed(0)
        models.append(build_model(cfg))
    eager, compiled = models
    assert compiled.student.neck.flow.compile_args == dict(dynamic=False, backend='aot_eager')
    assert list(compiled.state_dict()) == list(eager.state_dict())
    compiled.load_state_dict(eager.state_dict())
    batch = next(iter(TensorLoader(split, 8, seed=0)))
    grads = []
    for model in models:
        model.train()
        with flow_num_steps(model, 4):
            losses = model(**model.data_preprocessor(batch, True), mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        params = [p for p in model.student.parameters() if p.requires_grad]
        grads.append((losses, torch.autograd.grad(total, params)))
    (loss_e, grad_e), (loss_c, grad_c) = grads
    assert set(loss_e) == set(loss_c) and all(torch.equal(loss_e[k], loss_c[k]) for k in loss_e)
    assert all(torch.equal(a, b) for a, b in zip(grad_e, grad_c))
    flow = compiled.student.neck.flow
    assert flow.velocity_model() is not flow.meta_encoder


def test_narrow_feature_row_is_the_shipped_feature_config(tmp_path):
    """fmkt_feat_narrow differs from fmkt_feat only by the MLP's hidden width, which is the
    map's channels / 4 as in configs/_base_/methods/fmkt_features.py (512 -> 128)."""
    from mmengine.config import Config

    from benchmarks.classification.methods import NARROW_HIDDEN_RATIO
    cache = str(tmp_path / 'logits.pt')
    torch.save(torch.randn(2, 4, 10), cache)
    full = method_cfg('fmkt_feat', 'deep', teacher_cache=cache).to_dict()['model']
    narrow = method_cfg('fmkt_feat_narrow', 'deep', teacher_cache=cache).to_dict()['model']
    enc_full = full['architecture']['neck']['flow']['meta_encoder']
    enc_narrow = narrow['architecture']['neck']['flow']['meta_encoder']
    channels = full['architecture']['neck']['in_channels']
    assert 'hidden_channels' not in enc_full
    assert enc_narrow == dict(enc_full, hidden_channels=channels // NARROW_HIDDEN_RATIO)
    enc_narrow.pop('hidden_channels')
    assert narrow == full
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    shipped = Config.fromfile(osp.join(repo, 'configs', '_base_', 'methods', 'fmkt_features.py'))
    enc = shipped.feature_flow.meta_encoder
    assert enc.type == enc_full['type'] and enc.num_blocks == enc_full['num_blocks']
    assert enc.hidden_channels * NARROW_HIDDEN_RATIO == 512  # ResNet-18's last stage


def test_cached_teacher_equals_live_teacher(fmnist_root, tmp_path):
    """The cache holds exactly what the live teacher outputs on the same (flipped) batch."""
    from mmpretrain.structures import DataSample

    from benchmarks.classification.data import TensorLoader
    from benchmarks.classification.engine import build_model, cached_logits, predict_logits
    from benchmarks.classification.jobs import _data
    from benchmarks.classification.models import CachedLogitsTeacher
    split = _data(fmnist_root)['train']
    torch.manual_seed(0)
    teacher = build_model(configs.teacher_cfg('wide'))
    rows = list(range(0, 600, 7))
    path = cached_logits(teacher, split, rows, str(tmp_path / 'cache.pt'))
    cached = CachedLogitsTeacher(path)
    batch = next(iter(TensorLoader(split, 32, indices=torch.tensor(rows), shuffle=True,
                                   flip=True, seed=3)))
    assert 0 < int(batch['flips'].sum()) < 32
    live = predict_logits(teacher, batch['inputs'])
    samples = [DataSample(metainfo=dict(sample_idx=int(i), flip=bool(f)))
               for i, f in zip(batch['indices'], batch['flips'])]
    torch.testing.assert_close(cached(batch['inputs'], samples), live)


@pytest.mark.slow
def test_smoke_profile_end_to_end(fmnist_root, tmp_path):
    from benchmarks.run import main
    out = tmp_path / 'out'
    payload = main(['--profile', 'smoke', '--out', str(out), '--threads', '1',
                    '--cache-dir', str(tmp_path / 'cache'), '--skip-overhead'])
    res = out / 'smoke'
    for name in ('results.json', 'results.md', 'accuracy.png', 'verdicts.png', 'fmkt_steps.png'):
        assert (res / name).is_file() and (res / name).stat().st_size > 0, name
    data = json.loads((res / 'results.json').read_text())
    runs = data['runs']
    prof = configs.profile('smoke')
    assert {r['method'] for r in runs} == set(prof['methods'])
    # every method saw the same data order and flips
    assert len({r['data_digest'] for r in runs}) == 1 and data['summary']['paired_data']
    assert {r['seed'] for r in runs} == set(prof['seeds'])
    for r in runs:
        assert math.isfinite(r['top1']) and 0 <= r['top1'] <= 100
        assert r['train_time_s'] > 0
        assert r['test_images'] == prof['test_size'] and r['train_images'] == prof['train_size']
    fmkt = next(r for r in runs if r['method'] == 'fmkt_kd')
    # published files name cache files relative to the cache folder, not by machine path
    assert fmkt['ckpt'].startswith('cache/')  # kept for a later profile's N analysis
    assert 'ensemble_logits' not in fmkt  # no FM-KT^Theta second stage in this profile
    assert all(t['logits'].startswith('cache/') for t in data['teachers'])
    assert sorted(fmkt['top1_by_steps'], key=int) == ['1', '2', '4', '8']
    assert all(math.isfinite(v) for v in fmkt['top1_by_steps'].values())
    assert fmkt['top1'] == fmkt['top1_by_steps'][str(fmkt['headline_steps'])]
    # FM-KT^Theta by folding: the deployed plain student is the N=8 ensemble, exactly
    fold = next(r for r in runs if r['method'] == 'fmkt_fold')
    assert fold['deploy_max_abs_logit_diff'] < 1e-4
    assert fold['deployed_params'] < fold['student_params']  # no flow left
    assert abs(fold['top1'] - fold['trained_top1']) <= 0.2  # 1 of 500 images: a tie at most
    assert 'FM-KT^Theta (linear flow, folded) retention' in (res / 'results.md').read_text()
    # RDR: the live teacher's run is scored as its folded plain student, exactly the trained one
    from benchmarks.classification.engine import build_model
    rdr = next(r for r in runs if r['method'] == 'rdr')
    plain_params = sum(p.numel() for p in build_model(method_cfg('student', 'wide')).parameters())
    assert rdr['deployed_params'] == plain_params < rdr['student_params']
    assert rdr['deploy_max_abs_logit_diff'] < 1e-4
    assert abs(rdr['top1'] - rdr['trained_top1']) <= 0.2
    diffkd = next(r for r in runs if r['method'] == 'diffkd')
    assert diffkd['student_params'] == plain_params  # the denoiser is not part of the student
    text = (res / 'results.md').read_text()
    assert 'FM-KT (KD metric)' in text and '| KD |' in text
    assert payload['summary']['pairs']['wide']['rows']['kd']['seeds'] == [0]
    # the paired comparisons are printed; one seed gives no interval
    assert '| FM-KT (KD metric) vs KD | FM-KT (KD metric) | KD |' in text
    assert 'n/a (one seed)' in text

    # a rerun finds the teacher and every run in the cache
    again = main(['--profile', 'smoke', '--out', str(out), '--threads', '1',
                  '--cache-dir', str(tmp_path / 'cache'), '--skip-overhead'])
    assert all(r['cached'] for r in again['runs'] + again['teachers'])


@pytest.mark.slow
def test_overhead_benchmark_runs():
    from benchmarks.overhead.resnet import run_overhead
    said = []
    # --amp on the CPU: wired through, autocast stays off (fp32), said so
    result = run_overhead(size=32, batch=2, repeats=1, warmup=0, threads=1, amp='bf16',
                          progress=said.append)
    assert result['amp'] is None and result['amp_requested'] == 'bf16'
    assert any('autocast is off' in m for m in said)
    assert set(result['throughput']) == {'kd', 'fmkt_logit', 'fmkt_feature'}
    assert all(t['images_per_s'] > 0 and t['peak_mib'] > 0
               for t in result['throughput'].values())
    # matmul/conv FLOPs of one step: the flows add work on top of KD's
    flops = {k: t['flops_vs_kd'] for k, t in result['throughput'].items()}
    assert flops['kd'] == 1.0 and flops['fmkt_logit'] > 1.0 and flops['fmkt_feature'] > 1.0
    from benchmarks.overhead.report import overhead_markdown
    table = overhead_markdown(result)
    assert 'FLOPs / KD' in table and f'| {flops["fmkt_feature"]:.3f} |' in table
    # computing ATen ops of one step: the flows' N serial steps add many small ones
    ops = {k: t['ops_vs_kd'] for k, t in result['throughput'].items()}
    assert ops['kd'] == 1.0 and ops['fmkt_logit'] > 1.2 and ops['fmkt_feature'] > 1.2
    assert 'ops / KD' in table and f'| {ops["fmkt_logit"]:.3f} |' in table
    keys = {r['key'] for r in result['ratios']}
    assert {'train_logit', 'train_feature', 'train_feature_draw', 'infer_flow_N8',
            'infer_theta_head', 'infer_theta_2stage', 'infer_theta_fold'} <= keys
    assert all(math.isfinite(r['ratio']) and r['ratio'] > 0 for r in result['ratios'])


@pytest.mark.slow
def test_overhead_command_line_adds_the_rival_rows_and_writes_the_json(tmp_path, capsys):
    from benchmarks.overhead.cli import main
    out = tmp_path / 'overhead.json'
    result = main(['--size', '32', '--batch', '2', '--repeats', '1', '--warmup', '0',
                   '--threads', '1', '--rivals', '--out', str(out)])
    keys = [r['key'] for r in result['ratios']]
    assert {'train_logit', 'train_diffkd', 'train_rdr', 'infer_rdr_folded'} <= set(keys)
    assert not any(k.startswith('train_fpn') for k in keys)  # --det not given
    saved = json.loads(out.read_text())
    assert [r['key'] for r in saved['ratios']] == keys and saved['machine']['cpu']
    assert 'train step, DiffKD' in capsys.readouterr().out  # the table is printed


@pytest.mark.slow
def test_detection_rows_of_the_overhead_table():
    from benchmarks.overhead.detection import det_overhead_rows
    said = []
    rows = det_overhead_rows(repeats=1, say=said.append, size=128, batch_size=2)
    assert [r['key'] for r in rows] == ['train_fpn_retinanet', 'train_fpn_faster-rcnn']
    assert all(math.isfinite(r['ratio']) and r['ratio'] > 0 and r['target'] == '<= 1.25'
               for r in rows)
    assert len(said) == 2


def test_report_gives_retention_with_fieller_interval():
    """Each FM-KT^Theta row's retention comes with its interval over the paired seeds."""
    from benchmarks.classification.report import _pair_block, summarize
    from benchmarks.common.stats import ratio_interval
    top1 = dict(kd=[87.0, 87.5, 86.8, 87.2, 87.1], fmkt_kd=[88.0, 88.4, 87.9, 88.1, 88.0],
                fmkt_joint_bb=[87.9, 88.2, 87.6, 88.0, 88.1])
    runs = [dict(pair='wide', method=m, seed=s, top1=v, train_time_s=1.0, epochs=3)
            for m, vals in top1.items() for s, v in enumerate(vals)]
    block = summarize(runs, [], ['wide'], list(top1))['pairs']['wide']
    (ret, ) = block['retention']
    num = {s: top1['fmkt_joint_bb'][s] - top1['kd'][s] for s in range(5)}
    den = {s: top1['fmkt_kd'][s] - top1['kd'][s] for s in range(5)}
    assert ret['retention'] == pytest.approx(sum(num.values()) / sum(den.values()))
    assert ret['retention_ci'] == ratio_interval(num, den)
    low, high = ret['retention_ci']['low'], ret['retention_ci']['high']
    assert low < ret['retention'] < high
    text = '\n'.join(_pair_block('wide', block))
    assert f'95% CI [{low:.2f}, {high:.2f}] (Fieller, 5 paired seeds)' in text


def test_report_pools_retention_over_the_pairs():
    """Pooled retention: per seed, the pairs' mean (Theta - KD) over their mean (FM-KT - KD),
    with Fieller's interval over the seeds, printed under the pooled table."""
    from benchmarks.classification.report import markdown, summarize
    from benchmarks.common.stats import ratio_interval
    top1 = {
        'wide': dict(kd=[87.0, 87.5, 86.8, 87.2], fmkt_kd=[88.0, 88.4, 87.9, 88.1],
                     fmkt_fold=[87.6, 87.9, 87.3, 87.8]),
        'deep': dict(kd=[87.4, 87.1, 87.3, 87.0], fmkt_kd=[88.1, 87.9, 88.2, 87.8],
                     fmkt_fold=[87.5, 87.6, 87.9, 87.2]),
    }
    runs = [dict(pair=p, method=m, seed=s, top1=v, train_time_s=1.0, epochs=3)
            for p, block in top1.items() for m, vals in block.items()
            for s, v in enumerate(vals)]
    summary = summarize(runs, [], ['wide', 'deep'], ['kd', 'fmkt_kd', 'fmkt_fold'])
    (ret, ) = summary['pooled_retention']
    num = {s: sum(top1[p]['fmkt_fold'][s] - top1[p]['kd'][s] for p in top1) / 2
           for s in range(4)}
    den = {s: sum(top1[p]['fmkt_kd'][s] - top1[p]['kd'][s] for p in top1) / 2 for s in range(4)}
    assert ret['method'] == 'fmkt_fold'
    assert ret['retention'] == pytest.approx(sum(num.values()) / sum(den.values()))
    assert ret['retention_ci'] == ratio_interval(num, den)
    assert ret['retention_ci']['bounded']
    meta = dict(profile='default', test_images=5000, evaluated_on='test split', seeds=[0, 1, 2, 3],
                student_epochs=3, train_images=60000, theta_epochs=2, jobs=2, threads=1,
                device='cpu')
    text = markdown(summary, meta)
    pooled = text.split('**Pooled over the pairs**')[1]
    assert (f'FM-KT^Theta (linear flow, folded) retention (Theta - KD) / (FM-KT (KD metric) - KD)'
            f' = {ret["theta_minus_kd"]:+.2f} / {ret["fmkt_minus_kd"]:+.2f}') in pooled


def test_pooled_verdicts_pool_the_pairs_of_one_family():
    """With the ViT pair beside the CNN pairs, the pooled verdicts are the CNN pairs' (the
    ViT pair's verdicts stand in its own block)."""
    from benchmarks.classification.report import summarize
    vals = dict(wide=(87.0, 88.0), deep=(87.2, 88.1), vit=(86.0, 85.0))
    runs = [dict(pair=p, method=m, seed=s, top1=v + 0.1 * s, train_time_s=1.0, epochs=3)
            for p, (dist, fmkt) in vals.items() for m, v in (('dist', dist), ('fmkt_dist', fmkt))
            for s in range(3)]
    summary = summarize(runs, [], ['wide', 'deep', 'vit'], ['dist', 'fmkt_dist'])
    pooled = {c['name']: c for c in summary['pooled']}
    vs = pooled['FM-KT (DIST metric) vs DIST']
    assert vs['mean'] == pytest.approx(0.95)  # (1.0 + 0.9) / 2: the ViT pair's -1.0 not in it
    vit = {c['name']: c for c in summary['pairs']['vit']['comparisons']}
    assert vit['FM-KT (DIST metric) vs DIST']['mean'] == pytest.approx(-1.0)
    only_vit = summarize(runs, [], ['vit'], ['dist', 'fmkt_dist'])
    assert only_vit['pooled'] == [] and only_vit['pooled_families'] == {}
    # the ViT-student pairs pool among themselves, beside the CNN pairs' pooled verdicts
    hybrid = [dict(r, pair='cnn-vit', top1=r['top1'] + (0.4 if r['method'] == 'fmkt_dist'
                                                        else 0.0))
              for r in runs if r['pair'] == 'vit']
    four = summarize(runs + hybrid, [], ['wide', 'deep', 'vit', 'cnn-vit'],
                     ['dist', 'fmkt_dist'])
    assert four['pooled'] == summary['pooled']
    (vit_pooled, ) = [c for c in four['pooled_families']['vit']
                      if c['name'] == 'FM-KT (DIST metric) vs DIST']
    assert vit_pooled['mean'] == pytest.approx(-0.8)  # (-1.0 + -0.6) / 2
    meta = dict(profile='extended', test_images=10000, evaluated_on='test split',
                seeds=[0, 1, 2], student_epochs=3, train_images=60000, theta_epochs=2, jobs=2,
                threads=1, device='cpu')
    from benchmarks.classification.report import markdown
    assert '**Pooled over the vit pairs**' in markdown(four, meta)


def test_fixed_settings_enter_only_their_methods_hparams():
    """A record's ``fixed`` settings change its own hyperparameters (and so its cache key) and
    nobody else's: the 2-stage fine-tune's stage 2 runs at a tenth of the rate."""
    from benchmarks.classification.configs import HPARAMS
    from benchmarks.classification.jobs import run_key
    from benchmarks.classification.methods import method_hparams
    assert method_hparams('fmkt_theta_ft')['theta']['lr_scale'] == 0.1
    assert method_hparams('fmkt_theta')['theta'] == HPARAMS['theta']
    assert method_hparams('fmkt_kd') == HPARAMS
    job = dict(pair='wide', epochs=3, theta_epochs=2, train_size=None, test_size=None, seed=0,
               stage1=dict(key='s1'), teacher=dict(key='t'))
    assert run_key(dict(job, method='fmkt_theta')) != run_key(dict(job, method='fmkt_theta_ft'))
