"""Turn a distillation checkpoint into a standalone student (config + checkpoint)."""
import copy
import os
import os.path as osp
from typing import Dict, Mapping, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict

from ..utils.checkpoint import load_checkpoint
from ..utils.fileio import atomic_save
from .config import load_config

__all__ = ['export_student', 'StudentExport']

_PREFIX = 'architecture.'


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


def _algorithm(model_cfg: Mapping, scope: Optional[str]):
    """The registered class of the config's algorithm, looked up as the runner builds it (the
    config's default scope), then in MMRazor's; None where neither knows the name: the
    exporter then deploys the student's weights as they are."""
    from mmengine.registry import DefaultScope

    from ..registry import MODELS
    for where in dict.fromkeys((scope, 'mmrazor')):
        if where is None:
            continue
        with DefaultScope.overwrite_default_scope(where):
            try:
                found = MODELS.get(model_cfg.get('type'))
            except (KeyError, TypeError):
                found = None
        if found is not None:
            return found
    return None


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
    scope = student_cfg.get('_scope_', cfg.get('default_scope', 'mmpretrain'))
    # the algorithm says what its deployed student holds (RDR folds its branches) and whether
    # a checkpoint of it must hold flow weights
    algorithm = _algorithm(model_cfg, cfg.get('default_scope'))
    state = getattr(algorithm, 'deployable_student_state', lambda _, s: s)(model_cfg, state)
    if getattr(algorithm, 'export_needs_flow', False) and not _has_flow_weights(state):
        raise ValueError(f'{checkpoint}: no FM-KT flow weights for the FM-KT config {config}; '
                         'was it written by another config?')
    model = _build_student(student_cfg, scope, state, checkpoint, config)
    # the student's head says how it deploys without its flow (FM-KT^Theta)
    theta_export = getattr(getattr(model, 'head', None), 'theta_export', None)
    mode = 'flow' if theta_export is not None or _has_flow_weights(state) else 'plain'
    if theta:
        if theta_export is None:
            raise ValueError(f'--theta: the student head of {config} '
                             f'({type(getattr(model, "head", None)).__name__}, '
                             'model.architecture.head) has no theta export; a flow head has')
        try:
            plain = theta_export(model, student_cfg['head'])
        except ValueError as err:
            raise ValueError(f'--theta: {config}: {err}') from None
        student_cfg['head'] = ConfigDict(plain['head'])
        if plain.get('neck') and student_cfg.get('neck') is None:
            student_cfg['neck'] = ConfigDict(plain['neck'])
        model = _build_student(student_cfg, scope, plain['state'], checkpoint, config)
        mode = plain['mode']

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
