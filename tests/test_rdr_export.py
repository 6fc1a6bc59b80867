"""Folding RDR checkpoints: from the module and from a checkpoint's state dict; the fold is
model code, which the exporter reaches by asking the algorithm (``deployable_student_state``)."""
import os.path as osp

import pytest
import torch
from helpers import build_random_teacher_model

from fmkt_plugin.registry import MODELS
from fmkt_plugin.rivals.rdr import fold_rdr_state, rdr_plain_student_state

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_state_dict_fold_matches_module_fold():
    cfg, model = build_random_teacher_model('baselines/rdr_res34_res18_in1k.py', init=False)
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


def test_each_algorithm_says_what_its_deployed_student_holds_and_the_fold_checks_its_input():
    state = {'backbone.conv1.weight': torch.zeros(1)}
    cfg = {'type': 'RDRDistill', 'rep': {'conv': 'backbone.x', 'norm': 'backbone.y'}}
    for name in ('FMKTDistill', 'FMKTFpnDistill', 'OFMKT', 'DiffKDDistill'):
        assert MODELS.get(name).deployable_student_state(cfg, state) is state, name
    assert [n for n in ('FMKTDistill', 'FMKTFpnDistill', 'OFMKT', 'DiffKDDistill', 'RDRDistill')
            if MODELS.get(n).export_needs_flow] == ['FMKTDistill', 'FMKTFpnDistill', 'OFMKT']
    with pytest.raises(ValueError, match='no "backbone.x.branches.'):
        MODELS.get('RDRDistill').deployable_student_state(cfg, state)
    with pytest.raises(ValueError, match='not an RDR student'):
        rdr_plain_student_state(torch.nn.Conv2d(1, 1, 1))
