"""Training-loop components (hooks) of FM-KT."""
from .epoch_seed_hook import EpochSeedHook, epoch_seed
from .flow_ema_hook import FlowEMAHook

__all__ = ['EpochSeedHook', 'FlowEMAHook', 'epoch_seed']
