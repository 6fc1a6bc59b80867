"""Config resolution shared by the FM-KT components.

Sub-components (schedules, meta-encoders, metric losses, the flow of a head) are resolved through
MMRazor's ``MODELS`` with :meth:`Registry.get` and instantiated directly, instead of
``MODELS.build``. ``build`` switches to the *current default scope* (``mmpretrain`` while a
classifier is being built), whose registry does not know our classes and may hold a different
class under the same name (mmrazor and mmpretrain both register ``CrossEntropyLoss``).
"""
import copy
import inspect
from typing import Any, Mapping, Optional, Union

from ..registry import MODELS
from .short_names import short_names

__all__ = ['resolve_type', 'build_component']


def resolve_type(type_name: Union[str, type],
                 field: str,
                 kind: Optional[str] = None,
                 base: Optional[type] = None) -> type:
    """Look a class up by short name or registry name.

    Args:
        type_name: a class, a short name of ``kind`` (:mod:`.short_names`) or a name
            registered in MMRazor's ``MODELS`` (``'scope.Name'`` is accepted).
        field: config field name used in error messages, e.g. ``'meta_encoder.type'``.
        kind: the kind of short names the field takes (``'schedule'``, ``'meta_encoder'``,
            ``'metric'``); checked before the registry.
        base: if given, the resolved class must be a subclass of it.

    Returns:
        The class.

    Raises:
        ValueError: if the name is unknown or the class has the wrong base.
    """
    aliases = short_names(kind) if kind else {}
    if isinstance(type_name, type):
        cls = type_name
    elif isinstance(type_name, str):
        cls = aliases.get(type_name.lower()) or aliases.get(type_name)
        if cls is None:
            try:
                cls = MODELS.get(type_name)
            except Exception:  # unknown scope prefixes raise inside mmengine
                cls = None
        if cls is None:
            known = sorted(aliases)
            raise ValueError(f'{field}: unknown type {type_name!r}'
                             + (f' (short names: {known})' if known else ''))
    else:
        raise ValueError(f'{field}: expected a type name (str) or class, got {type_name!r}')
    if base is not None and not (isinstance(cls, type) and issubclass(cls, base)):
        raise ValueError(f'{field}: {type_name!r} resolves to {cls!r}, which is not a '
                         f'{base.__name__}')
    return cls


def build_component(cfg: Any,
                    field: str,
                    kind: Optional[str] = None,
                    base: Optional[type] = None,
                    **defaults: Any) -> Any:
    """Build an object from an instance, a short name or a ``dict(type=..., **kwargs)``.

    Args:
        cfg: an instance of ``base`` (returned as is), a type name, or a config dict.
        field: config field name used in error messages.
        kind: the kind of short names the field takes (see :func:`resolve_type`).
        base: required base class.
        **defaults: keyword arguments used when the config does not set them.

    Returns:
        The built object.

    Raises:
        ValueError: unknown type, wrong base class, or arguments the class does not accept.
    """
    if base is not None and isinstance(cfg, base):
        return cfg
    if isinstance(cfg, (str, type)):
        cfg = dict(type=cfg)
    if not isinstance(cfg, Mapping):
        raise ValueError(f'{field}: expected a config dict or a type name, got {cfg!r}')
    cfg = dict(copy.deepcopy(cfg))
    cfg.pop('_scope_', None)
    if 'type' not in cfg:
        raise ValueError(f'{field}: config has no "type" key: {cfg!r}')
    cls = resolve_type(cfg.pop('type'), f'{field}.type', kind, base)
    for key, value in defaults.items():
        cfg.setdefault(key, value)
    try:
        inspect.signature(cls).bind(**cfg)
    except TypeError as err:  # report bad keys as a config error, before running __init__
        raise ValueError(f'{field}: invalid arguments for {cls.__name__}: {err}') from None
    return cls(**cfg)
