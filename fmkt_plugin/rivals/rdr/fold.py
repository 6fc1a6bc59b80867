"""Fold RDR's re-parameterisable branches into the plain student's conv (our reading of RDR).

Both forms live here, below the APIs: from a built student (:func:`rdr_plain_student_state`,
used by :class:`RDRDistill`) and from a checkpoint's state dict (:func:`fold_rdr_state`, used by
the exporter through ``RDRDistill.deployable_student_state``).
"""
import math
from typing import Dict, Mapping, Optional

import torch
from torch import Tensor, nn

from .rep_conv_branches import RepConvBranches, fold_conv_bn_branches

__all__ = ['rdr_plain_student_state', 'fold_rdr_state']

_BN_KEYS = ('weight', 'bias', 'running_mean', 'running_var')


def _plain_entries(conv: str, norm: str, weight: Tensor, bias: Tensor, eps: float,
                   like: Tensor) -> Dict[str, Tensor]:
    """Plain conv (no bias) + BatchNorm computing ``weight * x + bias`` in eval mode: the BN
    has mean 0, variance 1 and weight ``sqrt(1 + eps)``, so it only adds ``bias``."""
    dtype, device = like.dtype, like.device
    channels = weight.shape[0]
    return {
        f'{conv}.weight': weight.to(device, dtype),
        f'{norm}.weight': torch.full((channels, ), math.sqrt(1.0 + eps), dtype=dtype,
                                     device=device),
        f'{norm}.bias': bias.to(device, dtype),
        f'{norm}.running_mean': torch.zeros(channels, dtype=dtype, device=device),
        f'{norm}.running_var': torch.ones(channels, dtype=dtype, device=device),
        f'{norm}.num_batches_tracked': torch.zeros((), dtype=torch.long, device=device),
    }


def rdr_plain_student_state(student: nn.Module) -> Dict[str, Tensor]:
    """State dict of the plain student equal (in eval mode) to an RDR student.

    Every :class:`RepConvBranches` (at module name ``X``, with ``norm_name`` ``Y``) becomes
    the plain ``X.weight`` conv and the ``Y.*`` BatchNorm; all other entries are kept.
    The result loads strictly into the student built from its plain config.

    Raises:
        ValueError: the student has no branch modules, or one lacks ``norm_name``.
    """
    reps = {n: m for n, m in student.named_modules() if isinstance(m, RepConvBranches)}
    if not reps:
        raise ValueError('rdr export: the student has no RepConvBranches (not an RDR student)')
    state = student.state_dict()
    out = {k: v for k, v in state.items() if not any(k.startswith(n + '.') for n in reps)}
    for name, rep in reps.items():
        if not rep.norm_name:
            raise ValueError(f'rdr export: {name} does not name the BatchNorm it replaced')
        weight, bias = rep.fold()
        out.update(_plain_entries(name, rep.norm_name, weight, bias,
                                  rep.branches[0].bn.eps, rep.branches[0].conv.weight))
    return out


def fold_rdr_state(model_cfg: Mapping, state: Dict[str, Tensor],
                   eps: float = 1e-5) -> Dict[str, Tensor]:
    """Fold the RDR branches of a checkpoint's student state dict (no model needed).

    ``model_cfg`` is an ``RDRDistill`` config (``RDRDistill.deployable_student_state``, which
    the exporter asks, calls this). ``state`` holds the student's
    weights (keys without the ``architecture.`` prefix); the branches of ``model_cfg.rep.conv``
    (``<conv>.branches.<i>.{conv,bn}.*``) become ``<conv>.weight`` and ``<rep.norm>.*``.

    Args:
        model_cfg: the ``model`` section of the distillation config.
        state: student state dict.
        eps: BatchNorm eps of the branches (the student's norm eps; 1e-5 for mmpretrain).

    Returns:
        The plain student's state dict (a new dict).
    """
    rep: Optional[Mapping] = model_cfg.get('rep')
    if not rep or 'conv' not in rep or 'norm' not in rep:
        raise ValueError('rdr export: model.rep needs conv and norm module names')
    conv, norm = rep['conv'], rep['norm']
    prefix = f'{conv}.branches.'
    indices = sorted({int(k[len(prefix):].split('.')[0]) for k in state if k.startswith(prefix)})
    if not indices:
        raise ValueError(f'rdr export: no "{prefix}*" weights in the checkpoint; was it written '
                         'by this RDR config?')
    branches = []
    for i in indices:
        p = f'{prefix}{i}.'
        try:
            branches.append(dict(weight=state[p + 'conv.weight'],
                                 **{('bn_' + k if k in ('weight', 'bias') else k):
                                    state[p + 'bn.' + k] for k in _BN_KEYS}, eps=eps))
        except KeyError as err:
            raise ValueError(f'rdr export: branch {i} of {conv} lacks {err}') from None
    kernel = branches[0]['weight'].shape[-1]
    weight, bias = fold_conv_bn_branches(branches, kernel)
    out = {k: v for k, v in state.items() if not k.startswith(conv + '.')}
    out.update(_plain_entries(conv, norm, weight, bias, eps, branches[0]['weight']))
    return out
