"""Build a schedule from a config dict, a short name or an instance."""
from typing import Any, Optional

from ..builder import build_component
from .base import InterpolantSchedule

__all__ = ['build_schedule']


def build_schedule(cfg: Optional[Any] = None, field: str = 'schedule') -> InterpolantSchedule:
    """Build an :class:`InterpolantSchedule`.

    Args:
        cfg: ``None`` (rectified flow), a short name (``'rectified'``, ``'vp'``, ``'ve'``), a
            registered class name, ``dict(type=..., **kwargs)`` or a schedule instance.
        field: config field name used in error messages.

    Raises:
        ValueError: unknown schedule type or invalid arguments, naming ``field``.
    """
    if cfg is None:
        cfg = 'rectified'
    return build_component(cfg, field, kind='schedule', base=InterpolantSchedule)
