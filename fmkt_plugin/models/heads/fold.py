"""Fold a flow head with an affine velocity model into one linear classifier (FM-KT^Theta)."""
import itertools
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.func import functional_call

__all__ = ['fold_flow_head', 'plain_student_state']


def _float64_state(module: nn.Module) -> Dict[str, Tensor]:
    """CPU copies of a module's parameters and buffers, floating-point ones in float64."""
    tensors = itertools.chain(module.named_parameters(), module.named_buffers())
    return {name: (t.detach().cpu().double() if t.is_floating_point() else t.detach().cpu())
            for name, t in tensors}


def fold_flow_head(head, num_steps: Optional[int] = None,
                   rtol: float = 1e-6) -> Tuple[Tensor, Tensor]:
    """The linear layer ``(W, b)`` whose logits equal the head's N-step ensemble.

    With an affine meta-encoder (``meta_encoder.affine``, e.g. :class:`LinearMetaEncoder`) the
    ensemble ``g(z) = mean_i step_head(estimate_i(z))`` is an affine function of the pooled
    student feature ``z``, so ``g(z) = W z + b`` with ``b = g(0)`` and column ``j`` of ``W``
    equal to ``g(e_j) - g(0)``. Those ``C + 1`` probes run in float64 on a copy of the head;
    ``g`` is then checked against ``W z + b`` on random features, so a non-affine flow can
    never be folded silently.

    Args:
        head: a :class:`FlowMatchingClsHead` (on any device; it is not modified).
        num_steps: Euler steps of the folded ensemble (default: the flow's ``test_num_steps``).
        rtol: largest relative error of the affine check.

    Returns:
        ``(weight, bias)`` of shapes ``(num_classes, in_channels)`` and ``(num_classes, )``,
        float32 on the head's device.

    Raises:
        ValueError: the meta-encoder is not affine, or the check fails.
    """
    encoder = head.flow.meta_encoder
    if not getattr(encoder, 'affine', False):
        raise ValueError(f'fold: meta_encoder {type(encoder).__name__} is not affine in x; only '
                         f'a flow with an affine velocity model (meta_encoder=dict(type='
                         f'"LinearMetaEncoder")) folds into a linear head')
    steps = head.flow.test_num_steps if num_steps is None else num_steps
    device = next(head.parameters()).device
    flow, step_head = head.flow, head.step_head
    # Evaluate with float64 copies of the weights through functional_call rather than on a deep
    # copy: a head in use carries recorder hooks holding graph-attached activations.
    params, head_params = _float64_state(flow), _float64_state(step_head)

    def ensemble(z: Tensor) -> Tensor:
        # an explicit step count: no draw, whatever the head's mode
        estimates = functional_call(flow, params, (z, ), dict(num_steps=steps)).estimates
        return functional_call(step_head, head_params, (estimates, )).mean(dim=0)

    with torch.no_grad():
        channels = head.in_channels
        probes = torch.cat([torch.zeros(1, channels), torch.eye(channels)]).double()
        out = ensemble(probes)
        bias = out[0]
        weight = (out[1:] - bias).t().contiguous()
        gen = torch.Generator().manual_seed(0)
        z = torch.randn(16, channels, generator=gen, dtype=torch.float64) * 3.0
        want = ensemble(z)
        err = (z @ weight.t() + bias - want).abs().max().item()
        scale = want.abs().max().item() + 1e-12
    if err > rtol * scale:
        raise ValueError(f'fold: the flow head is not affine in its input (max error {err:.3g} '
                         f'for logits up to {scale:.3g}); it cannot be folded')
    return weight.to(device, torch.float32), bias.to(device, torch.float32)


def plain_student_state(student: nn.Module, weight: Tensor, bias: Tensor) -> Dict[str, Tensor]:
    """State dict of the student with its head replaced by a plain ``LinearClsHead``.

    Everything outside ``head.`` (data preprocessor, backbone, neck) is kept as it is; the
    head becomes ``head.fc`` with ``weight`` and ``bias``, e.g. ``fold_flow_head(student.head)``.
    """
    state = {k: v for k, v in student.state_dict().items() if not k.startswith('head.')}
    state.update({'head.fc.weight': weight, 'head.fc.bias': bias})
    return state
