"""Structurally re-parameterisable linear branches (RepVGG-style) for RDR."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_int

__all__ = ['RepConvBranches', 'fold_conv_bn_branches']


def fold_conv_bn_branches(branches: Sequence[Dict[str, Tensor]],
                          kernel_size: int) -> Tuple[Tensor, Tensor]:
    """Sum of ``BN_k(conv_k(x))`` branches as one ``kernel_size`` conv with bias (float64).

    Every branch is linear in x (a bias-free conv followed by an eval-mode BatchNorm), so
    ``sum_k BN_k(conv_k(x)) = W * x + b`` with ``W = sum_k pad(W_k * g_k)`` and
    ``b = sum_k (beta_k - mu_k * g_k)``, ``g_k = gamma_k / sqrt(var_k + eps_k)``; a smaller
    odd kernel is zero-padded to the centre of the larger one (same stride, ``k // 2``
    padding, so the sampling positions coincide).

    Args:
        branches: per branch a dict with ``weight`` (conv, ``(C_out, C_in, k, k)``),
            ``bn_weight``, ``bn_bias``, ``running_mean``, ``running_var`` and ``eps``.
        kernel_size: kernel of the folded conv (the largest branch kernel).

    Returns:
        ``(weight, bias)`` in float64.
    """
    weight, bias = None, None
    for i, br in enumerate(branches):
        w = br['weight'].detach().double()
        k = w.shape[-1]
        if k > kernel_size or (kernel_size - k) % 2:
            raise ValueError(f'fold: branch {i} has kernel {k}, cannot centre it in '
                             f'{kernel_size}x{kernel_size}')
        scale = br['bn_weight'].detach().double() / torch.sqrt(
            br['running_var'].detach().double() + float(br['eps']))
        w = w * scale[:, None, None, None]
        pad = (kernel_size - k) // 2
        w = nn.functional.pad(w, (pad, pad, pad, pad))
        b = br['bn_bias'].detach().double() - br['running_mean'].detach().double() * scale
        weight = w if weight is None else weight + w
        bias = b if bias is None else bias + b
    if weight is None:
        raise ValueError('fold: no branches')
    return weight, bias


class _ConvBN(nn.Sequential):
    """Bias-free conv followed by BatchNorm."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 eps: float, momentum: Optional[float]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride,
                              kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=eps, momentum=momentum)


@register_model()
class RepConvBranches(nn.Module):
    """K parallel conv + BN branches summed; scored progressively by RDR (our reading).

    RDR (Yao et al., AAAI 2024) has no public code; this is *our reading* of its abstract:
    a student conv (with the BatchNorm after it) is replaced by ``K`` linear branches
    (``kernel_sizes``, e.g. 3x3 and 1x1 convs with BN). The partial sums
    ``S_k = f_1 + ... + f_k`` are ``K`` student features of increasing capacity that
    :class:`RDRLoss` pulls, one step closer each, towards the teacher feature. The module
    returns ``S_K`` (the student's feature downstream); in training, the stacked partial
    features ``(K, B, C, H, W)`` go through the identity submodule :attr:`partials`, where a
    ``ModuleOutputs`` recorder picks them up. With a residual (``identity`` set by
    :class:`RDRDistill` just before the call) the partial features are ``S_k + identity``,
    the block's pre-activation output with ``k`` branches.

    Being linear, the branches fold into one conv (:meth:`fold`): the deployed student is the
    plain student with that conv and a BatchNorm carrying the bias.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_sizes: kernel of each branch (odd; the first is the replaced conv's kernel and
            the largest).
        stride: stride of all branches.
        zero_init_extra: start branches 2..K at zero output (BN weight 0), so the student
            starts as the plain student.
        eps: BatchNorm eps.
        momentum: BatchNorm momentum.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 kernel_sizes: Sequence[int] = (3, 1, 3, 1),
                 stride: int = 1,
                 zero_init_extra: bool = True,
                 eps: float = 1e-5,
                 momentum: Optional[float] = 0.1) -> None:
        super().__init__()
        in_channels, out_channels, stride = (
            check_int(value, name, owner='RepConvBranches')
            for name, value in (('in_channels', in_channels), ('out_channels', out_channels),
                                ('stride', stride)))
        kernel_sizes = tuple(check_int(k, f'kernel_sizes[{i}]', owner='RepConvBranches')
                             for i, k in enumerate(kernel_sizes))
        if len(kernel_sizes) < 2:
            raise ValueError(f'RepConvBranches: kernel_sizes needs >= 2 branches, got '
                             f'{kernel_sizes!r}')
        if any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f'RepConvBranches: kernel_sizes must be odd, got {kernel_sizes!r}')
        if max(kernel_sizes) != kernel_sizes[0]:
            raise ValueError(f'RepConvBranches: the first kernel must be the largest (the '
                             f'folded conv keeps it), got {kernel_sizes!r}')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_sizes, self.stride = kernel_sizes, stride
        self.zero_init_extra = zero_init_extra
        self.branches = nn.ModuleList(
            _ConvBN(in_channels, out_channels, k, stride, eps, momentum) for k in kernel_sizes)
        self.partials = nn.Identity()
        #: set for one call by a residual hook (see RDRDistill); cleared after use
        self.identity: Optional[Tensor] = None
        #: full name (in the student) of the BatchNorm the branches replaced, for export
        self.norm_name: Optional[str] = None
        self.init_weights()

    @property
    def num_branches(self) -> int:
        return len(self.branches)

    def init_weights(self) -> None:
        """Zero the BN weight of branches 2..K when ``zero_init_extra``."""
        if self.zero_init_extra:
            for branch in self.branches[1:]:
                nn.init.zeros_(branch.bn.weight)

    @classmethod
    def from_conv_bn(cls, conv: nn.Conv2d, norm: nn.BatchNorm2d,
                     kernel_sizes: Sequence[int] = (3, 1, 3, 1),
                     zero_init_extra: bool = True) -> 'RepConvBranches':
        """Branches whose first branch is a copy of ``conv`` and ``norm`` (weights, stats).

        Raises:
            ValueError: ``conv`` is grouped, dilated, biased, not square or not padded by
                ``k // 2``, or ``norm`` is not a BatchNorm2d of its output channels.
        """
        if not isinstance(conv, nn.Conv2d) or not isinstance(norm, nn.BatchNorm2d):
            raise ValueError(f'RepConvBranches: need a Conv2d and a BatchNorm2d, got '
                             f'{type(conv).__name__} and {type(norm).__name__}')
        k = conv.kernel_size[0]
        if (conv.kernel_size != (k, k) or conv.groups != 1 or conv.dilation != (1, 1)
                or conv.bias is not None or conv.padding != (k // 2, k // 2)
                or conv.stride[0] != conv.stride[1]):
            raise ValueError(f'RepConvBranches: the conv must be square, ungrouped, undilated, '
                             f'bias-free, with padding k // 2: got {conv}')
        if norm.num_features != conv.out_channels or not norm.affine or \
                not norm.track_running_stats:
            raise ValueError(f'RepConvBranches: {norm} does not fit {conv}')
        kernel_sizes = tuple(kernel_sizes)
        if kernel_sizes[0] != k:
            raise ValueError(f'RepConvBranches: kernel_sizes[0] ({kernel_sizes[0]}) must be the '
                             f'replaced conv kernel ({k})')
        rep = cls(conv.in_channels, conv.out_channels, kernel_sizes, conv.stride[0],
                  zero_init_extra, norm.eps, norm.momentum)
        rep = rep.to(conv.weight.device, conv.weight.dtype)
        rep.branches[0].conv.load_state_dict(conv.state_dict())
        rep.branches[0].bn.load_state_dict(norm.state_dict())
        return rep

    def forward(self, x: Tensor) -> Tensor:
        outs: List[Tensor] = [branch(x) for branch in self.branches]
        identity, self.identity = self.identity, None
        if self.training:
            sums = torch.stack(outs).cumsum(dim=0)
            feats = sums if identity is None else sums + identity.unsqueeze(0)
            self.partials(feats)
            return sums[-1]
        return torch.stack(outs).sum(dim=0)

    def branch_tensors(self) -> List[Dict[str, Tensor]]:
        """Per branch the tensors :func:`fold_conv_bn_branches` needs."""
        return [dict(weight=b.conv.weight, bn_weight=b.bn.weight, bn_bias=b.bn.bias,
                     running_mean=b.bn.running_mean, running_var=b.bn.running_var, eps=b.bn.eps)
                for b in self.branches]

    def fold(self) -> Tuple[Tensor, Tensor]:
        """``(weight, bias)`` of the one conv equal to the eval-mode sum (float64)."""
        return fold_conv_bn_branches(self.branch_tensors(), self.kernel_sizes[0])

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['identity'] = None
        return state
