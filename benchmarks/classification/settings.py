"""Settings of a method: ``{path: value}`` applied to ``HPARAMS`` (a path names an entry
with dots, ``'kd.tau'``; ``'+'`` joins paths that take the same value). Below both the method
records (which apply their fixed and tuned settings) and the tune mode (which declares the
grids), so neither imports the other for it.
"""
import copy
import inspect

__all__ = ['apply_settings']


def _connector_option(parts: list) -> bool:
    """Whether ``parts`` names an option of the flow config (``flow.<option>``) that the
    plugin's ``FlowMatchingConnector`` takes (``HPARAMS['flow']`` leaves most of them unset)."""
    from fmkt_plugin.models.connectors import FlowMatchingConnector
    return len(parts) == 2 and parts[0] == 'flow' and \
        parts[1] in inspect.signature(FlowMatchingConnector.__init__).parameters


def apply_settings(hparams: dict, setting: dict) -> dict:
    """A copy of ``hparams`` with ``setting`` applied.

    Raises:
        ValueError: a path that names no entry of ``hparams`` (new keys are allowed only in
            the flow config, for options of the connector).
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
            if parts[-1] not in node and not _connector_option(parts):
                raise ValueError(f'tuning setting {key!r}: {path!r} names no entry of '
                                 'HPARAMS (nor an option of the flow)')
            node[parts[-1]] = value
    return out
