"""How many Euler steps a flow unrolls: fixed, drawn per training forward, or overridden.

With several ``num_steps`` choices, the draw of a training forward is a hash of two buffers,
``draw_seed`` (drawn from torch's generator when the flow is built, so it follows mmengine's
seeding) and ``draw_count`` (the number of draws so far). Both are in the ``state_dict``: a run
resumed from a checkpoint continues the same sequence of N, and the draws neither consume nor
depend on the global RNG. The buffers are read once (after a build or a load) and then mirrored
on the host, so a draw never waits for an accelerator. DDP copies rank 0's buffers to every rank
when it wraps the model, before the first draw, so every rank unrolls the same N.
"""
import contextlib
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ...utils.validation import check_int

__all__ = ['MAX_STEPS', 'StepCountPolicy', 'check_steps', 'flow_num_steps']

#: the largest accepted step count (a typo such as 10**9 would otherwise hang in the unroll).
MAX_STEPS = 1024

_MASK64 = (1 << 64) - 1
_DRAW_BUFFERS = ('draw_seed', 'draw_count')


def _mix64(value: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread hash of a 64-bit integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def check_steps(value, field: str, owner: str = 'FlowMatchingConnector') -> int:
    """Check a step count: an int in ``[1, MAX_STEPS]``, returned as a Python ``int``.

    Raises:
        ValueError: naming ``owner`` and ``field``.
    """
    return check_int(value, field, min_value=1, max_value=MAX_STEPS, owner=owner)


class StepCountPolicy(nn.Module):
    """Mixin of a flow module: the number of steps of its next forward.

    The subclass calls :meth:`init_step_policy` in its ``__init__`` (after
    ``nn.Module.__init__``). The draw buffers, when there are several choices, are the module's
    own (``<prefix>draw_seed``, ``<prefix>draw_count``).

    Attributes:
        num_steps_choices: the training step counts, one drawn per training forward.
        test_num_steps: the step count in eval mode.
    """

    num_steps_choices: Tuple[int, ...]
    test_num_steps: int

    def init_step_policy(self,
                         num_steps: Union[int, Sequence[int]],
                         test_num_steps: Optional[int] = None,
                         owner: str = 'FlowMatchingConnector') -> None:
        """Set the choices and register the draw buffers.

        Args:
            num_steps: an int, or a non-empty list/tuple of ints to draw from uniformly.
            test_num_steps: steps in eval mode; default the largest of ``num_steps``.
            owner: the component named in errors.

        Raises:
            ValueError: an empty set or a count outside ``[1, MAX_STEPS]``.
        """
        if isinstance(num_steps, (list, tuple)):
            if len(num_steps) == 0:
                raise ValueError(f'{owner}: num_steps is an empty set; give an int '
                                 'or a non-empty list of ints')
            choices = tuple(check_steps(n, 'num_steps', owner) for n in num_steps)
        else:
            choices = (check_steps(num_steps, 'num_steps', owner), )
        self.num_steps_choices = choices
        self._draw_state: Optional[Tuple[int, int]] = None  # host mirror of (seed, count)
        if len(choices) > 1:
            seed = int(torch.randint(2**62, (), dtype=torch.int64))
            self.register_buffer('draw_seed', torch.tensor(seed, dtype=torch.int64))
            self.register_buffer('draw_count', torch.zeros((), dtype=torch.int64))
            self._draw_state = (seed, 0)
        self.test_num_steps = (max(choices) if test_num_steps is None else
                               check_steps(test_num_steps, 'test_num_steps', owner))
        self._steps_override: Optional[int] = None

    def draw_num_steps(self) -> int:
        """Number of steps for the next forward: the override of :func:`flow_num_steps` if one
        is active, else drawn in training and ``test_num_steps`` in eval."""
        if self._steps_override is not None:
            return self._steps_override
        if not self.training:
            return self.test_num_steps
        if len(self.num_steps_choices) == 1:
            return self.num_steps_choices[0]
        if self._draw_state is None:  # after a load: read the buffers once
            self._draw_state = (int(self.draw_seed), int(self.draw_count))
        seed, count = self._draw_state
        self._draw_state = (seed, count + 1)
        self.draw_count.fill_(count + 1)  # an asynchronous write, never a read
        mixed = _mix64(_mix64(seed & _MASK64) ^ count)
        return self.num_steps_choices[mixed % len(self.num_steps_choices)]

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        # Checkpoints written before the draw buffers existed, or with a fixed N, still load:
        # the sequence of N then starts from this module's own seed.
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)
        draw_keys = {prefix + name for name in _DRAW_BUFFERS}
        missing_keys[:] = [k for k in missing_keys if k not in draw_keys]
        unexpected_keys[:] = [k for k in unexpected_keys if k not in draw_keys]
        if len(self.num_steps_choices) > 1:
            self._draw_state = None  # the buffers may have changed: re-read at the next draw


@contextlib.contextmanager
def flow_num_steps(module: nn.Module, num_steps: Optional[int]) -> Iterator[None]:
    """Run every flow inside ``module`` with ``num_steps`` steps for the duration of a block.

    For evaluating one trained model at several N (``with flow_num_steps(model, 4): ...``); the
    configured step policy is back in force after the block. ``None`` changes nothing.

    Raises:
        ValueError: ``num_steps`` is not an int in ``[1, MAX_STEPS]``, or ``module`` has no
            flow.
    """
    if num_steps is None:
        yield
        return
    n = check_steps(num_steps, 'num_steps')
    flows: List[StepCountPolicy] = [m for m in module.modules() if isinstance(m, StepCountPolicy)]
    if not flows:
        raise ValueError(f'flow_num_steps: {type(module).__name__} has no FM-KT flow '
                         f'(FlowMatchingConnector)')
    saved = [f._steps_override for f in flows]
    for f in flows:
        f._steps_override = n
    try:
        yield
    finally:
        for f, old in zip(flows, saved):
            f._steps_override = old
