"""Equal tuning: one grid, the same number of trials per method, picks written and read, the
test split never read while tuning."""
import json
import os.path as osp

import pytest

from benchmarks.classification.configs import HPARAMS, split_key
from benchmarks.classification.methods import get, method_hparams
from benchmarks.classification.tuning import (
    GRID,
    TRIALS,
    TUNED_FILE,
    apply_settings,
    grid_points,
    load_picks,
    pick_best,
)


def test_every_method_gets_the_same_number_of_trials():
    from benchmarks.classification.configs import PAIRS, pair_hparams
    from benchmarks.classification.methods import applies
    for method in GRID:
        points = grid_points(method)
        assert len(points) == TRIALS, method
        assert len({json.dumps(p, sort_keys=True) for p in points}) == TRIALS
        # the first point is the untuned default (for FM-KT: plus the connector's default
        # estimate, which HPARAMS leaves unset), on every pair the method runs on
        for pair in [p for p in PAIRS if applies(method, p)]:
            hp = pair_hparams(pair)
            first = apply_settings(hp, points[0])
            if 'flow.estimate' in points[0]:
                assert first['flow'].pop('estimate') == 'interpolant'
            assert first == hp, (method, pair)
            for point in points:
                apply_settings(hp, point)
    # FM-KT compares both estimates and both flow learning rates at the default N
    fmkt = grid_points('fmkt_kd')
    assert {p['flow.estimate'] for p in fmkt} == set(GRID['fmkt_kd']['flow.estimate'])
    assert {p['flow.num_steps'] for p in fmkt} == {8}


def test_settings_apply_to_a_copy_and_bad_paths_are_named():
    hp = apply_settings(HPARAMS, {'dist.inter+dist.intra': 1.0, 'kd.tau': 1.0})
    assert hp['dist']['inter'] == hp['dist']['intra'] == 1.0 and hp['kd']['tau'] == 1.0
    assert HPARAMS['dist']['inter'] == 2.0  # untouched
    with pytest.raises(ValueError, match="'kd.temperature'"):
        apply_settings(HPARAMS, {'kd.temperature': 2.0})
    with pytest.raises(ValueError, match="'nothing.tau'"):
        apply_settings(HPARAMS, {'nothing.tau': 2.0})
    with pytest.raises(ValueError, match="'flow.no_such_option'"):
        apply_settings(HPARAMS, {'flow.no_such_option': 1})
    assert apply_settings(HPARAMS, {'flow.estimate': 'displacement'})['flow']['estimate'] == \
        'displacement'
    # the FM-KT^Theta variants take FM-KT (KD metric)'s picks
    picks = {'fmkt_kd': {'flow_lr_mult.fmkt': 1.0}, 'kd': {'kd.tau': 1.0}}
    assert method_hparams('fmkt_fold', picks)['flow_lr_mult']['fmkt'] == 1.0
    assert method_hparams('fmkt_fold', picks)['kd']['tau'] == 4.0
    assert get('fmkt_theta').tuned_as == 'fmkt_kd'


def test_pick_best_takes_the_highest_mean_first_on_ties():
    trials = [dict(setting={}, mean=88.0), dict(setting={'a': 1}, mean=88.5),
              dict(setting={'a': 2}, mean=88.5)]
    assert pick_best(trials)['setting'] == {'a': 1}


def test_picks_file_is_checked(tmp_path):
    bad = tmp_path / 'tuned.json'
    bad.write_text('{"picks": {"kd": {"kd.temperature": 1.0}}}')
    with pytest.raises(ValueError, match=r'tuned.json: picks.kd: .*kd.temperature'):
        load_picks(str(bad))
    bad.write_text('{"picks": {"nomethod": {}}}')
    with pytest.raises(ValueError, match='picks.nomethod: unknown method'):
        load_picks(str(bad))
    bad.write_text('not json')
    with pytest.raises(ValueError, match='not JSON'):
        load_picks(str(bad))
    if osp.isfile(TUNED_FILE):  # the committed picks are valid
        assert {split_key(k)[0] for k in load_picks()} <= set(GRID)
    bad.write_text('{"picks": {"kd@tree": {}}}')
    with pytest.raises(ValueError, match="picks.kd@tree: no pair of family 'tree'"):
        load_picks(str(bad))
    # a ViT-only setting is a setting of the ViT pairs' picks, not of the CNN pairs'
    bad.write_text('{"picks": {"vitkd": {"vitkd.scale": 49.0}}}')
    with pytest.raises(ValueError, match=r'picks.vitkd: .*vitkd.scale'):
        load_picks(str(bad))
    bad.write_text('{"picks": {"vitkd@vit": {"vitkd.scale": 49.0}}}')
    assert load_picks(str(bad)) == {'vitkd@vit': {'vitkd.scale': 49.0}}


def test_a_family_of_pairs_has_its_own_picks_and_tuning():
    """KD tuned on the CNN pairs does not set KD on the ViT pair, which takes its own pick;
    a method tuned as others takes theirs of its family; the tune summary keeps the families
    apart."""
    from benchmarks.classification.configs import picks_key
    from benchmarks.classification.methods import method_hparams, method_picks
    from benchmarks.classification.report import summarize_tune
    picks = {'kd': {'kd.tau': 1.0}, 'kd@vit': {'kd.tau': 2.0},
             'fmkt_dist@vit': {'flow_lr_mult.fmkt': 1.0}, 'vitkd@vit': {'vitkd.scale': 49.0}}
    assert picks_key('kd', 'wide') == 'kd' and picks_key('kd', 'vit') == 'kd@vit'
    assert method_picks('kd', picks, 'deep') == {'kd.tau': 1.0}
    assert method_picks('kd', picks, 'vit') == {'kd.tau': 2.0}
    assert method_picks('fmkt_dist_vitkd', picks, 'vit') == {'flow_lr_mult.fmkt': 1.0,
                                                             'vitkd.scale': 49.0}
    hp = method_hparams('fmkt_dist_vitkd', picks, pair='vit')
    assert hp['vitkd']['scale'] == 49.0 and hp['optimizer']['type'] == 'AdamW'
    assert method_hparams('kd', picks, pair='wide')['optimizer']['type'] == 'SGD'
    runs = [dict(method='kd', pair=pair, seed=0, trial=trial, settings={'kd.tau': tau},
                 top1=top1) for pair, trial, tau, top1 in (
                     ('wide', 0, 4.0, 87.0), ('wide', 1, 1.0, 86.0), ('deep', 0, 4.0, 87.0),
                     ('deep', 1, 1.0, 86.0), ('vit', 0, 4.0, 85.0), ('vit', 1, 1.0, 86.0))]
    trials = summarize_tune(runs)
    assert set(trials) == {'kd', 'kd@vit'}
    assert [t['picked'] for t in trials['kd']] == [True, False] and trials['kd'][0]['n'] == 2
    assert [t['picked'] for t in trials['kd@vit']] == [False, True]


def test_tune_plan_needs_the_validation_split():
    from benchmarks.classification.planning import plan_tune_jobs, resolve_profile
    prof = resolve_profile('smoke', methods=['student', 'kd', 'fmkt_kd'])
    with pytest.raises(ValueError, match='--holdout'):
        plan_tune_jobs(prof, dict(holdout=0))
    jobs = plan_tune_jobs(prof, dict(holdout=300))
    runs = [j for j in jobs if j['kind'] == 'run']
    assert {j['method'] for j in runs} == {'kd', 'fmkt_kd'}  # student has nothing to tune
    for method in ('kd', 'fmkt_kd'):
        assert sorted(j['trial'] for j in runs if j['method'] == method) == list(range(TRIALS))
    assert all(j['tune'] and j['holdout'] == 300 for j in jobs)


def test_a_tune_job_cannot_reach_the_test_split():
    from benchmarks.classification.jobs import TestSplitForbidden, _ForbiddenSplit, _loaders
    with pytest.raises(TestSplitForbidden, match='--holdout'):
        _loaders(dict(tune=True, holdout=0, data_root='unused'), 0)
    with pytest.raises(TestSplitForbidden):
        _ForbiddenSplit().images


@pytest.mark.slow
def test_tune_mode_end_to_end_reads_no_test_image(fmnist_root_tune, tmp_path):
    from benchmarks.classification import jobs
    from benchmarks.run import main
    picks_file = tmp_path / 'tuned.json'
    jobs._DATA.clear()
    payload = main(['--tune', '--profile', 'smoke', '--holdout', '300', '--methods', 'kd',
                    '--out', str(tmp_path / 'out'), '--cache-dir', fmnist_root_tune,
                    '--threads', '1', '--tuned', str(picks_file)])
    # the test split was never loaded: only train-only data was read
    assert jobs._DATA and all(not with_test for (_, with_test) in jobs._DATA)
    assert all(r['test_images'] == 300 for r in payload['runs'])
    written = json.loads(picks_file.read_text())
    assert set(written['picks']) == {'kd'} and len(written['trials']['kd']) == TRIALS
    best = max(written['trials']['kd'], key=lambda t: t['mean'])
    assert written['picks']['kd'] == best['setting']
    assert load_picks(str(picks_file)) == written['picks']
    assert 'picked' in (tmp_path / 'out' / 'tune' / 'results.md').read_text()


@pytest.fixture(scope='module')
def fmnist_root_tune(tmp_path_factory):
    from benchmarks.classification.data import prepare_fashion_mnist
    cache = tmp_path_factory.mktemp('tune_cache')
    prepare_fashion_mnist(str(cache / 'data' / 'fashion_mnist'))
    return str(cache)


def test_tune_command_line_defaults_to_a_holdout_and_refuses_none():
    from benchmarks.run import TUNE_HOLDOUT, parse_args
    assert parse_args(['--tune']).holdout == TUNE_HOLDOUT > 0
    assert parse_args([]).holdout == 0
    with pytest.raises(SystemExit):
        parse_args(['--tune', '--holdout', '0'])


def test_a_tune_run_of_some_methods_keeps_the_other_picks(tmp_path):
    from benchmarks.classification.tuning import load_picks, write_picks
    path = str(tmp_path / 'tuned.json')
    write_picks(path, {'kd': {'kd.tau': 1.0}, 'dkd': {'dkd.beta': 2.0}},
                {'kd': [dict(setting={'kd.tau': 1.0}, mean=80.0, std=0.1, n=2)],
                 'dkd': [dict(setting={'dkd.beta': 2.0}, mean=81.0, std=0.1, n=2)]},
                dict(profile='default'))
    write_picks(path, {'kd': {'kd.tau': 4.0}, 'rdr': {'rdr.guide_weight': 0.0}},
                {'kd': [dict(setting={'kd.tau': 4.0}, mean=82.0, std=0.1, n=2)],
                 'rdr': [dict(setting={'rdr.guide_weight': 0.0}, mean=83.0, std=0.1, n=2)]},
                dict(profile='extended'))
    assert load_picks(path) == {'kd': {'kd.tau': 4.0}, 'dkd': {'dkd.beta': 2.0},
                                'rdr': {'rdr.guide_weight': 0.0}}
    data = json.loads(open(path).read())
    assert data['trials']['kd'][0]['mean'] == 82.0 and data['trials']['dkd'][0]['mean'] == 81.0
    assert [r['profile'] for r in data['meta']['runs']] == ['default', 'extended']
    assert data['meta']['methods'] == ['kd', 'rdr']


def test_rivals_have_four_trials_with_the_papers_settings_first():
    from benchmarks.classification.configs import HPARAMS
    from benchmarks.classification.methods import method_hparams, method_picks
    from benchmarks.classification.tuning import TRIALS, grid_points
    for method in ('diffkd', 'rdr'):
        points = grid_points(method)
        assert len(points) == TRIALS
        # the first point is HPARAMS itself: the authors' (DiffKD) / our reading's (RDR)
        assert method_hparams(method, overrides=points[0])[method] == HPARAMS[method]
    assert HPARAMS['diffkd']['logit_tau'] == 1.0 and HPARAMS['diffkd']['logit_weight'] == 1.0
    picks = {'kd': {'kd.tau': 1.0}, 'rdr': {'rdr.loss_weight': 0.3}}
    assert method_picks('rdr', picks) == {'kd.tau': 1.0, 'rdr.loss_weight': 0.3}
    assert method_picks('diffkd', picks) == {}  # no plain KD term: KD's picks do not apply
