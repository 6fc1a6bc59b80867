"""Registries used by fmkt_plugin.

Everything is registered into MMRazor's ``MODELS`` registry. Modules that live *inside* a student
or teacher architecture (heads, necks) are additionally registered into the registry of the
downstream codebase (mmpretrain or mmdet), so that configs whose model dicts carry
``_scope_='mmpretrain'`` / ``_scope_='mmdet'`` can name them without a scope prefix.
"""
from typing import Callable, Sequence, Type

from mmrazor.registry import MODELS

__all__ = ['MODELS', 'register_model']


def _downstream_registry(scope: str):
    if scope == 'mmpretrain':
        from mmpretrain.registry import MODELS as registry
    elif scope == 'mmdet':
        from mmdet.registry import MODELS as registry
    else:
        raise ValueError(f'register_model: unknown scope {scope!r} (expected mmpretrain or mmdet)')
    return registry


def register_model(also: Sequence[str] = ()) -> Callable[[Type], Type]:
    """Class decorator: register into MMRazor's MODELS and, optionally, other scopes.

    Args:
        also: extra scopes (``'mmpretrain'``, ``'mmdet'``) whose MODELS registry should also
            know the class.
    """

    def wrap(cls: Type) -> Type:
        MODELS.register_module(module=cls)
        for scope in also:
            _downstream_registry(scope).register_module(module=cls)
        return cls

    return wrap
