"""tools/convert_fmkt_ckpt_to_student.py: exported students match the distillation model."""
import os
import os.path as osp

import pytest
import torch
from helpers import (
    assert_trained_stably,
    config_path,
    load_tool,
    tiny_cls_options,
    write_child_config,
)


def _train(tmp_path, tiny_imagenet, teacher_ckpts, extra=None):
    options = tiny_cls_options(tiny_imagenet, batch_size=4)
    options['model.teacher_ckpt'] = teacher_ckpts['resnet34_8xb32_in1k']
    options.update(extra or {})
    cfg = write_child_config(tmp_path, config_path('fmkt/resnet34_res18_in1k.py'), options)
    work = str(tmp_path / 'work')
    runner = load_tool('train').main([cfg, '--work-dir', work, '--no-validate'])
    assert_trained_stably(runner)
    return cfg, osp.join(work, 'epoch_1.pth'), runner


def _batch(runner):
    loader = runner.build_dataloader(runner.cfg.test_dataloader)
    return next(iter(loader))


def _exported_runner(result, work_dir):
    """An mmengine Runner built from the exported config, with the exported weights loaded."""
    from mmengine.runner import Runner
    cfg = load_tool('test').build_runner_config(result['config'], work_dir=str(work_dir),
                                                load_from=result['checkpoint'])
    runner = Runner.from_cfg(cfg)
    runner.load_checkpoint(result['checkpoint'])
    return runner


def _assert_plain_resnet18(result):
    """The exported student is mmpretrain's plain ResNet-18, module for module."""
    from mmengine.hub import get_model
    from mmengine.registry import DefaultScope

    from fmkt_plugin.apis import load_config
    from fmkt_plugin.registry import MODELS
    plain = get_model('mmpretrain::resnet/resnet18_8xb32_in1k.py', pretrained=False)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        exported = MODELS.build(load_config(result['config']).model)
    assert str(exported) == str(plain)
    assert result['num_params'] == sum(p.numel() for p in plain.parameters())


def _predict_scores(model, batch):
    model.eval()
    with torch.no_grad():
        out = model.test_step(batch)
    return torch.stack([s.pred_score for s in out])


def _logits(classifier, batch):
    """Eval-mode logits of an mmpretrain classifier (through its own preprocessor)."""
    classifier.eval()
    with torch.no_grad():
        data = classifier.data_preprocessor(batch, False)
        return classifier(data['inputs'], mode='tensor')


@pytest.mark.slow
def test_exported_flow_student_predicts_like_the_distilled_student(tiny_imagenet, teacher_ckpts,
                                                                   tmp_path):
    cfg, ckpt, runner = _train(tmp_path, tiny_imagenet, teacher_ckpts)
    out = tmp_path / 'student'
    result = load_tool('convert_fmkt_ckpt_to_student').main([cfg, ckpt, str(out)])
    assert result['mode'] == 'flow'

    batch = _batch(runner)
    expected = _predict_scores(runner.model, batch)  # the student inside FMKTDistill

    student = _exported_runner(result, tmp_path / 'eval').model
    assert type(student).__name__ == 'ImageClassifier'
    torch.testing.assert_close(_predict_scores(student, batch), expected, atol=1e-5, rtol=0)

    test_tool = load_tool('test')
    metrics = test_tool.main([result['config'], result['checkpoint'],
                              '--work-dir', str(tmp_path / 'eval2')])
    assert 'accuracy/top1' in metrics

    # the same weights export to the same bytes (a digest identifies an export), also elsewhere
    again = load_tool('convert_fmkt_ckpt_to_student').main([cfg, ckpt, str(tmp_path / 'again')])
    for key in ('checkpoint', 'config'):
        assert _sha256(again[key]) == _sha256(result[key]), key


def _sha256(path):
    import hashlib
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.slow
def test_theta_export_is_a_plain_student(tiny_imagenet, teacher_ckpts, tmp_path):
    """The joint form (theta_fc trained alongside the flow, here also training the backbone):
    the exported plain ResNet-18 predicts exactly like the trained student's plain head."""
    cfg, ckpt, runner = _train(tmp_path, tiny_imagenet, teacher_ckpts, {
        'model.architecture.head.theta': dict(detach_feature=False, use_for_inference=True)})
    result = load_tool('convert_fmkt_ckpt_to_student').main(
        [cfg, ckpt, str(tmp_path / 'theta'), '--theta'])
    assert result['mode'] == 'theta'
    _assert_plain_resnet18(result)

    # the exported linear head carries the trained theta_fc weights
    state = torch.load(result['checkpoint'], map_location='cpu', weights_only=True)['state_dict']
    head = runner.model.architecture.head
    trained = head.theta_fc.fc.weight.detach()
    torch.testing.assert_close(state['head.fc.weight'], trained)
    assert trained.abs().sum() > 0

    batch = _batch(runner)
    student = runner.model.architecture
    expected = _logits(student, batch)  # eval: the plain head (use_for_inference)
    exported = _exported_runner(result, tmp_path / 'eval').model
    torch.testing.assert_close(_logits(exported, batch), expected, atol=1e-5, rtol=0)
    # ... which are not the flow ensemble's logits
    head.theta_cfg['use_for_inference'] = False
    assert (_logits(student, batch) - expected).abs().max() > 1e-4


@pytest.mark.slow
def test_theta_aux_config_exports_its_kd_head_as_a_plain_student(tiny_imagenet, teacher_ckpts,
                                                                 tmp_path):
    """configs/fmkt/resnet50_res18_theta-aux_in1k.py: the plain head trains with KD towards
    the teacher beside the auxiliary flow head; --theta exports backbone + that head as a plain
    ResNet-18 that predicts exactly like the trained model."""
    options = tiny_cls_options(tiny_imagenet, batch_size=4)
    options['model.teacher_ckpt'] = teacher_ckpts['resnet50_8xb32_in1k']
    cfg = write_child_config(tmp_path, config_path('fmkt/resnet50_res18_theta-aux_in1k.py'),
                             options)
    work = str(tmp_path / 'work')
    runner = load_tool('train').main([cfg, '--work-dir', work, '--no-validate'])
    assert_trained_stably(runner, keys=('train/distill.loss_plain_kd', ))
    history = runner.message_hub.get_scalar('train/distill.loss_plain_kd').data[0]
    assert len(history) > 0 and all(v > 0 for v in history)
    result = load_tool('convert_fmkt_ckpt_to_student').main(
        [cfg, osp.join(work, 'epoch_1.pth'), str(tmp_path / 'aux'), '--theta'])
    assert result['mode'] == 'theta'
    _assert_plain_resnet18(result)
    batch = _batch(runner)
    expected = _logits(runner.model.architecture, batch)  # eval: the plain head
    exported = _exported_runner(result, tmp_path / 'eval').model
    torch.testing.assert_close(_logits(exported, batch), expected, atol=1e-5, rtol=0)


@pytest.mark.slow
def test_theta_fold_export_is_a_plain_student_with_the_ensemble_predictions(
        tiny_imagenet, teacher_ckpts, tmp_path):
    """An affine meta-encoder: the exported plain student predicts exactly like the flow head."""
    cfg, ckpt, runner = _train(tmp_path, tiny_imagenet, teacher_ckpts, {
        'model.architecture.head.flow.meta_encoder': dict(_delete_=True,
                                                          type='LinearMetaEncoder')})
    flow = runner.model.architecture.head.flow
    assert flow.meta_encoder.out.weight.abs().sum() > 0  # trained: the flow is not the identity
    result = load_tool('convert_fmkt_ckpt_to_student').main(
        [cfg, ckpt, str(tmp_path / 'fold'), '--theta'])
    assert result['mode'] == 'theta-fold'
    _assert_plain_resnet18(result)

    batch = _batch(runner)
    expected = _predict_scores(runner.model, batch)  # the N-step ensemble inside FMKTDistill
    got = _predict_scores(_exported_runner(result, tmp_path / 'eval').model, batch)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_converter_rejects_non_distillation_checkpoint(tmp_path):
    plain = tmp_path / 'plain.pth'
    torch.save({'state_dict': {'backbone.conv1.weight': torch.zeros(1)}}, plain)
    convert = load_tool('convert_fmkt_ckpt_to_student')
    out = tmp_path / 'out'
    with pytest.raises(ValueError, match='not a distillation checkpoint'):
        convert.main([config_path('fmkt/resnet34_res18_in1k.py'), str(plain), str(out)])
    assert not out.exists() or not os.listdir(out)


def test_converter_rejects_checkpoint_without_flow(tmp_path):
    ckpt = tmp_path / 'kd.pth'
    torch.save({'state_dict': {'architecture.head.fc.weight': torch.zeros(1)}}, ckpt)
    convert = load_tool('convert_fmkt_ckpt_to_student')
    with pytest.raises(ValueError, match='no FM-KT flow weights'):
        convert.main([config_path('fmkt/resnet34_res18_in1k.py'), str(ckpt), str(tmp_path / 'o')])


def test_the_exporter_names_no_class_it_asks_the_model():
    """apis/export.py's code holds no registered class name (its docstrings may explain them):
    what a student deploys is asked of its
    algorithm (``deployable_student_state``, ``export_needs_flow``) and head (``theta_export``),
    so a new algorithm or head needs no change to the exporter."""
    import ast

    from mmdet.registry import MODELS as MMDET
    from mmpretrain.registry import MODELS as MMPRETRAIN

    from fmkt_plugin.apis import export
    from fmkt_plugin.registry import MODELS
    names = set(MODELS.module_dict) | set(MMPRETRAIN.module_dict) | set(MMDET.module_dict)
    assert {'FMKTDistill', 'RDRDistill', 'FlowMatchingClsHead', 'GlobalAveragePooling'} <= names
    with open(export.__file__) as f:
        tree = ast.parse(f.read())
    docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, str) and id(n) not in docstrings}
    words = {w.strip('.,:;()\'"`') for s in strings for w in s.split()}
    assert not (words | strings) & names, sorted((words | strings) & names)
