"""Training-loop components (hooks) of FM-KT."""
from .flow_ema_hook import FlowEMAHook

__all__ = ['FlowEMAHook']
