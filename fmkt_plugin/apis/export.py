"""Turn a distillation checkpoint into a standalone student (config + checkpoint)."""
import copy
import os
import os.path as osp
from typing import Dict, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict

from ..models.heads import fold_flow_head, plain_student_state
from ..utils.checkpoint import load_checkpoint
from ..utils.fileio import atomic_save
from .config import load_config
from .rdr_export import fold_rdr_state

__all__ = ['export_student', 'StudentExport']

_PREFIX = 'architecture.'
_FLOW_HEAD = 'FlowMatchingClsHead'


class StudentExport(dict):
    """Paths and facts of an export: ``config``, ``checkpoint``, ``num_params``, ``mode``."""


def _student_state(checkpoint: str) -> Tuple[Dict[str, torch.Tensor], dict]:
    # a local file only: the export records the checkpoint's absolute path
    ckpt = load_checkpoint(checkpoint, 'checkpoint', allow_remote=False)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f'{checkpoint}: not a model checkpoint (no state dict)')
    student = {k[len(_PREFIX):]: v for k, v in state.items() if k.startswith(_PREFIX)}
    if not student:
        raise ValueError(f'{checkpoint}: not a distillation checkpoint (no "{_PREFIX}*" weights; '
                         'a plain model checkpoint needs no conversion)')
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    return student, meta


def _has_flow_weights(state: Dict[str, torch.Tensor]) -> bool:
    """Whether a student state dict holds FM-KT flow weights: those of a flow head or neck
    (``*.flow.*``) or the per-level flows of a detection ``FlowFPN`` (``neck.flows.<level>.*``).
    """
    return any('.flow.' in k or '.flows.' in k for k in state)


def _theta_head(head: ConfigDict) -> ConfigDict:
    return ConfigDict(
        type='LinearClsHead',
        num_classes=head['num_classes'],
        in_channels=head['in_channels'],
        loss=head.get('loss', dict(type='CrossEntropyLoss', loss_weight=1.0)),
        topk=head.get('topk', (1, )))


def _build_student(student_cfg: ConfigDict, scope: str, state: Dict[str, torch.Tensor],
                   checkpoint: str, config: str) -> torch.nn.Module:
    """Build the student and load ``state`` strictly (a mismatch names both files)."""
    from mmengine.registry import DefaultScope

    from ..registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(copy.deepcopy(student_cfg))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f'{checkpoint}: student weights do not match '
                           f'model.architecture of {config}: missing {missing[:5]}, '
                           f'unexpected {unexpected[:5]}')
    return model


def export_student(config: str,
                   checkpoint: str,
                   out_dir: str,
                   theta: bool = False,
                   cfg_options: Optional[dict] = None) -> StudentExport:
    """Write ``student_config.py`` and ``student.pth`` for the student of a distillation run.

    Args:
        config: the distillation config (FM-KT or a baseline).
        checkpoint: a checkpoint written by training that config.
        out_dir: output folder (created).
        theta: export the FM-KT^Theta student, an ordinary mmpretrain classifier with a plain
            ``LinearClsHead`` and no inference overhead. With an affine meta-encoder
            (``LinearMetaEncoder``) the flow head is folded into that linear head, which gives
            the N-step ensemble's logits exactly (mode ``'theta-fold'``); otherwise the head
            carries the trained ``theta_fc`` weights (mode ``'theta'``).
        cfg_options: overrides applied to the config first.

    Returns:
        A :class:`StudentExport`.

    Raises:
        FileNotFoundError / ValueError / RuntimeError naming the file or field at fault.
        Nothing is written unless the student loads the exported weights strictly.
    """
    cfg = load_config(config, cfg_options)
    model_cfg = cfg.get('model', None)
    if model_cfg is None or 'architecture' not in model_cfg:
        raise ValueError(f'{config}: model.architecture missing: not a distillation config')
    student_cfg = ConfigDict(model_cfg['architecture'])
    if 'cfg_path' in student_cfg:
        from mmengine.hub import get_config
        student_cfg = get_config(student_cfg['cfg_path']).model
        student_cfg.setdefault('_scope_', 'mmpretrain')
    state, meta = _student_state(checkpoint)
    # RDR: the re-parameterisable branches fold into the plain conv + BN (no-op otherwise)
    state = fold_rdr_state(model_cfg, state)

    head = student_cfg.get('head', {})
    has_flow_head = head.get('type') == _FLOW_HEAD
    is_fmkt = model_cfg.get('type') in ('FMKTDistill', 'FMKTFpnDistill', 'OFMKT')
    if is_fmkt and not _has_flow_weights(state):
        raise ValueError(f'{checkpoint}: no FM-KT flow weights for the FM-KT config {config}; '
                         'was it written by another config?')
    scope = student_cfg.get('_scope_', cfg.get('default_scope', 'mmpretrain'))
    model = _build_student(student_cfg, scope, state, checkpoint, config)
    mode = 'flow'
    if theta:
        if not has_flow_head:
            raise ValueError(f'--theta: {config} has no {_FLOW_HEAD} (model.architecture.head)')
        flow_head = model.head
        if getattr(flow_head.flow.meta_encoder, 'affine', False):
            # exact: the ensemble of an affine flow is one linear layer
            state = plain_student_state(model, *fold_flow_head(flow_head))
            mode = 'theta-fold'
        elif flow_head.theta_fc is not None:
            fc = flow_head.theta_fc.fc
            state = plain_student_state(model, fc.weight.detach(), fc.bias.detach())
            mode = 'theta'
        else:
            raise ValueError(f'--theta: the flow head of {config} can neither be folded (its '
                             f'meta_encoder {type(flow_head.flow.meta_encoder).__name__} is not '
                             'affine; use meta_encoder=dict(type="LinearMetaEncoder")) nor has '
                             'a trained theta_fc (model.architecture.head.theta=True)')
        student_cfg['head'] = _theta_head(head)
        if student_cfg.get('neck') is None:
            # a flow on the feature map pools each step; the plain head needs pooled features
            student_cfg['neck'] = ConfigDict(type='GlobalAveragePooling')
        model = _build_student(student_cfg, scope, state, checkpoint, config)
    elif not has_flow_head and not _has_flow_weights(state):
        mode = 'plain'

    out_cfg = Config(cfg.to_dict() if hasattr(cfg, 'to_dict') else cfg._cfg_dict.to_dict())
    out_cfg.model = student_cfg
    for key in ('find_unused_parameters', 'load_from', 'resume'):
        out_cfg.pop(key, None)
    out_cfg.default_scope = scope
    out_cfg.custom_imports = dict(imports=['fmkt_plugin'], allow_failed_imports=False)

    os.makedirs(out_dir, exist_ok=True)
    cfg_path = osp.join(out_dir, 'student_config.py')
    ckpt_path = osp.join(out_dir, 'student.pth')
    export_meta = dict(meta, fmkt_export=dict(source_config=osp.abspath(config),
                                              source_checkpoint=osp.abspath(checkpoint),
                                              mode=mode))
    atomic_save({'state_dict': model.state_dict(), 'meta': export_meta}, ckpt_path)
    atomic_save(out_cfg, cfg_path, lambda obj, p: obj.dump(p))
    return StudentExport(config=cfg_path, checkpoint=ckpt_path, mode=mode,
                         num_params=sum(p.numel() for p in model.parameters()))
