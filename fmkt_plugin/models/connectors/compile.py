"""``torch.compile`` of a flow: the ``compile`` field, compiled wrappers off the module tree.

The N steps of a flow are serial, so their small ops add up; compiling fuses them into fewer
kernels. ``scope='encoder'`` compiles the meta-encoder, evaluated once per step; ``scope='flow'``
compiles the whole unrolled flow (time embeddings, the N steps and the estimates: one graph per N
and shape; with ``mode='reduce-overhead'`` forward and backward are each one CUDA graph launch).
Compiled kernels round differently from eager ones (results agree to about 1e-6, not bit for
bit), and compiling costs time at the first steps of each N and shape, hence off by default.

The wrappers live in the module's ``__dict__`` as plain attributes, not submodules, so
``state_dict`` keys, checkpoints and exports do not see them; copies and pickles drop them and
compile their own at their first forward.
"""
from typing import Callable, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

__all__ = ['COMPILE_KEYS', 'COMPILE_SCOPES', 'CompiledWrappers', 'EncoderThrough', 'compile_args']

#: the keys a ``compile`` dict may set: ``scope`` and ``torch.compile`` arguments.
COMPILE_KEYS = ('scope', 'backend', 'mode', 'fullgraph', 'dynamic', 'options')
#: what ``compile`` compiles: the meta-encoder (one graph evaluated per step) or the whole flow.
COMPILE_SCOPES = ('encoder', 'flow')


def compile_args(value: Union[bool, dict],
                 owner: str = 'FlowMatchingConnector') -> Tuple[Optional[str], Optional[dict]]:
    """The scope and the ``torch.compile`` keyword arguments of a ``compile`` field.

    ``True`` is ``scope='encoder'`` with ``dynamic=False`` (static shapes: torch's automatic
    dynamic shapes failed in inductor on a 2-D logit flow beside a 4-D feature flow); a dict
    sets ``scope`` and any of :data:`COMPILE_KEYS` over that default.

    Args:
        value: the ``compile`` field, a bool or a dict.
        owner: the component named in errors.

    Returns:
        ``(scope, kwargs)``, or ``(None, None)`` when compiling is off.

    Raises:
        TypeError: neither a bool nor a dict.
        ValueError: an unknown key or scope.
    """
    if isinstance(value, bool):
        return ('encoder', dict(dynamic=False)) if value else (None, None)
    if not isinstance(value, dict):
        raise TypeError(f'{owner}: compile must be a bool or a dict of '
                        f'torch.compile arguments, got {type(value).__name__} {value!r}')
    unknown = sorted(set(value) - set(COMPILE_KEYS))
    if unknown:
        raise ValueError(f'{owner}: compile has unknown key(s) {unknown}; '
                         f'keys allowed here: {list(COMPILE_KEYS)}')
    args = dict(dict(dynamic=False), **value)
    scope = args.pop('scope', 'encoder')
    if scope not in COMPILE_SCOPES:
        raise ValueError(f'{owner}: compile.scope must be one of '
                         f'{COMPILE_SCOPES}, got {scope!r}')
    return scope, args


class EncoderThrough:
    """A meta-encoder as the solver sees it, evaluated through ``call`` (its compiled wrapper).

    Attribute access on a ``torch.compile`` wrapper reaches the original module, so the
    wrapper's own ``on_time_grid`` would evaluate the eager encoder; this routes the batched
    time embeddings through ``call`` as well.
    """

    def __init__(self, encoder: nn.Module, call: Callable[[Tensor, Tensor], Tensor]) -> None:
        self.encoder, self.call = encoder, call

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        return self.call(x, t)

    def on_time_grid(self, times: Sequence[float], like: Tensor):
        """The encoder bound to a time grid, its embeddings computed through ``call``."""
        return self.encoder.on_time_grid(times, like, call=self.call)


class CompiledWrappers(nn.Module):
    """Mixin of a module that compiles parts of itself lazily.

    The subclass sets ``compile_args`` (the ``torch.compile`` keyword arguments) before its
    first call of :meth:`compiled`.
    """

    #: the ``__dict__`` keys that may hold a wrapper (dropped from copies and pickles).
    COMPILED_KEYS = ('_compiled_encoder', '_compiled_flow')

    compile_args: Optional[dict]

    def compiled(self, key: str, target: Callable) -> Callable:
        """``torch.compile(target)``, built once and kept with its target in ``__dict__[key]``.

        Rebuilt when the target changed (e.g. a meta-encoder replaced after the first call).
        """
        built_for, wrapper = self.__dict__.get(key, (None, None))
        if wrapper is None or built_for != target:
            wrapper = torch.compile(target, **self.compile_args)
            self.__dict__[key] = (target, wrapper)
        return wrapper

    def __getstate__(self) -> dict:
        # deepcopy (EMA copies, DDP) and pickling drop the compiled wrappers; the copy compiles
        # its own at its first forward
        state = dict(super().__getstate__())
        for key in self.COMPILED_KEYS:
            state.pop(key, None)
        return state
