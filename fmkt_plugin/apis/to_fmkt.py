"""``tools/to_fmkt.py``: turn a logit-level or FPN-level distillation config into FM-KT.

Command line::

    CONFIG -o OUT.py [--num-steps 8] [--test-num-steps N]

CONFIG is a distillation config of MMRazor 1.0 (``mmrazor::distill/...``, or a copy) or of this
repository. OUT.py inherits it (``_base_``) and changes only what FM-KT needs:

- logit level (a student recorder on ``head.fc``): the student's head becomes a
  ``FlowMatchingClsHead`` with the flow of ``configs/_base_/heads/flow_cls_head.py``, the
  recorder reads its per-step logits (``head.step_head``);
- FPN level (a student recorder on ``neck``, one output per loss): the student's neck is wrapped
  in a ``FlowFPN`` with the flow of ``configs/_base_/methods/fmkt_fpn.py`` on those levels, and a
  recorder per level reads that level's per-step estimates;
- each such loss becomes ``FMKTLoss`` wrapping the config's own loss (its arguments kept) as the
  per-step metric, fed the steps' outputs; the algorithm becomes ``FMKTDistill`` (from
  ``SingleTeacherDistill``) or ``FMKTFpnDistill`` (from ``FpnTeacherDistill``).

Losses on other recorders (backbone features, ...) stay as they are. A config with no logit or
FPN loss (CRD, DAFL, BYOT, ...) is refused with the reason. The diff of the resolved model
sections is printed.
"""
import argparse
import difflib
import os
import os.path as osp
import pprint
from typing import Dict, List, Optional, Tuple

from mmengine.config import Config

from ..utils.fileio import atomic_write
from .config import load_config

__all__ = ['convert_to_fmkt', 'parse_args', 'main']

#: algorithm of the original -> FM-KT's
ALGORITHMS = {'SingleTeacherDistill': 'FMKTDistill', 'FpnTeacherDistill': 'FMKTFpnDistill'}
LOGIT_SOURCE = 'head.fc'
FPN_SOURCE = 'neck'


def _shipped_base(rel: str) -> Config:
    """A base file of the plugin's configs (installed ``.mim`` or the source tree)."""
    import fmkt_plugin
    package = osp.dirname(fmkt_plugin.__file__)
    for root in (osp.join(package, '.mim', 'configs'), osp.join(osp.dirname(package), 'configs')):
        if osp.isfile(osp.join(root, rel)):
            return Config.fromfile(osp.join(root, rel))
    raise FileNotFoundError(f'the plugin\'s config base {rel} is not installed')


def _resolved_model(part: dict) -> Optional[dict]:
    """The model config of a ``cfg_path`` student/teacher (MMRazor's form), else None."""
    if 'cfg_path' not in part:
        return None
    from mmengine.hub import get_config
    model = get_config(part['cfg_path']).model.to_dict()
    model.setdefault('_scope_', part['cfg_path'].split('::')[0])
    return model


def _is_labels(item: dict, recorders: dict) -> bool:
    """A mapping input that carries the labels (a ``ModuleInputs`` recorder, e.g. DKD's and
    WSLD's ``gt_labels`` from ``head.loss_module``)."""
    rec = recorders.get(item.get('recorder'), {}) if item.get('from_student') else {}
    return str(rec.get('type', '')).endswith('ModuleInputs')


def _inputs(mapping: dict, recorders: dict):
    """(student inputs, teacher inputs, label inputs) of a loss mapping, as (key, item)."""
    student, teacher, labels = [], [], []
    for key, item in mapping.items():
        if _is_labels(item, recorders):
            labels.append((key, item))
        elif item.get('from_student'):
            student.append((key, item))
        else:
            teacher.append((key, item))
    return student, teacher, labels


def _classify(cfg) -> Tuple[str, Dict[str, Tuple[str, Optional[int]]], List[str]]:
    """(level, {loss: (student recorder, data_idx)}, reasons for the losses left as they are)."""
    distiller = cfg.model.get('distiller') or {}
    recorders = distiller.get('student_recorders') or {}
    mappings = distiller.get('loss_forward_mappings') or {}
    found, skipped = {}, []
    for loss, mapping in mappings.items():
        student, teacher, labels = _inputs(mapping, recorders)
        if len(student) != 1 or len(teacher) != 1 or len(labels) > 1:
            skipped.append(f'{loss}: not one student and one teacher input')
            continue
        _, item = student[0]
        rec = recorders.get(item.get('recorder'), {})
        source, kind = rec.get('source'), str(rec.get('type', ''))
        if item.get('connector'):
            skipped.append(f'{loss}: its student input goes through a connector')
        elif kind.endswith('ModuleOutputs') and source == LOGIT_SOURCE:
            found[loss] = ('logit', item['recorder'], item.get('data_idx'))
        elif kind.endswith('ModuleOutputs') and source == FPN_SOURCE and \
                item.get('data_idx') is not None:
            found[loss] = ('fpn', item['recorder'], item['data_idx'])
        else:
            skipped.append(f'{loss}: its student input is {source!r}, not the logits '
                           f'({LOGIT_SOURCE}) or an FPN level ({FPN_SOURCE})')
    levels = {v[0] for v in found.values()}
    if len(levels) > 1:
        raise ValueError('the config distils both logits and FPN levels; convert one of them')
    return (levels.pop() if levels else ''), {k: v[1:] for k, v in found.items()}, skipped


def convert_to_fmkt(config: str, num_steps: int = 8,
                    test_num_steps: Optional[int] = None) -> Tuple[dict, List[str]]:
    """The FM-KT overrides of ``config`` (a ``model`` dict for a child config) and the notes
    on what was left as it was.

    Raises:
        ValueError: the config cannot be converted, saying why.
    """
    return _convert(load_config(config), config, num_steps, test_num_steps)


def _convert(cfg: Config, config: str, num_steps: int,
             test_num_steps: Optional[int]) -> Tuple[dict, List[str]]:
    model = cfg.get('model') or {}
    algorithm = str(model.get('type', '')).split('.')[-1]
    if algorithm not in ALGORITHMS:
        raise ValueError(f'{config}: model.type {model.get("type")!r} is not a single-teacher '
                         f'distiller ({", ".join(ALGORITHMS)}); FM-KT transports a student '
                         'towards one teacher')
    level, losses, skipped = _classify(cfg)
    if not losses:
        raise ValueError(f'{config}: no logit-level or FPN-level distillation loss to convert ('
                         + '; '.join(skipped or ['model.distiller has no losses']) + ')')
    distiller = model.distiller
    arch = _resolved_model(model.architecture)
    out_arch = dict(arch, _delete_=True) if arch else {}
    source_arch = arch or model.architecture.to_dict()
    base = _shipped_base('_base_/heads/flow_cls_head.py' if level == 'logit' else
                         '_base_/methods/fmkt_fpn.py')
    flow = base.flow.to_dict()
    flow['num_steps'] = num_steps
    if level == 'logit' or test_num_steps is not None:
        flow['test_num_steps'] = test_num_steps or num_steps
    new_losses, new_maps, recorders = {}, {}, {}
    for name, (recorder, data_idx) in losses.items():
        mapping = distiller.loss_forward_mappings[name]
        _, teacher, labels = _inputs(mapping, distiller.student_recorders)
        new_map = dict(_delete_=True, target=teacher[0][1].to_dict())
        if labels:  # FMKTLoss hands them to the metric as gt_labels
            new_map['gt_labels'] = labels[0][1].to_dict()
        if level == 'logit':
            new_map['preds'] = dict(from_student=True, recorder=recorder)
            recorders[recorder] = dict(type='ModuleOutputs', source='head.step_head')
        else:
            steps = f'{recorder}_flow{data_idx}'
            new_map['preds'] = dict(from_student=True, recorder=steps, data_idx=0)
            recorders[steps] = dict(type='ModuleOutputs', source=f'neck.flows.{data_idx}')
        new_maps[name] = new_map
        new_losses[name] = dict(_delete_=True, type='FMKTLoss',
                                metric=distiller.distill_losses[name].to_dict(), loss_weight=1.0)
    if level == 'logit':
        head = dict(source_arch.get('head') or {})
        if head.get('type', '').split('.')[-1] != 'LinearClsHead':
            raise ValueError(f'{config}: the student head is {head.get("type")!r}; the flow head '
                             'replaces a LinearClsHead (its num_classes and in_channels)')
        flow_head = dict(base.flow_cls_head.to_dict(), flow=flow)
        if arch:
            out_arch['head'] = dict(head, **flow_head)
            out_arch['head'].pop('init_cfg', None)
        else:
            out_arch['head'] = flow_head
    else:
        levels = tuple(sorted({idx for _, idx in losses.values()}))
        neck = source_arch.get('neck')
        out_arch['neck'] = dict(type='FlowFPN', neck=neck, flow=flow, flow_levels=levels)
        if not arch:  # replaces the inherited neck (a resolved model is written whole)
            out_arch['neck']['_delete_'] = True
    overrides = dict(
        type=ALGORITHMS[algorithm],
        architecture=out_arch,
        distiller=dict(student_recorders=recorders, distill_losses=new_losses,
                       loss_forward_mappings=new_maps))
    return overrides, skipped


def _base_path(config: str, out: str) -> str:
    if '::' in config:
        return config
    return osp.relpath(osp.abspath(config), osp.dirname(osp.abspath(out)))


def write_fmkt_config(config: str, out: str, num_steps: int = 8,
                      test_num_steps: Optional[int] = None) -> List[str]:
    """Write OUT (inheriting ``config``) and return the diff of the resolved model sections."""
    cfg = load_config(config)
    overrides, skipped = _convert(cfg, config, num_steps, test_num_steps)
    lines = [f'# FM-KT from {osp.basename(config)} (tools/to_fmkt.py): the flow and FMKTLoss on',
             '# the distilled logits or FPN levels; everything else is inherited.']
    lines += [f'# left as it was: {s}' for s in skipped]
    lines += [f'_base_ = [{_base_path(config, out)!r}]', '',
              'model = ' + pprint.pformat(overrides, indent=4, width=96, sort_dicts=False), '']
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    atomic_write(out, '\n'.join(lines))
    before, after = (pprint.pformat(c.model.to_dict(), width=96).splitlines()
                     for c in (cfg, load_config(out)))
    return list(difflib.unified_diff(before, after, config, out, lineterm=''))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Turn a KD config into an FM-KT config')
    parser.add_argument('config', help='distillation config (file or mmrazor::distill/...)')
    parser.add_argument('-o', '--out', required=True, help='the FM-KT config to write (.py)')
    parser.add_argument('--num-steps', type=int, default=8, help='flow steps in training')
    parser.add_argument('--test-num-steps', type=int, default=None,
                        help='flow steps at test (default: --num-steps)')
    args = parser.parse_args(argv)
    if not args.out.endswith('.py'):
        parser.error(f'--out {args.out}: the config must be a .py file')
    for flag in ('num_steps', 'test_num_steps'):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f'--{flag.replace("_", "-")} must be at least 1, got {value}')
    return args


def main(argv: Optional[List[str]] = None) -> List[str]:
    """Write the FM-KT config and print the diff of the model sections; returns the diff."""
    args = parse_args(argv)
    diff = write_fmkt_config(args.config, args.out, num_steps=args.num_steps,
                             test_num_steps=args.test_num_steps)
    print('\n'.join(diff))
    print(f'wrote {args.out}')
    return diff
