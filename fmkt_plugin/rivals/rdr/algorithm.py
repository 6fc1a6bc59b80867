"""RDR (our reading) as an MMRazor algorithm: branches grafted onto a student conv."""
import copy
from typing import Dict, Mapping, Union

import torch
from torch import nn

from ...models.algorithms.checked_distill import CheckedTeacherDistill
from ...registry import MODELS, register_model
from .fold import fold_rdr_state, rdr_plain_student_state
from .loss import RDRLoss
from .rep_conv_branches import RepConvBranches

__all__ = ['RDRDistill']


def _get(root: nn.Module, name: str, field: str) -> nn.Module:
    try:
        return root.get_submodule(name)
    except AttributeError:
        raise ValueError(f'{field}: the student has no module {name!r}') from None


def _set(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition('.')
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


@register_model()
class RDRDistill(CheckedTeacherDistill):
    """Single-teacher distillation with RDR's re-parameterisable branches (our reading).

    RDR (Yao et al., AAAI 2024, "Progressively Knowledge Distillation via Re-parameterizing
    Diffusion Reverse Process") has no public code. Our reading of its abstract: one conv of
    the student (``rep.conv``, with the BatchNorm after it, ``rep.norm``) becomes
    :class:`RepConvBranches` -- its first branch a copy of that conv + BN, the others extra
    linear conv + BN branches; the BN is replaced by an identity. The partial sums are the
    student features that :class:`RDRLoss` moves towards the teacher step by step (record
    ``'<rep.conv>.partials'``). After training the branches fold into one conv, so the
    exported student is the plain student (:mod:`fmkt_plugin.rivals.rdr.fold`).

    If ``rep.residual`` names the residual block around the conv (e.g. a ResNet
    ``BasicBlock`` without downsample), its input is added to the partial sums, so they are
    the block's pre-activation outputs.

    Everything else is ``CheckedTeacherDistill`` (strict teacher checkpoint, finite-loss
    guard). The parts of every :class:`RDRLoss` are logged as
    ``distill.<name>_{path,guide}`` (log only).

    Args:
        architecture: the student config (or module).
        rep: ``dict(conv=..., norm=..., kernel_sizes=(3, 1, 3, 1), residual=None,
            zero_init_extra=True)``; names are module names in the student.
        **kwargs: the arguments of ``CheckedTeacherDistill`` and ``SingleTeacherDistill``.
    """

    logged_parts = RDRLoss

    @classmethod
    def deployable_student_state(cls, model_cfg: Mapping,
                                 state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """The plain student's weights: the branches of ``model_cfg.rep`` folded into its conv
        (:func:`~fmkt_plugin.rivals.rdr.fold_rdr_state`)."""
        return fold_rdr_state(model_cfg, state)


    def __init__(self, architecture: Union[dict, nn.Module], rep: dict, *args,
                 **kwargs) -> None:
        if isinstance(architecture, dict):
            architecture = MODELS.build(copy.deepcopy(architecture))
        if not isinstance(rep, dict) or 'conv' not in rep or 'norm' not in rep:
            raise ValueError(f'model.rep: need dict(conv=<module name>, norm=<module name>, ...), '
                             f'got {rep!r}')
        unknown = set(rep) - {'conv', 'norm', 'kernel_sizes', 'residual', 'zero_init_extra'}
        if unknown:
            raise ValueError(f'model.rep: unknown keys {sorted(unknown)}')
        self.rep_cfg = dict(rep)
        self._graft(architecture, rep)
        super().__init__(*args, architecture=architecture, **kwargs)

    @staticmethod
    def _graft(student: nn.Module, rep: dict) -> None:
        conv = _get(student, rep['conv'], 'model.rep.conv')
        norm = _get(student, rep['norm'], 'model.rep.norm')
        branches = RepConvBranches.from_conv_bn(
            conv, norm, kernel_sizes=rep.get('kernel_sizes', (3, 1, 3, 1)),
            zero_init_extra=rep.get('zero_init_extra', True))
        branches.norm_name = rep['norm']
        _set(student, rep['conv'], branches)
        _set(student, rep['norm'], nn.Identity())
        residual = rep.get('residual')
        if residual:
            block = _get(student, residual, 'model.rep.residual')
            if getattr(block, 'downsample', None) is not None:
                raise ValueError(f'model.rep.residual: {residual!r} has a downsample branch; '
                                 'choose a block whose input is its identity')
            if not rep['conv'].startswith(residual + '.'):
                raise ValueError(f'model.rep.residual: {rep["conv"]!r} is not inside '
                                 f'{residual!r}')

            inner = rep['conv'][len(residual) + 1:]

            def keep_identity(module, args, inner=inner):
                # looked up from the hooked block, so a deep copy of the student hooks its own
                module.get_submodule(inner).identity = args[0]

            block.register_forward_pre_hook(keep_identity)

    def init_weights(self) -> None:
        """mmengine's init (e.g. ResNet's BatchNorm constant init) reaches the branches too;
        reapply their own init (extra branches at zero) afterwards."""
        super().init_weights()
        for module in self.rep_modules().values():
            module.init_weights()

    def rep_modules(self) -> Dict[str, RepConvBranches]:
        """The student's re-parameterisable branch modules, by module name."""
        return {name: m for name, m in self.student.named_modules()
                if isinstance(m, RepConvBranches)}

    def fold_student_state(self) -> Dict[str, torch.Tensor]:
        """State dict of the plain student with the branches folded (see ``fold.py``)."""
        return rdr_plain_student_state(self.student)


