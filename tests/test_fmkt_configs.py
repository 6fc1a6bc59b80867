"""Every classification config under configs/fmkt builds and trains/validates on CPU."""
import glob
import os.path as osp

import pytest
from fixtures.smoke import SMOKE_DEIT_SCHEDULE
from helpers import (
    REPO,
    assert_trained_stably,
    changed_params,
    load_tool,
    snapshot,
    tiny_cifar_options,
    tiny_cls_options,
    write_child_config,
)

CLS_CONFIGS = sorted(
    p for p in glob.glob(osp.join(REPO, 'configs', 'fmkt', '*.py'))
    if p.endswith(('_in1k.py', '_cifar100.py')))
CIFAR_BASELINES = sorted(glob.glob(osp.join(REPO, 'configs', 'baselines', '*_cifar100.py')))

TEACHER = {'resnet34': 'resnet34_8xb32_in1k', 'resnet50': 'resnet50_8xb32_in1k',
           'deit3-small': 'deit3-small-p16_64xb64_in1k'}


def test_all_classification_configs_are_collected():
    names = {osp.basename(p) for p in CLS_CONFIGS}
    assert {'resnet50_res18_in1k.py', 'resnet34_res18_in1k.py', 'resnet50_mbv2_in1k.py',
            'resnet34_res18_feat_in1k.py', 'resnet50_res18_theta_in1k.py',
            'resnet50_res18_theta-aux_in1k.py',
            'resnet50_res18_cifar100.py', 'ofmkt_res18_in1k.py',
            'ofmkt_res18_cifar100.py', 'deit3-small_deit-tiny_vitkd_in1k.py'} <= names
    assert len(CIFAR_BASELINES) == 3


def _run(config, tiny_imagenet, tiny_cifar, teacher_ckpts, tmp_path):
    name = osp.basename(config)
    cifar = name.endswith('_cifar100.py')
    if cifar:  # mmpretrain's CIFAR100 reader and the config's own pipelines
        options = tiny_cifar_options(tiny_cifar, batch_size=4)
    else:
        options = tiny_cls_options(tiny_imagenet, batch_size=4)
    if cifar:  # the CIFAR teacher is a ResNet_CIFAR: write its local checkpoint here
        options['model.teacher_ckpt'] = teacher_ckpts.get('resnet50_8xb16_cifar100')
    elif not name.startswith('ofmkt'):
        stem = name.split('_')[0] if not name.startswith(('kd', 'dkd', 'dist')) \
            else name.split('_')[1]
        options['model.teacher_ckpt'] = teacher_ckpts[TEACHER[stem]]
    if name.startswith('ofmkt'):
        options.pop('model.teacher_ckpt', None)
    if name.startswith('deit'):
        options['param_scheduler'] = SMOKE_DEIT_SCHEDULE
    cfg = write_child_config(tmp_path, config, options)
    runner = load_tool('train').build_runner([cfg, '--work-dir', str(tmp_path / 'work')])
    if cifar:  # the pickles were read by mmpretrain's CIFAR100 loader
        dataset = runner.train_dataloader.dataset
        assert type(dataset).__mro__[1].__name__ == 'CIFAR100' and len(dataset) == 8
    runner.model.init_weights()
    before = snapshot(runner.model.architecture)
    runner.train()
    assert runner.iter == 2
    assert changed_params(before, runner.model.architecture) > 0
    assert 'val/accuracy/top1' in runner.message_hub.log_scalars
    return runner, before


@pytest.mark.slow
@pytest.mark.parametrize('config', CLS_CONFIGS, ids=osp.basename)
def test_fmkt_config_trains_and_validates(config, tiny_imagenet, tiny_cifar, teacher_ckpts,
                                          tmp_path):
    runner, before = _run(config, tiny_imagenet, tiny_cifar, teacher_ckpts, tmp_path)
    online = osp.basename(config).startswith('ofmkt')
    assert type(runner.model).__name__ == ('OFMKT' if online else 'FMKTDistill')
    prefix = 'train/' if online else 'train/distill.'
    ce_key = 'train/loss_ce' if online else 'train/student.loss_ce'
    if osp.basename(config).endswith('_feat_in1k.py'):  # flow neck, plain LinearClsHead
        ce_key = 'train/student.loss'
        assert_trained_stably(runner, ['train/distill.loss_kl'])
    assert_trained_stably(runner, [prefix + 'loss_fmkt', ce_key])
    flow_params = [n for n in before if n.startswith(('head.flow.', 'neck.flow.'))]
    assert flow_params and changed_params(
        {n: before[n] for n in flow_params}, runner.model.architecture) > 0


@pytest.mark.slow
@pytest.mark.parametrize('config', CIFAR_BASELINES, ids=osp.basename)
def test_cifar_baseline_trains_and_validates(config, tiny_imagenet, tiny_cifar, teacher_ckpts,
                                             tmp_path):
    runner, _ = _run(config, tiny_imagenet, tiny_cifar, teacher_ckpts, tmp_path)
    distill = [k for k in runner.message_hub.log_scalars if k.startswith('train/distill.loss')]
    assert distill
    assert_trained_stably(runner, distill)


def _bases(path):
    """The local base files of a config (``package::`` bases left out)."""
    import ast
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', '') == '_base_'
                                                for t in node.targets):
            value = ast.literal_eval(node.value)
            names = [value] if isinstance(value, str) else list(value)
            return [osp.normpath(osp.join(osp.dirname(path), n)) for n in names if '::' not in n]
    return []


def _files_to(path, needle):
    """How many files of ``configs/_base_`` a reader opens, from ``path``, to reach the one
    that writes ``needle`` (a shipped config a variant inherits is not counted: it is read
    anyway); None when no base writes it."""
    if needle in open(path).read():
        return 0
    depths = []
    for base in _bases(path):
        depth = _files_to(base, needle)
        if depth is not None:
            depths.append(depth + (f'{osp.sep}_base_{osp.sep}' in base))
    return min(depths) if depths else None


@pytest.mark.parametrize('config', CLS_CONFIGS, ids=osp.basename)
def test_a_reader_opens_at_most_two_base_files_to_see_the_flow_head(config):
    for needle in ("type='FlowMatchingClsHead'", "type='FlowMatchingConnector'"):
        depth = _files_to(config, needle)
        assert depth is None or depth <= 2, f'{needle}: {depth} base files deep'
    if 'theta' not in osp.basename(config) and '_feat_' not in osp.basename(config):
        assert _files_to(config, "type='FlowMatchingConnector'") is not None


def test_the_benchmarks_pick_as_the_docs_write_it_sets_the_flow_learning_rate(tmp_path):
    """docs/user_guides/train_test_export.md's two lines: the displacement estimate, and the flow
    of the head at 0.1x the student's learning rate (the teacher's parameters are frozen)."""
    import re

    import torch
    from helpers import config_path
    from mmengine.optim import build_optim_wrapper

    from fmkt_plugin.apis import load_config
    from fmkt_plugin.registry import MODELS
    with open(osp.join(REPO, 'docs', 'user_guides', 'train_test_export.md')) as f:
        (snippet, ) = [b for b in re.findall(r'```python\n(.*?)```', f.read(), re.S)
                       if 'lr_mult' in b]
    child = tmp_path / 'pick.py'
    child.write_text(f"_base_ = [{config_path('fmkt/resnet34_res18_in1k.py')!r}]\n" + snippet)
    cfg = load_config(str(child))
    assert cfg.model.architecture.head.flow.estimate == 'displacement'
    cfg.model.teacher_ckpt, cfg.model.allow_random_teacher = None, True
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    flow = {id(p) for n, p in model.named_parameters() if 'architecture.head.flow.' in n}
    lrs = {('flow' if id(p) in flow else 'rest'): g['lr']
           for g in wrapper.param_groups for p in g['params']}
    assert flow and lrs['flow'] == pytest.approx(0.1 * lrs['rest'])
