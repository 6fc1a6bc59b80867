"""Folding RDR checkpoints: from the module and from a checkpoint's state dict."""
import pytest
import torch
from helpers import config_path

from fmkt_plugin.apis.config import load_config
from fmkt_plugin.apis.rdr_export import fold_rdr_state, rdr_plain_student_state
from fmkt_plugin.registry import MODELS


def test_state_dict_fold_matches_module_fold():
    cfg = load_config(config_path('baselines/rdr_res34_res18_in1k.py'))
    cfg.model.teacher_ckpt = None
    cfg.model.allow_random_teacher = True
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    with torch.no_grad():
        for b in model.student.backbone.layer4[1].conv2.branches:
            b.bn.weight.normal_()
            b.bn.running_var.uniform_(0.5, 2.0)
    from_module = rdr_plain_student_state(model.student)
    from_state = fold_rdr_state(cfg.model, model.student.state_dict())
    assert from_module.keys() == from_state.keys()
    for key, value in from_module.items():
        assert torch.allclose(value, from_state[key], atol=1e-6), key
    plain = MODELS.build(cfg.model.architecture)
    plain.load_state_dict(from_state, strict=True)
    assert 'backbone.layer4.1.bn2.running_var' in from_state


def test_fold_is_a_no_op_for_other_configs_and_checks_its_input():
    state = {'backbone.conv1.weight': torch.zeros(1)}
    assert fold_rdr_state({'type': 'SingleTeacherDistill'}, state) is state
    cfg = {'type': 'RDRDistill', 'rep': {'conv': 'backbone.x', 'norm': 'backbone.y'}}
    with pytest.raises(ValueError, match='no "backbone.x.branches.'):
        fold_rdr_state(cfg, state)
    with pytest.raises(ValueError, match='not an RDR student'):
        rdr_plain_student_state(torch.nn.Conv2d(1, 1, 1))
