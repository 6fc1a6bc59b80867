"""Reseed the random generators at every training epoch, so that resuming is exact."""
import logging
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.registry import HOOKS

from ..utils.validation import check_int

__all__ = ['EpochSeedHook', 'epoch_seed']


def epoch_seed(seed: int, epoch: int, rank: Optional[int] = None) -> int:
    """A 32-bit seed derived from ``(seed, epoch[, rank])`` with numpy's ``SeedSequence``.

    Different pairs give unrelated seeds (``(0, 1)`` and ``(1, 0)`` do not collide as they
    would with ``seed + epoch``).
    """
    entropy = [int(seed) & 0xFFFFFFFF, int(epoch)]
    if rank is not None:
        entropy.append(int(rank))
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Seed python's, numpy's and torch's global generators from ``(seed, epoch)``.

    mmengine seeds the generators once, when the runner is built, and does not store their
    state in checkpoints. A run resumed after epoch ``k`` therefore starts epoch ``k + 1`` with
    generators in a different state than the uninterrupted run had there (that run also drew
    for weight initialisation, every earlier epoch and validation). Everything that draws from
    the global generators during an epoch then differs: augmentations run in the main process
    (``num_workers=0``), the seed handed to data-loader workers, dropout, batch augmentations.

    This hook reseeds the three generators before every training epoch from the runner's seed
    and the epoch index, so an epoch's randomness does not depend on what ran before it, and
    training resumed from an epoch checkpoint is bit-identical to an uninterrupted run (with
    deterministic kernels, ``randomness=dict(deterministic=True)``).

    Like mmengine, every rank gets the same seed unless ``randomness.diff_rank_seed`` is set,
    then the rank enters the seed too.

    Limits: generators of persistent data-loader workers (``persistent_workers=True`` with
    ``num_workers > 0``) live in the workers and are not reseeded; a warning says so. Iteration-
    based loops call ``before_train_epoch`` once, so for them the hook only fixes the start.

    Args:
        seed: base seed; ``None`` (default) uses the runner's seed (``randomness.seed``, or the
            seed stored in the checkpoint on resume).
    """

    priority = 'VERY_HIGH'  # before any other hook can draw in before_train_epoch

    def __init__(self, seed: Optional[int] = None) -> None:
        self.seed = None if seed is None else check_int(seed, 'seed', min_value=None,
                                                         owner='EpochSeedHook')

    def before_train(self, runner) -> None:
        """Warn when data-loader workers keep their own generator state across epochs."""
        loader = getattr(runner.train_loop, 'dataloader', None)
        if loader is not None and getattr(loader, 'num_workers', 0) > 0 and getattr(
                loader, 'persistent_workers', False):
            print_log('EpochSeedHook: resuming this run will not be exact: '
                      f'train_dataloader.persistent_workers=True (num_workers='
                      f'{loader.num_workers}) keeps the workers and their random state across '
                      'epochs, so a resumed run does not repeat their augmentations. Set '
                      'train_dataloader.persistent_workers=False (or num_workers=0) for an '
                      'exact resume', 'current', logging.WARNING)

    def _seed_for(self, runner, epoch: int) -> int:
        base = runner.seed if self.seed is None else self.seed
        randomness = getattr(runner, '_randomness_cfg', None) or {}
        rank = runner.rank if randomness.get('diff_rank_seed', False) else None
        return epoch_seed(base, epoch, rank)

    def before_train_epoch(self, runner) -> None:
        """Reseed ``random``, ``numpy`` and ``torch`` for the epoch about to start."""
        seed = self._seed_for(runner, runner.epoch)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
