"""Exponential moving average of the FM-KT flow modules, used for evaluation."""
import copy
import logging
from typing import Dict, Optional

from mmengine.hooks import EMAHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS
from torch import nn

from ..models.connectors import find_flows
from ..utils.validation import check_int, check_number

__all__ = ['FlowEMAHook']


@HOOKS.register_module()
class FlowEMAHook(EMAHook):
    """EMA copy of the FM-KT flows (and nothing else), swapped in for validation and test.

    mmengine's ``EMAHook`` averages the whole model, which in distillation means copying the
    teacher too. This hook averages only the ``FlowMatchingConnector`` modules found in the
    model (e.g. the per-level flows of ``FlowFPN``) and reuses ``EMAHook``'s behaviour:

    - after every training iteration the average is updated:
      ``ema = (1 - momentum) * ema + momentum * flow`` (``momentum=0.001`` is a decay of 0.999);
    - validation and test run with the averaged flows swapped in, and swapped back afterwards;
    - saved checkpoints hold the averaged flows in ``state_dict`` (so a checkpoint evaluates,
      and exports, with them) and the raw flows in ``ema_state_dict``; ``--resume`` swaps them
      back. Loading a checkpoint without resuming starts the average from its ``state_dict``.

    Args:
        momentum: EMA momentum (1 - decay).
        begin_iter: iteration from which the average is updated (before it, it copies).
        begin_epoch: epoch from which the average is updated.
        strict_load: load the averaged flows strictly on resume.
    """

    def __init__(self,
                 momentum: float = 0.001,
                 begin_iter: int = 0,
                 begin_epoch: int = 0,
                 strict_load: bool = False) -> None:
        momentum = check_number(momentum, 'momentum', min_value=0, max_value=1,
                                owner='FlowEMAHook')
        if momentum == 0:  # the average would never move from its first copy
            raise ValueError('FlowEMAHook: momentum must be in (0, 1], got 0')
        super().__init__(
            ema_type='ExponentialMovingAverage',
            strict_load=strict_load,
            begin_iter=check_int(begin_iter, 'begin_iter', min_value=0, owner='FlowEMAHook'),
            begin_epoch=check_int(begin_epoch, 'begin_epoch', min_value=0, owner='FlowEMAHook'),
            momentum=momentum)
        self._names: Dict[str, str] = {}

    def before_run(self, runner) -> None:
        """Collect the flows and build their averaged copy."""
        from mmengine.registry import MODELS
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        flows = find_flows(model)
        if not flows:
            raise ValueError('FlowEMAHook: the model has no FM-KT flow (FlowMatchingConnector); '
                             'remove the hook from custom_hooks or add a flow to the student')
        self._names = {f'flow{i}': name for i, name in enumerate(flows)}
        self.src_model = nn.ModuleDict({key: flows[name] for key, name in self._names.items()})
        self.ema_model = MODELS.build(self.ema_cfg, default_args=dict(model=self.src_model))

    def _model_key(self, ema_key: str) -> Optional[str]:
        """``'module.flow0.x.weight'`` -> ``'<flow module name>.x.weight'``."""
        if not ema_key.startswith('module.'):
            return None
        proxy, _, rest = ema_key[len('module.'):].partition('.')
        name = self._names.get(proxy)
        return None if name is None else f'{name}.{rest}'

    def _swap_ema_state_dict(self, checkpoint: dict) -> None:
        model_state = checkpoint['state_dict']
        ema_state = checkpoint['ema_state_dict']
        for key in ema_state:
            model_key = self._model_key(key)
            if model_key is not None and model_key in model_state:
                ema_state[key], model_state[model_key] = model_state[model_key], ema_state[key]

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Resume the average, or start it from the loaded weights."""
        from mmengine.runner.checkpoint import load_state_dict
        if getattr(self, 'ema_model', None) is None:
            # Loaded before ``before_run``: the average will be copied from the loaded weights.
            return
        if 'ema_state_dict' in checkpoint and runner._resume:
            self._swap_ema_state_dict(checkpoint)
            self.ema_model.load_state_dict(checkpoint['ema_state_dict'], strict=self.strict_load)
            return
        if runner._resume:
            print_log('FlowEMAHook: no ema_state_dict in the checkpoint; the flow average '
                      'starts from its weights', 'current', logging.WARNING)
        state = checkpoint.get('state_dict', checkpoint)
        flow_state = {}
        for key in self.ema_model.module.state_dict():
            model_key = self._model_key(f'module.{key}')
            if model_key is None:
                continue
            for candidate in (model_key, f'module.{model_key}'):
                if candidate in state:
                    flow_state[key] = copy.deepcopy(state[candidate])
                    break
        if not flow_state:
            print_log('FlowEMAHook: the checkpoint holds no flow weights; the average keeps '
                      'the current ones', 'current', logging.WARNING)
            return
        load_state_dict(self.ema_model.module, flow_state, strict=self.strict_load)
