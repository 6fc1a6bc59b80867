"""Settings of a method: ``{path: value}`` applied to ``HPARAMS`` (a path names an entry
with dots, ``'kd.tau'``; ``'+'`` joins paths that take the same value). Below both the method
records (which apply their fixed and tuned settings) and the tune mode (which declares the
grids), so neither imports the other for it.
"""
import copy
import inspect
from typing import Optional

from .configs import HPARAMS

__all__ = ['flow_option_supported', 'apply_settings']


def flow_option_supported(option: str) -> bool:
    """Whether the installed ``FlowMatchingConnector`` takes ``option`` in its config."""
    from fmkt_plugin.models.connectors import FlowMatchingConnector
    return option in inspect.signature(FlowMatchingConnector.__init__).parameters


def _new_flow_option(path: str) -> Optional[str]:
    """The option named by ``flow.<option>`` when ``HPARAMS['flow']`` does not set it."""
    parts = path.split('.')
    if len(parts) == 2 and parts[0] == 'flow' and parts[1] not in HPARAMS['flow']:
        return parts[1]
    return None


def apply_settings(hparams: dict, setting: dict) -> dict:
    """A copy of ``hparams`` with ``setting`` applied.

    Raises:
        ValueError: a path that names no entry of ``hparams`` (new keys are allowed only in
            the flow config, for options of the installed connector).
    """
    out = copy.deepcopy(hparams)
    for key, value in setting.items():
        for path in key.split('+'):
            parts = path.split('.')
            node = out
            for part in parts[:-1]:
                if not isinstance(node.get(part) if isinstance(node, dict) else None, dict):
                    raise ValueError(f'tuning setting {key!r}: {path!r} names no entry of '
                                     'HPARAMS')
                node = node[part]
            leaf = parts[-1]
            option = _new_flow_option(path)
            if leaf not in node and not (option and flow_option_supported(option)):
                raise ValueError(f'tuning setting {key!r}: {path!r} names no entry of '
                                 'HPARAMS (nor an option of the installed flow)')
            node[leaf] = value
    return out
