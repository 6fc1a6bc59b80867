"""One refusal for every checkpoint that the restricted unpickler turns down.

torch's ``UnpicklingError`` for a ``weights_only=True`` load does not name the file and advises
re-running with ``weights_only=False``, i.e. switching the protection off. Every loader of the
plugin, and mmengine's local and remote loaders through the compat fixes (2b and 5), raise a
:class:`CheckpointRefused` instead (an ``UnpicklingError``), whose message is
:func:`refusal_message`: the file, what was refused, and why.
"""
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
