"""Checks of config values, shared by every component: one wording for every bad value.

Each check returns the value as a plain Python ``int`` / ``float`` (so numpy scalars such as
``np.int64(8)`` from a computed config work) and raises ``ValueError`` with a message that
names the field and shows the value, e.g. ``FlowMatchingConnector: num_steps must be an int in
[1, 1024], got 0``. ``bool`` is refused wherever a number is expected (``True`` is an ``int``
to Python, but never a sensible step count or weight), and so are strings such as ``'0.1'``:
a config that quotes a number is a mistake we report rather than guess at.
"""
import math
from numbers import Integral, Real
from typing import Optional

__all__ = ['check_int', 'check_number', 'check_loss_settings']


def _prefix(owner: Optional[str]) -> str:
    return f'{owner}: ' if owner else ''


def _int_range(min_value: Optional[int], max_value: Optional[int]) -> str:
    if min_value is not None and max_value is not None:
        return f' in [{min_value}, {max_value}]'
    if min_value is not None:
        return f' >= {min_value}'
    if max_value is not None:
        return f' <= {max_value}'
    return ''


def check_int(value,
              field: str,
              *,
              min_value: Optional[int] = 1,
              max_value: Optional[int] = None,
              owner: Optional[str] = None) -> int:
    """Check an integer config value and return it as a Python ``int``.

    Args:
        value: the value to check; any ``numbers.Integral`` except ``bool`` (numpy integers
            included).
        field: the config field, named in the error (e.g. ``'num_steps'``, ``'flow.in_channels'``).
        min_value: smallest allowed value (inclusive); ``None`` for no lower bound. Defaults
            to 1, the common case of a count or a size.
        max_value: largest allowed value (inclusive); ``None`` for no upper bound.
        owner: the component, prefixed to the error (e.g. ``'FlowMatchingConnector'``).

    Returns:
        ``int(value)``.

    Raises:
        ValueError: for a non-integer (``bool``, ``float``, ``str``, ``None``, ...) or a value
            out of range, naming ``field`` and showing ``value``.
    """
    expected = f'an int{_int_range(min_value, max_value)}'
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise ValueError(f'{_prefix(owner)}{field} must be {expected}, got {value!r} '
                         f'({type(value).__name__})')
    number = int(value)
    if (min_value is not None and number < min_value) or (max_value is not None
                                                          and number > max_value):
        raise ValueError(f'{_prefix(owner)}{field} must be {expected}, got {value!r}')
    return number


def _number_kind(finite: bool, positive: bool, nonnegative: bool, min_value: Optional[float],
                 max_value: Optional[float]) -> str:
    words = ['a']
    if positive:
        words.append('positive')
    elif nonnegative:
        words.append('non-negative')
    if finite:
        words.append('finite')
    words.append('number')
    text = ' '.join(words)
    if min_value is not None and max_value is not None:
        text += f' in [{min_value}, {max_value}]'
    elif min_value is not None:
        text += f' >= {min_value}'
    elif max_value is not None:
        text += f' <= {max_value}'
    return text


def check_number(value,
                 field: str,
                 *,
                 finite: bool = True,
                 positive: bool = False,
                 nonnegative: bool = False,
                 min_value: Optional[float] = None,
                 max_value: Optional[float] = None,
                 owner: Optional[str] = None) -> float:
    """Check a real-valued config value (a weight, a temperature, a ratio) and return a float.

    Args:
        value: the value to check; any ``numbers.Real`` except ``bool`` (numpy floats and
            integers included).
        field: the config field, named in the error.
        finite: refuse NaN and +-inf (default). With ``False`` they pass the sign and range
            checks as IEEE comparisons decide (NaN never passes a bound).
        positive: require ``value > 0``.
        nonnegative: require ``value >= 0``.
        min_value: smallest allowed value (inclusive).
        max_value: largest allowed value (inclusive).
        owner: the component, prefixed to the error.

    Returns:
        ``float(value)``.

    Raises:
        ValueError: for a non-number (``bool``, ``str`` such as ``'0.1'``, ``None``, a tensor,
            ...), a NaN/inf when ``finite``, or a value outside the bounds, naming ``field``
            and showing ``value``.
    """
    expected = _number_kind(finite, positive, nonnegative, min_value, max_value)
    if not isinstance(value, Real) or isinstance(value, bool):
        raise ValueError(f'{_prefix(owner)}{field} must be {expected}, got {value!r} '
                         f'({type(value).__name__})')
    try:
        number = float(value)
    except OverflowError:  # an int beyond the float range
        number = math.inf if value > 0 else -math.inf
    bad = ((finite and not math.isfinite(number))
           or (positive and not number > 0)
           or (nonnegative and not number >= 0)
           or (min_value is not None and not number >= min_value)
           or (max_value is not None and not number <= max_value))
    if bad:
        raise ValueError(f'{_prefix(owner)}{field} must be {expected}, got {value!r}')
    return number


# Attribute names under which OpenMMLab / MMRazor losses keep their scalar settings.
_WEIGHT_ATTRS = ('loss_weight', 'inter_loss_weight', 'intra_loss_weight', 'alpha', 'beta',
                 'gamma')
_TEMPERATURE_ATTRS = ('tau', 'T', 'temperature')


def check_loss_settings(loss, field: str, *, owner: Optional[str] = None) -> None:
    """Check the scalar settings of a built loss module: weights >= 0, temperatures > 0.

    Losses built from a config (mmpretrain's ``CrossEntropyLoss``, MMRazor's ``KLDivergence``,
    ``DISTLoss``, ``DKDLoss``, ...) accept any number; a negative weight or temperature trains
    away from the target, and NaN/inf poisons every step. The attributes checked, when present
    and numeric, are ``loss_weight``, ``inter_loss_weight``, ``intra_loss_weight``, ``alpha``,
    ``beta``, ``gamma`` (finite, >= 0) and ``tau``, ``T``, ``temperature`` (finite, > 0).

    Args:
        loss: the built loss module.
        field: the config field of the loss, prefixed to the attribute name in the error
            (e.g. ``'metric'`` gives ``metric.tau``).
        owner: the component, prefixed to the error.

    Raises:
        ValueError: naming ``<field>.<attribute>`` and the value.
    """
    for names, kind in ((_WEIGHT_ATTRS, dict(nonnegative=True)),
                        (_TEMPERATURE_ATTRS, dict(positive=True))):
        for name in names:
            value = getattr(loss, name, None)
            if isinstance(value, Real) and not isinstance(value, bool):
                check_number(value, f'{field}.{name}', owner=owner, **kind)
