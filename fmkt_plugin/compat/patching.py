"""The one way a compat fix replaces an upstream function: once, and marked as ours."""
from typing import Any, Callable

__all__ = ['is_ours', 'replace_once']


def is_ours(obj: Any) -> bool:
    """Whether ``obj`` is a replacement installed by a compat fix."""
    return getattr(obj, '__fmkt_fix__', False) is True


def replace_once(owners: tuple, name: str, replacement: Callable) -> bool:
    """Set ``name`` to ``replacement`` on every owner (module or class) that has it, unless the
    first owner already holds a replacement of ours.

    Returns:
        Whether the replacement was installed now (False when a fix had done it already).
    """
    if is_ours(getattr(owners[0], name, None)):
        return False
    replacement.__fmkt_fix__ = True
    for owner in owners:
        if hasattr(owner, name):
            setattr(owner, name, replacement)
    return True
