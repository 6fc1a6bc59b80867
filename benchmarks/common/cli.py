"""Command-line checks shared by the benchmarks' entry points."""
import argparse

from fmkt_plugin.utils.validation import check_int

__all__ = ['check_int_arg']


def check_int_arg(parser: argparse.ArgumentParser, value: int, field: str, why: str = '',
                  **bounds) -> None:
    """``parser.error`` (exit 2, before any work) when ``value`` of flag ``field`` fails
    :func:`~fmkt_plugin.utils.validation.check_int` with ``bounds``; ``why`` is appended."""
    try:
        check_int(value, field, **bounds)
    except ValueError as err:
        parser.error(f'{err}{why}')
