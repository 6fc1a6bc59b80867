"""Planning, device and precision selection, the ETA, and the pairing of runs by seed."""
import pytest
import torch

from benchmarks.classification import configs
from benchmarks.classification.methods import REGISTRY, get, method_cfg
from benchmarks.classification.planning import plan_jobs, resolve_profile, resolve_setting
from benchmarks.common.device import effective_amp, optim_wrapper_cfg, select_device
from benchmarks.common.eta import Progress, SpeedBook


def test_method_records_are_consistent():
    names = [m.name for m in REGISTRY]
    assert len(names) == len(set(names))
    for m in REGISTRY:
        assert m.group in ('reference', 'baseline', 'fmkt', 'variant')
        assert all(get(o) for o in m.versus) and m.cost > 0
        assert m.stage_of is None or get(m.stage_of).name
        tuned_as = (m.tuned_as, ) if isinstance(m.tuned_as, str) else (m.tuned_as or ())
        assert all(get(t).name for t in tuned_as)
        assert m.families and set(m.families) <= {'cnn', 'vit'}
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        get('nope')


def test_gpu_profile_plans_every_method_and_pair_on_the_cpu():
    prof = resolve_profile('gpu')
    assert set(prof['methods']) == {m.name for m in REGISTRY}
    assert prof['pairs'] == ('wide', 'deep') and len(prof['seeds']) > 5
    assert prof['amp'] == 'bf16' and prof['jobs'] > 2
    setting = resolve_setting(prof, device='cpu')
    # autocast is off on the CPU, and the cores are split between the runs
    assert setting['device'] == 'cpu' and setting['amp'] is None
    assert setting['workers'] == prof['jobs'] and setting['threads'] >= 1
    jobs = plan_jobs(prof, dict(amp=setting['amp']))
    cnn = [m for m in REGISTRY if 'cnn' in m.families]  # the gpu profile's pairs are CNN ones
    with_teacher = sum(m.teacher for m in cnn)  # every method but 2 teacher-free ones
    assert with_teacher == len(cnn) - 2
    assert len(jobs) == 2 + len(prof['seeds']) * (2 + with_teacher * 2)
    assert not {j['method'] for j in jobs if j['kind'] == 'run'} & {'vitkd', 'fmkt_dist_vitkd'}
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match='no CUDA device'):
            select_device('cuda')
    assert select_device('auto') == ('cuda' if torch.cuda.is_available() else 'cpu')


def test_amp_wrapper_configs():
    sgd = dict(type='SGD', lr=0.1)
    assert optim_wrapper_cfg(sgd, 'cuda', 'bf16') == dict(
        type='AmpOptimWrapper', optimizer=sgd, dtype='bfloat16')
    assert optim_wrapper_cfg(sgd, 'cuda', 'fp16', clip_grad=dict(max_norm=5.0)) == dict(
        type='AmpOptimWrapper', optimizer=sgd, dtype='float16', loss_scale='dynamic',
        clip_grad=dict(max_norm=5.0))
    assert optim_wrapper_cfg(sgd, 'cpu', 'bf16') == dict(type='OptimWrapper', optimizer=sgd)
    assert effective_amp('fp16', 'cpu') is None and effective_amp('fp16', 'cuda') == 'fp16'
    with pytest.raises(ValueError, match='amp must be one of'):
        effective_amp('fp8', 'cuda')


def test_amp_requested_on_cpu_trains_in_fp32():
    from mmengine.optim import OptimWrapper

    from benchmarks.classification.data import Split, TensorLoader
    from benchmarks.classification.engine import build_model, train_model
    from benchmarks.overhead.resnet import train_wrapper
    model = build_model(method_cfg('student', 'wide'))
    wrapper = train_wrapper(model, 'cpu', 'bf16')
    assert type(wrapper) is OptimWrapper  # not AmpOptimWrapper: autocast off
    split = Split(torch.randint(0, 255, (16, 1, 28, 28), dtype=torch.uint8),
                  torch.arange(16) % 10, 'train')
    before = model.backbone.stages[0][0].weight.clone()
    stats = train_model(model, TensorLoader(split, 8, shuffle=True), 1, amp='bf16')
    assert stats['iters'] == 2 and torch.isfinite(torch.tensor(stats['last_loss']))
    weight = model.backbone.stages[0][0].weight
    assert weight.dtype == torch.float32 and not torch.equal(weight, before)


def test_eta_rescales_priors_by_measured_speed_per_method_and_device(tmp_path):
    jobs = [dict(id=f'{m}-wide-s{s}', kind='run', method=m, cost=3.0)
            for s in (0, 1) for m in ('kd', 'fmkt_kd')]
    jobs[1]['cost'] = 6.0  # fmkt_kd prior: twice KD
    for j in jobs[3:]:
        j['cost'] = 6.0
    book = SpeedBook(str(tmp_path / 'speeds.json'), 'gpu-x', 'cuda')
    progress = Progress(jobs, workers=1, speeds=book)
    assert progress.eta() is None  # nothing known about this device yet
    progress.finish(jobs[0], dict(train_time_s=3.0, eval_time_s=0.0))  # KD: 1 s per unit
    # the other kinds take this device's scale until measured: 6 + 3 + 6 units at 1 s
    assert progress.eta() == pytest.approx(15.0)
    # FM-KT is measured 4x slower per unit than its prior says: its remaining run follows
    progress.finish(jobs[1], dict(train_time_s=24.0, eval_time_s=0.0))
    assert progress.eta() == pytest.approx(3.0 + 24.0)
    book.save()
    again = SpeedBook(str(tmp_path / 'speeds.json'), 'gpu-x', 'cuda')
    assert again.rate('fmkt_kd') == pytest.approx(4.0) and again.rate('kd') == 1.0
    other = SpeedBook(str(tmp_path / 'speeds.json'), 'cpu-y', 'cpu')
    assert other.rate('fmkt_kd') == 5.5  # another device keeps the CPU default


def test_eta_grows_with_running_jobs_that_overrun_their_speed(tmp_path, monkeypatch):
    """0 of 3 done, 2 running for longer than the prior says: the ETA must not stand still at
    the prior's figure, nor promise the rest sooner than the running jobs have already taken."""
    import benchmarks.common.eta as eta
    clock = [1000.0]
    monkeypatch.setattr(eta.time, 'perf_counter', lambda: clock[0])
    jobs = [dict(id=f'kd-wide-s{s}', kind='run', method='kd', cost=10.0) for s in range(3)]
    book = SpeedBook(None, 'cpu-x', 'cpu')  # prior: 5.5 s per unit -> 55 s per job
    progress = Progress(jobs, workers=2, speeds=book)
    progress.begin(jobs[0])
    progress.begin(jobs[1])
    assert progress.eta() == pytest.approx(3 * 55.0 / 2)
    clock[0] += 30.0  # within the prior: the running jobs have 25 s each to go
    assert progress.eta() == pytest.approx((25.0 + 25.0 + 55.0) / 2)
    clock[0] += 176.0  # 206 s running, far over the 55 s prior: kd is at least 20.6 s/unit
    assert progress.eta() == pytest.approx(206.0 / 2)
    assert progress.eta() >= 206.0 / progress.workers
    progress.finish(jobs[0], dict(train_time_s=210.0, eval_time_s=0.0))
    # measured 21 s/unit: s1 has 210 - 206 s to go, s2 all of its 210 s
    assert progress.eta() == pytest.approx((4.0 + 210.0) / 2)


def test_every_method_sees_the_same_data_and_initial_backbone_for_a_seed():
    from benchmarks.classification.data import Split, TensorLoader
    from benchmarks.classification.engine import build_model, set_seed
    split = Split(torch.zeros(50, 1, 28, 28, dtype=torch.uint8), torch.zeros(50).long(), 't')
    first = TensorLoader(split, 8, shuffle=True, flip=True, seed=3)
    torch.manual_seed(123)  # the global RNG (model init, flow draws) does not move the data
    second = TensorLoader(split, 8, shuffle=True, flip=True, seed=3)
    for epoch in (0, 1):
        assert all(torch.equal(a, b) for a, b in zip(first.draws(epoch), second.draws(epoch)))
    assert first.digest(0) == second.digest(0) != first.digest(1)
    assert TensorLoader(split, 8, shuffle=True, flip=True, seed=4).digest(0) != first.digest(0)
    states = []
    for method in ('student', 'kd', 'fmkt_kd', 'ofmkt'):
        set_seed(0)
        model = build_model(method_cfg(method, 'wide', teacher_cache=None)
                            if not get(method).teacher else
                            method_cfg(method, 'wide',
                                       teacher_model=configs.pair_part('wide', 'teacher')))
        student = getattr(model, 'student', model)
        states.append({k: v.clone() for k, v in student.backbone.state_dict().items()})
    for other in states[1:]:
        assert all(torch.equal(states[0][k], other[k]) for k in states[0])


def test_overhead_amp_option_needs_cuda():
    from benchmarks.overhead.cli import main
    with pytest.raises(SystemExit):
        main(['--amp', 'bf16', '--device', 'cpu'])


def test_overhead_det_option_is_cpu_only():
    from benchmarks.overhead.cli import main
    with pytest.raises(SystemExit):
        main(['--det', '--device', 'cuda'])


def test_overhead_compile_flow_option_reaches_every_flow():
    from benchmarks.overhead.resnet import build_models, compile_value
    from fmkt_plugin.models.connectors import find_flows
    for scope in (None, 'encoder', 'flow'):
        models = build_models(compile_flow=compile_value(scope))
        flows = {f'{name}.{path}': flow for name in ('fmkt_logit', 'fmkt_feature', 'student_flow')
                 for path, flow in find_flows(models[name]).items()}
        assert len(flows) == 3
        for flow in flows.values():
            assert flow.compile_scope == scope
            assert flow.compile_args == (dict(dynamic=False) if scope else None)
            wrapped = flow.velocity_model() is not flow.meta_encoder
            assert wrapped == (scope == 'encoder')


def test_overhead_compile_options_give_the_connector_value():
    from benchmarks.overhead.cli import main
    from benchmarks.overhead.resnet import compile_value
    assert compile_value(None) is False and compile_value(None, 'reduce-overhead') is False
    assert compile_value('encoder') is True
    assert compile_value('flow') == dict(scope='flow')
    assert compile_value('flow', 'reduce-overhead') == dict(scope='flow', mode='reduce-overhead')
    with pytest.raises(SystemExit):
        main(['--compile-mode', 'reduce-overhead'])  # a mode without --compile-flow


def test_overhead_draw_ratio_is_the_mean_step_over_the_config_draw():
    from benchmarks.overhead.resnet import _draw_ratio, feature_draw
    assert feature_draw() == (1, 2, 4, 8, 16)  # configs/_base_/methods/fmkt_features.py
    times = {'kd': [1.0, 2.0, 1.0], 'fmkt_feature': [1.2, 2.4, 1.6],
             'fmkt_feature_N2': [1.0, 2.2, 1.1]}
    # per repeat: mean of N=2 and N=8 over KD -> 1.1, 1.15, 1.35; median 1.15
    assert _draw_ratio(times, (2, 8)) == pytest.approx(1.15)


def test_op_counter_counts_computing_ops_on_its_device_only():
    from benchmarks.overhead.resnet import OpCounter
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    with OpCounter('cpu') as counter:
        c = a + b           # counted
        c.view(-1).t()      # views: not counted
        torch.relu_(c)      # counted
        (c * 2).sum()       # two ops
    assert counter.count == 4
    with OpCounter('cuda') as counter:  # host tensors only: nothing on that device
        (a + b).sum()
    assert counter.count == 0
