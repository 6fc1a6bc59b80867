"""One refusal for every checkpoint that the restricted unpickler turns down.

mmengine 0.10.x reports a refused local checkpoint with torch's bare error.
Upstream: on torch >= 2.6 mmengine's ``load_from_local`` (behind ``teacher_ckpt``, ``load_from``,
``--resume`` and ``work_dir/last_checkpoint``, ``init_cfg=dict(type='Pretrained')``, the
converter) calls ``torch.load`` with the default ``weights_only=True``. A file holding anything
but tensors and the allow-listed metadata (Fix 2) raises torch's ``UnpicklingError``, which
does not name the file and advises re-running with ``weights_only=False``, i.e. switching the
protection off. The local loader is wrapped so that a refusal is a :class:`CheckpointRefused`
(an ``UnpicklingError``) whose message is :func:`refusal_message`: the file, what was refused,
and why. Remote loads (Fix 5) and the project's own loaders use the same message.
"""
import os.path as osp
import pickle
import re

__all__ = ['CheckpointRefused', 'refusal_message', 'as_refusal', 'refused_object']

# Lines of torch's wrapper around the unpickler's own message: advice to turn the protection
# off (or to allow-list more), and a link. None of it is repeated.
_TORCH_WRAPPER = ('Weights only load failed', 'weights_only` set to `False`',
                  'Alternatively, to load with', 'Please file an issue',
                  'Check the documentation of torch.load')


class CheckpointRefused(pickle.UnpicklingError):
    """A checkpoint holding objects that the restricted unpickler does not allow.

    Its message is :func:`refusal_message`. It is an ``UnpicklingError``, so code catching
    torch's refusal still catches it.
    """


def refused_object(err: BaseException) -> str:
    """What the restricted unpickler refused, from torch's error, without torch's advice.

    Args:
        err: the ``UnpicklingError`` raised by ``torch.load(weights_only=True)``.

    Returns:
        e.g. ``'the global posix.system, whose module posix is blocked'``, or the unpickler's
        own sentence when it names no global.
    """
    text = str(err)
    blocked = re.search(r'GLOBAL (\S+) whose module (\S+) is blocked', text)
    if blocked:
        return f'the global {blocked.group(1)}, whose module {blocked.group(2)} is blocked'
    unknown = re.search(r'GLOBAL (\S+) was not an allowed global', text)
    if unknown:
        return f'the global {unknown.group(1)}, which is not on the allow-list'
    lines = [line.strip() for line in text.splitlines()]
    kept = [line for line in lines
            if line and not any(marker in line for marker in _TORCH_WRAPPER)]
    sentence = ' '.join(kept).split('WeightsUnpickler error:')[-1].strip()
    sentence = re.split(r'\s*Please use `torch\.serialization', sentence)[0].strip()
    return sentence or 'an object it does not allow'


def refusal_message(source: str, err: BaseException) -> str:
    """The refusal of a checkpoint, the same for every loader.

    Args:
        source: the file (or URL, with its cached copy) as the user gave it.
        err: torch's ``UnpicklingError``.

    Returns:
        ``'cannot load <source>: refused by the restricted unpickler (<what>); ...'``.
    """
    return (f'cannot load {source}: refused by the restricted unpickler ({refused_object(err)}). '
            'A checkpoint may hold only tensors, plain containers, numbers and the metadata '
            "mmengine writes; unpickling anything else could run code, so nothing was loaded")


def as_refusal(source: str, err: BaseException) -> CheckpointRefused:
    """``err`` as a :class:`CheckpointRefused` naming ``source`` (``err`` itself if it is one).

    Args:
        source: the file or URL.
        err: an ``UnpicklingError`` from a ``weights_only=True`` load.
    """
    if isinstance(err, CheckpointRefused):
        return err
    return CheckpointRefused(refusal_message(source, err))


def _wrap_local_loader(upstream):
    """mmengine's ``load_from_local`` raising :class:`CheckpointRefused` on a refusal."""

    def load_from_local(filename: str, map_location=None):
        try:
            return upstream(filename, map_location)
        except pickle.UnpicklingError as err:
            # from None: torch's text (advice to load with weights_only=False) is not shown
            raise as_refusal(osp.expanduser(str(filename)), err) from None

    load_from_local.__fmkt_fix__ = True
    load_from_local.__doc__ = upstream.__doc__
    return load_from_local


def fix_mmengine_local_checkpoint_refusal() -> bool:
    """Wrap mmengine's local checkpoint loader (idempotent). Returns whether it was applied."""
    import mmengine.runner.checkpoint as mm_checkpoint

    upstream = mm_checkpoint.CheckpointLoader._schemes.get('')
    if upstream is None or getattr(upstream, '__fmkt_fix__', False):
        return False
    wrapped = _wrap_local_loader(upstream)
    mm_checkpoint.CheckpointLoader.register_scheme('', wrapped, force=True)
    # load_from_openmmlab calls the module's function directly, not through the registry
    mm_checkpoint.load_from_local = wrapped
    return True
