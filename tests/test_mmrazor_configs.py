"""MMRazor 1.0.0's own distillation configs (19 for mmcls, 11 for mmdet), read from the installed
mmrazor package, load through the plugin (compat Fix 15 and ``load_config``'s mmcls names), build
with random teachers, and run one training and one validation step on small random batches."""
import copy
import glob
import os.path as osp
import shutil

import pytest
import torch


def _configs():
    import mmrazor
    root = osp.join(osp.dirname(mmrazor.__file__), '.mim', 'configs', 'distill')
    found = sorted(osp.relpath(p, root) for task in ('mmcls', 'mmdet')
                   for p in glob.glob(osp.join(root, task, '**', '*.py'), recursive=True)
                   if f'{osp.sep}datasets{osp.sep}' not in p)
    return root, found


ROOT, CONFIGS = _configs()

#: configs that cannot run here, and the error that must say why
REFUSED = {
    # the teacher is timm's RegNetY-160 (TIMMBackbone): timm is not a dependency here
    'mmcls/deit/deit-base_regnety160_pt-16xb64_in1k.py': r'TIMMBackbone requires timm',
    # deformable convolution: an mmcv op that mmcv-lite's ops refuse (FMKT_MMCV=full builds it)
    'mmdet/pkd/pkd_fpn_reppoints_x101-dcn_reppoints_r50_2x_coco.py':
        r"mmcv op 'deform_conv_forward' is not available: mmcv-lite has no compiled ops",
}


def _offline(node):
    """No download: ``cfg_path`` models without pretrained weights, no ``Pretrained`` init,
    no teacher checkpoint (random teachers, as everywhere in the tests)."""
    if isinstance(node, dict):
        if 'cfg_path' in node:
            node['pretrained'] = False
        init = node.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            node['init_cfg'] = None
        for key in [k for k in node if k in ('teacher_ckpt', 'ckpt_path')]:
            node.pop(key)
        for value in node.values():
            _offline(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _offline(value)


def _cls_batch(num_classes, size):
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    return dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
                        for _ in range(4)],
                data_samples=[DataSample(metainfo=dict(sample_idx=torch.tensor(i)))
                              .set_gt_label(i % num_classes) for i in range(4)])


def _det_batch(size=128):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    torch.manual_seed(0)
    samples = []
    for i in range(2):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                        pad_shape=(size, size), scale_factor=(1.0, 1.0),
                                        batch_input_shape=(size, size), img_id=i))
        boxes = torch.tensor([[8., 8., 60., 70.], [50., 40., 120., 100.]])
        s.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([1, 3]))
        s.ignored_instances = InstanceData(bboxes=torch.zeros(0, 4), labels=torch.zeros(0).long())
        samples.append(s)
    return dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8)
                        for _ in range(2)], data_samples=samples)


def _optim_wrapper(model):
    """One SGD wrapper; data-free algorithms (a generator beside the student) take one per
    part, as their configs' ``optim_wrapper`` dicts say."""
    from mmengine.optim import OptimWrapper, OptimWrapperDict

    def sgd(module):
        return OptimWrapper(torch.optim.SGD([p for p in module.parameters() if p.requires_grad],
                                            lr=1e-4))

    if hasattr(model, 'generator'):
        return OptimWrapperDict(architecture=sgd(model.student), generator=sgd(model.generator))
    return sgd(model)


def _run(rel, copy_to=None, path=None):
    from mmengine.registry import DefaultScope

    from fmkt_plugin.apis import load_config
    from fmkt_plugin.registry import MODELS
    path = path or osp.join(ROOT, rel)
    if copy_to is not None:  # a user's copy of the file
        path = shutil.copy(path, copy_to)
    cfg = load_config(path)
    model_cfg = copy.deepcopy(cfg.model)
    _offline(model_cfg)
    if model_cfg.type.split('.')[-1] in ('FMKTDistill', 'FMKTFpnDistill'):
        model_cfg.allow_random_teacher = True  # the plugin's distillers refuse it otherwise
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope') or 'mmrazor'):
        # no init_weights(): the detectors' backbones would download their ImageNet weights
        model = MODELS.build(model_cfg)
        if rel.startswith('mmdet'):
            batch = _det_batch()
        else:
            classes = 100 if 'cifar100' in rel else 10 if 'cifar10' in rel else 1000
            batch = _cls_batch(classes, 32 if 'cifar' in rel else 64)
        wrapper = _optim_wrapper(model)
        model.train()
        log_vars = model.train_step(batch, wrapper)
        model.eval()
        with torch.no_grad():
            out = model.val_step(batch)
    return cfg, log_vars, out


@pytest.mark.slow
@pytest.mark.parametrize('rel', CONFIGS)
def test_mmrazor_config_loads_builds_trains_and_validates(rel):
    if rel in REFUSED:
        with pytest.raises(Exception, match=REFUSED[rel]):
            _run(rel)
        return
    _, log_vars, out = _run(rel)
    assert log_vars and all(torch.isfinite(torch.as_tensor(v)).all() for v in log_vars.values())
    assert len(out) == 4 if rel.startswith('mmcls') else len(out) == 2


def test_every_mmrazor_config_is_here():
    assert len(CONFIGS) == 30
    assert sum(c.startswith('mmcls') for c in CONFIGS) == 19


@pytest.mark.slow
def test_a_users_copy_of_an_mmrazor_config_runs_too(tmp_path):
    """Copied out of the package (its bases are all ``mmcls::``), the KD config loads the same."""
    cfg, log_vars, _ = _run('mmcls/kd/kd_logits_resnet34_resnet18_8xb32_in1k.py',
                            copy_to=str(tmp_path))
    assert cfg.filename.startswith(str(tmp_path)) and 'loss_kl' in ''.join(log_vars)
    assert cfg.model.architecture.cfg_path == 'mmpretrain::resnet/resnet18_8xb32_in1k.py'


def test_mmcls_names_are_translated_and_a_removed_class_is_named():
    from mmengine.config import Config

    from fmkt_plugin.utils.legacy_configs import translate_mmcls_names
    cfg = Config(dict(
        default_scope='mmcls',
        model=dict(_scope_='mmrazor', type='SingleTeacherDistill',
                   architecture=dict(type='mmcls.ImageClassifier',
                                     head=dict(type='mmrazor.DeiTClsHead')),
                   teacher=dict(cfg_path='mmcls::resnet/resnet34_8xb32_in1k.py')),
        train_pipeline=[dict(type='PackClsInputs')]))
    changes = translate_mmcls_names(cfg)
    assert cfg.default_scope == 'mmpretrain'
    assert cfg.model.architecture.type == 'ImageClassifier'
    assert cfg.model.architecture._scope_ == 'mmpretrain'
    assert cfg.model.architecture.head.type == 'DeiTClsHead'
    assert cfg.model.teacher.cfg_path == 'mmpretrain::resnet/resnet34_8xb32_in1k.py'
    assert cfg.train_pipeline[0]['type'] == 'PackInputs'
    assert len(changes) == 5, changes
    bad = Config(dict(model=dict(type='mmcls.ImageClassifierWithCAM')))
    with pytest.raises(ValueError, match=r"model\.type: 'mmcls\.ImageClassifierWithCAM' is an "
                       'mmcls class with no mmpretrain 1.2 equivalent'):
        translate_mmcls_names(bad)


def test_the_published_table_lists_every_config_with_what_the_test_found():
    from helpers import REPO
    with open(osp.join(REPO, 'docs', 'user_guides', 'mmrazor_configs.md')) as f:
        rows = [line.split('|')[1:-1] for line in f if line.startswith('| `')]
    table = {cells[0].strip().strip('`'): cells[2].strip() for cells in rows}
    assert sorted(table) == CONFIGS
    assert {c for c, status in table.items() if status.startswith('refused')} == set(REFUSED)


def test_train_tool_takes_an_mmrazor_package_config():
    from fmkt_plugin.apis import build_runner_config
    cfg = build_runner_config('mmrazor::distill/mmcls/kd/kd_logits_resnet34_resnet18_8xb32_in1k.py')
    assert cfg.model.type == 'SingleTeacherDistill' and cfg.default_scope == 'mmpretrain'
    assert cfg.work_dir.endswith('kd_logits_resnet34_resnet18_8xb32_in1k')
