"""Early checks of the keys a config gives mmengine's hooks, loops and optimizer wrapper.

mmengine builds these only when training starts (the checkpoint hook's arguments even reach it
only when it first saves), so a misspelt key such as ``default_hooks.checkpoint.max_keep_ckpt``
trained a whole epoch and then failed, with no checkpoint written. Here every key is compared with
the arguments the registered class accepts before the runner is built, and an unknown key is named
with the config path and the closest accepted name. A class that takes ``**kwargs`` all the way
up its bases, or a type that is not registered yet (a package's own hook before its registries
are loaded), is left to mmengine.
"""
import difflib
import inspect
from typing import Iterator, Optional, Set, Tuple

from mmengine.config import Config

__all__ = ['check_component_keys', 'accepted_arguments']

#: arguments the runner passes itself, and keys mmengine's builders consume before the class
_RUNNER_GIVEN = {'self', 'runner', 'dataloader', 'evaluator'}
_BUILDER_KEYS = {'type', 'priority', '_scope_'}
_OPTIM_WRAPPER_BUILDER_KEYS = {'optimizer', 'paramwise_cfg', 'constructor'}


def accepted_arguments(cls) -> Optional[Set[str]]:
    """The keyword arguments ``cls(...)`` accepts, following ``**kwargs`` up its bases; None
    when some ``**kwargs`` is not passed on to a base (anything may be accepted)."""
    names: Set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            return names
        if '__init__' not in vars(klass):
            continue
        params = inspect.signature(vars(klass)['__init__']).parameters.values()
        names.update(p.name for p in params
                     if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names
    return None


def _components(cfg: Config) -> Iterator[Tuple[str, object, dict, Set[str]]]:
    """(config path, registry, component dict, keys its builder consumes) of every component."""
    from mmengine.registry import HOOKS, LOOPS, OPTIM_WRAPPERS
    for name, hook in (cfg.get('default_hooks') or {}).items():
        if isinstance(hook, dict):
            yield f'default_hooks.{name}', HOOKS, hook, _BUILDER_KEYS
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        if isinstance(hook, dict):
            yield f'custom_hooks[{i}]', HOOKS, hook, _BUILDER_KEYS
    train_cfg = cfg.get('train_cfg')
    if isinstance(train_cfg, dict):
        default = 'EpochBasedTrainLoop' if train_cfg.get('by_epoch', True) else \
            'IterBasedTrainLoop'
        yield 'train_cfg', LOOPS, dict(train_cfg, type=train_cfg.get('type', default)), \
            _BUILDER_KEYS | {'by_epoch'}
    for key, default in (('val_cfg', 'ValLoop'), ('test_cfg', 'TestLoop')):
        loop = cfg.get(key)
        if isinstance(loop, dict):
            yield key, LOOPS, dict(loop, type=loop.get('type', default)), _BUILDER_KEYS
    wrapper = cfg.get('optim_wrapper')
    if isinstance(wrapper, dict):
        yield 'optim_wrapper', OPTIM_WRAPPERS, dict(
            wrapper, type=wrapper.get('type', 'OptimWrapper')), \
            _BUILDER_KEYS | _OPTIM_WRAPPER_BUILDER_KEYS


def check_component_keys(cfg: Config) -> None:
    """Raise ``ValueError`` naming the first key that a hook, loop or optimizer wrapper of
    ``cfg`` would reject when mmengine builds it."""
    from mmengine.registry import DefaultScope
    scope = cfg.get('default_scope') or 'mmengine'
    with DefaultScope.overwrite_default_scope(scope):
        for path, registry, component, consumed in _components(cfg):
            kind = component.get('type')
            cls = registry.get(kind) if isinstance(kind, str) else kind
            if not inspect.isclass(cls):
                continue
            accepted = accepted_arguments(cls)
            if accepted is None:
                continue
            accepted -= _RUNNER_GIVEN
            for key in component:
                if key in consumed or key in accepted:
                    continue
                close = difflib.get_close_matches(key, sorted(accepted), n=1)
                hint = f'; did you mean {path}.{close[0]}?' if close else ''
                raise ValueError(
                    f'{path}.{key}: {cls.__name__} takes no argument {key!r} (it takes '
                    f'{", ".join(sorted(accepted))}){hint}')
