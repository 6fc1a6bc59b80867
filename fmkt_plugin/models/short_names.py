"""The one table of short component names: ``'rectified'``, ``'vp'``, ``'mlp'``, ``'mse'``, ...

A config field that takes a sub-component (``flow.schedule``, ``flow.meta_encoder``, a loss's
``metric``) accepts a registered class name or a short name of that field's kind. Every short
name is entered here, by the class that owns it (``short_name`` on a schedule or meta-encoder
subclass, :func:`add_short_name` for others), and :func:`~fmkt_plugin.models.builder.resolve_type`
reads it; there is no other table.
"""
from typing import Dict, Mapping

__all__ = ['SHORT_NAMES', 'add_short_name', 'short_names']

#: kind (``'schedule'``, ``'meta_encoder'``, ``'metric'``) -> short name -> class
SHORT_NAMES: Dict[str, Dict[str, type]] = {}


def add_short_name(kind: str, name: str, cls: type) -> None:
    """Enter ``name`` (case-insensitive) for ``cls`` under ``kind``.

    Raises:
        ValueError: when another class already owns the name (a class redefined under the same
            module and qualified name, as on a reload, replaces its earlier self).
    """
    table = SHORT_NAMES.setdefault(kind, {})
    key = name.lower()
    owner = table.get(key)
    if owner is not None and owner is not cls and (
            owner.__module__, owner.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f'short {kind} name {name!r} of {cls.__name__} is taken by '
                         f'{owner.__name__}')
    table[key] = cls


def short_names(kind: str) -> Mapping[str, type]:
    """The short names of ``kind`` (empty for a kind without any)."""
    return SHORT_NAMES.get(kind, {})
