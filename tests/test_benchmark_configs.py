"""The benchmark builds its methods from the shipped config files: a method's model config is a
shipped file's parts plus the benchmark's settings, and no Python copy of a method config
exists. The run keys (the cache) of the main job's profiles are locked."""
import copy
import json
import os.path as osp

import pytest
from mmengine.config import Config

from benchmarks.classification import configs
from benchmarks.classification.methods import REGISTRY, applies, method_cfg, method_hparams
from benchmarks.classification.tuning import load_picks

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
KEYS_FILE = osp.join(ROOT, 'tests', 'fixtures', 'benchmark_run_keys.json')


def _file(rel: str) -> Config:
    return Config.fromfile(osp.join(ROOT, 'configs', rel))


def _merged(base: dict, options: dict) -> dict:
    cfg = Config(dict(node=copy.deepcopy(base)))
    cfg.merge_from_dict({f'node.{k}': v for k, v in options.items()})
    return cfg.to_dict()['node']


def test_fmkt_dist_is_the_shipped_fragment_plus_the_tuned_overrides():
    """FM-KT (DIST) on the wide pair: the pair base's student and distillation model, the head
    of configs/_base_/methods/fmkt_logits.py merged over the student's linear head (as the
    shipped FM-KT configs merge it), its distiller; plus exactly these overrides: the
    benchmark's DIST settings and flow, and the picks of tuned.json."""
    picks = load_picks()['fmkt_dist']
    assert picks == {'flow.num_steps': 8, 'flow.estimate': 'displacement',
                     'flow_lr_mult.fmkt': 0.1}
    fragment = _file('_base_/methods/fmkt_logits.py')
    pair = _file('_base_/pairs/fmnist-convnet-w32x4_w8x4.py')
    student = pair.student.to_dict()
    student['head'] = _merged(student['head'], fragment.flow_cls_head.to_dict())
    student['head'] = _merged(student['head'], {
        'ce_weight': 1.0,  # HPARAMS['dist']['ce_weight']
        'flow': dict(schedule='rectified', meta_encoder=dict(type='mlp', num_blocks=1),
                     num_steps=picks['flow.num_steps'], estimate=picks['flow.estimate'],
                     test_num_steps=picks['flow.num_steps'])})
    distiller = _merged(fragment.distiller.to_dict(), {
        'distill_losses.loss_fmkt.loss_weight': 1.0,  # HPARAMS['metric_weight']
        'distill_losses.loss_fmkt.metric': dict(tau=4.0, inter_loss_weight=2.0,
                                                intra_loss_weight=2.0, loss_weight=1.0)})
    want = dict(_scope_='mmrazor', type='FMKTDistill',
                data_preprocessor=pair.model.data_preprocessor.to_dict(), architecture=student,
                distiller=distiller, teacher=dict(type='CachedLogitsTeacher', cache_file='t.pt'))
    got = method_cfg('fmkt_dist', 'wide', teacher_cache='t.pt',
                     hparams=method_hparams('fmkt_dist', load_picks())).model.to_dict()
    assert json.dumps(got, sort_keys=True) == json.dumps(want, sort_keys=True)
    # the shipped parts are there: a change of the fragment reaches the benchmark
    assert got['architecture']['head']['type'] == fragment.flow_cls_head.type
    assert got['distiller']['loss_forward_mappings'] == fragment.distiller.loss_forward_mappings


def test_a_shipped_change_reaches_every_method_that_reads_the_file(monkeypatch):
    """The builders read the shipped files: a value changed in the loaded fragment shows in
    the benchmark's configs (here kd.py's recorder source, read by KD and every method that
    extends kd.py)."""
    original = configs._load

    def patched(rel):
        cfg = copy.deepcopy(original(rel))
        if rel in ('_base_/methods/kd.py', '_base_/methods/rdr.py',
                   '_base_/methods/fmkt_features.py'):
            cfg['distiller']['student_recorders']['fc']['source'] = 'head.changed'
        return cfg

    monkeypatch.setattr(configs, '_load', patched)
    for name in ('kd', 'rdr', 'fmkt_feat'):
        cfg = method_cfg(name, 'wide', teacher_cache='t.pt', teacher_maps='m.pt')
        assert cfg.model.distiller.student_recorders.fc.source == 'head.changed', name


def test_no_python_copy_of_a_method_config_is_left():
    """The builders hold no loss, recorder or flow config of their own: every loss type in a
    benchmark config is one that a shipped file names (or the capacity control's head)."""
    import inspect

    from benchmarks.classification import methods
    source = inspect.getsource(methods)
    for copied in ("type='ConfigurableDistiller'", "type='FMKTLoss'", "type='DISTLoss'",
                   "type='DKDLoss'", "type='DiffKDConnector'", "type='RDRLoss'",
                   "type='FlowMatchingClsHead'", "type='FlowMatchingNeck'",
                   "type='TeacherProjector'", "type='ImageClassifier'"):
        assert copied not in source, copied


def profile_keys(name: str) -> dict:
    """The run keys of profile ``name``'s jobs (test split, the published tuned picks), each
    run with its teacher's and first stage's keys, as the executor chains them."""
    from benchmarks.classification.jobs import run_key, teacher_key
    from benchmarks.classification.planning import plan_jobs, resolve_profile
    prof = resolve_profile(name)
    base = dict(data_root='D', cache_dir='C', train_size=prof['train_size'],
                test_size=prof['test_size'], teacher_epochs=prof['teacher_epochs'],
                epochs=prof['epochs'], theta_epochs=prof['theta_epochs'], threads=1, holdout=0,
                device='cpu', amp=None, eval_steps=tuple(prof['eval_steps']))
    keys = {}
    for job in plan_jobs(prof, base, load_picks()):
        if job['kind'] == 'teacher':
            keys[job['id']] = teacher_key(job)
            continue
        job = dict(job)
        for dep in job['after']:
            job['teacher' if dep.startswith('teacher-') else 'stage1'] = dict(key=keys[dep])
        keys[job['id']] = run_key(job)
    return keys


@pytest.mark.parametrize('profile', ['smoke', 'default'])
def test_run_keys_of_the_main_profiles_are_locked(profile):
    """A change that moves a run key makes every cached run of that method train again, and
    must be meant: regenerate tests/fixtures/benchmark_run_keys.json and say why in the
    changelog."""
    want = json.load(open(KEYS_FILE))[profile]
    got = profile_keys(profile)
    moved = sorted(j for j in want if got.get(j) != want[j])
    assert set(got) == set(want) and not moved, f'run keys moved: {moved[:8]}'


def test_every_method_builds_on_every_pair_from_the_shipped_files():
    for method in REGISTRY:
        for pair in configs.PAIRS:
            if not applies(method.name, pair):
                with pytest.raises(ValueError, match=f'{method.name} runs on the .* not on '
                                   f"'{pair}'"):
                    method_cfg(method.name, pair, teacher_cache='t.pt')
                continue
            cfg = method_cfg(method.name, pair, teacher_cache='t.pt', teacher_maps='m.pt')
            assert cfg.model.get('type') in (
                'ImageClassifier', 'SingleTeacherDistill', 'FMKTDistill', 'OFMKT',
                'DiffKDDistill', 'RDRDistill'), method.name
