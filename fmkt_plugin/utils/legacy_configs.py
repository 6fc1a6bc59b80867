"""Read an MMRazor 1.0 config (written for mmcls 1.0.0rc and mmdet 3.0rc) with today's names.

mmcls 1.0 became mmpretrain 1.0 (April 2023). The config tree and most class names stayed; the
scope and a few names changed. MMRazor 1.0.0's configs (and configs users wrote for it) use
``mmcls.`` type scopes, ``_scope_='mmcls'``, ``default_scope='mmcls'`` and ``cfg_path='mmcls::'``
paths; compat Fix 15 maps the ``mmcls::`` bases and paths and the config files that were renamed
since (:data:`CONFIG_RENAMED`), and :func:`translate_mmcls_names` rewrites the rest of a loaded
config in place.
"""
from typing import Any, List, Optional

__all__ = ['MMCLS_RENAMED', 'MMCLS_REMOVED', 'CONFIG_RENAMED', 'renamed_config',
           'translate_mmcls_names']

#: ``package::path`` of a config that MMRazor 1.0.0 names -> where that config is today
CONFIG_RENAMED = {
    'mmpretrain::deit/deit-base_pt-16xb64_in1k.py': 'mmpretrain::deit/deit-base_16xb64_in1k.py',
    'mmdet::faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py':
    'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
    'mmdet::faster_rcnn/faster_rcnn_r101_fpn_1x_coco.py':
    'mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py',
    'mmdet::faster_rcnn/faster_rcnn_r101_fpn_2x_coco.py':
    'mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
}


def renamed_config(cfg_path: str) -> str:
    """``mmcls::x`` as ``mmpretrain::x``, and a renamed config file under its name of today."""
    if cfg_path.startswith('mmcls::'):
        cfg_path = 'mmpretrain::' + cfg_path[len('mmcls::'):]
    return CONFIG_RENAMED.get(cfg_path, cfg_path)

#: mmcls 1.0.0rc class name -> mmpretrain 1.2 class name, where it changed
MMCLS_RENAMED = {
    'PackClsInputs': 'PackInputs',
    'ClsDataSample': 'DataSample',
    'ClsVisualizer': 'UniversalVisualizer',
}

#: classes that MMRazor 1.0.0 registers on top of mmcls classes (placeholders without mmcls),
#: each with the mmpretrain class that does the same
MMRAZOR_ON_MMCLS = {
    'DeiTClsHead': 'DeiTClsHead',
}

#: mmcls 1.0.0rc classes with no mmpretrain 1.2 equivalent -> why
MMCLS_REMOVED = {
    'ImageClassifierWithCAM': 'mmpretrain 1.x has no CAM classifier; use ImageClassifier',
}

_MMCLS = 'mmcls'
_MMPRETRAIN = 'mmpretrain'


def _type_name(node: dict, in_mmcls: bool, key: str, changes: List[str]) -> None:
    """Rename ``node['type']``; an ``mmcls.X`` type becomes ``X`` built in the mmpretrain scope
    (``_scope_``), so that what it builds inside (an ``ImageClassifier``'s default
    ``ClsDataPreprocessor``) is found there too."""
    value = node['type']
    name = value.split('.')[-1]
    if value.startswith('mmrazor.') and name in MMRAZOR_ON_MMCLS:
        node['type'] = MMRAZOR_ON_MMCLS[name]
        node['_scope_'] = _MMPRETRAIN
        changes.append(f'{key}: {value} -> {node["type"]} (scope mmpretrain; mmrazor builds '
                       'it on mmcls)')
        return
    scoped = value.startswith(_MMCLS + '.')
    if not (scoped or in_mmcls):
        return
    name = value[len(_MMCLS) + 1:] if scoped else value
    if name in MMCLS_REMOVED:
        raise ValueError(f'{key}: {value!r} is an mmcls class with no mmpretrain 1.2 equivalent '
                         f'({MMCLS_REMOVED[name]})')
    node['type'] = MMCLS_RENAMED.get(name, name)
    if scoped and '_scope_' not in node:
        node['_scope_'] = _MMPRETRAIN
    if node['type'] != value:
        changes.append(f'{key}: {value} -> {node["type"]}'
                       + (' (scope mmpretrain)' if scoped else ''))


def _walk(node: Any, in_mmcls: bool, key: str, changes: List[str]) -> None:
    if isinstance(node, dict):
        scope = node.get('_scope_')
        if scope == _MMCLS:
            node['_scope_'] = _MMPRETRAIN
            changes.append(f'{key}._scope_: mmcls -> mmpretrain')
        if scope is not None:
            in_mmcls = scope == _MMCLS
        if isinstance(node.get('type'), str):
            _type_name(node, in_mmcls, f'{key}.type' if key else 'type', changes)
        for k in list(node):
            value, sub = node[k], f'{key}.{k}' if key else str(k)
            if k == 'cfg_path' and isinstance(value, str):
                node[k] = renamed_config(value)
                if node[k] != value:
                    changes.append(f'{sub}: {value} -> {node[k]}')
            elif k != 'type':
                _walk(value, in_mmcls, sub, changes)
    elif isinstance(node, (list, tuple)):
        for i, item in enumerate(node):
            _walk(item, in_mmcls, f'{key}[{i}]', changes)


def translate_mmcls_names(cfg, default_scope: Optional[str] = None) -> List[str]:
    """Rewrite the mmcls names of a loaded config (an mmengine ``Config``) in place.

    Args:
        cfg: the config.
        default_scope: the config's default scope (read from ``cfg`` when None).

    Returns:
        The changes, one ``'<key>: <old> -> <new>'`` line each (empty for other configs).

    Raises:
        ValueError: naming the key and the class, for an mmcls class with no equivalent.
    """
    changes: List[str] = []
    default_scope = default_scope or cfg.get('default_scope')
    if default_scope == _MMCLS:
        cfg['default_scope'] = _MMPRETRAIN
        changes.append('default_scope: mmcls -> mmpretrain')
    for k in list(cfg.keys()):
        value = cfg[k]
        if isinstance(value, (dict, list, tuple)):
            _walk(value, default_scope == _MMCLS, k, changes)
            cfg[k] = value
    return changes
