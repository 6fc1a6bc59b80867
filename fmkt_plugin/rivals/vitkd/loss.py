"""ViTKD (Yang et al., 2022, "ViTKD: Practical Guidelines for ViT feature knowledge
distillation"): the student's shallow layers mimic the teacher's, and the teacher's deep layer is
generated from the student's, half of its tokens masked."""
from typing import Tuple

import torch
from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_int, check_number

__all__ = ['ViTKDLoss']

_OWNER = 'ViTKDLoss'


@register_model()
class ViTKDLoss(nn.Module):
    """ViTKD on the tokens of a ViT student and teacher.

    Mimicking: the patch tokens of each of the first two layers of the student, mapped
    to the teacher's width by a linear layer per layer (none when the widths agree), against
    the same layers of the teacher: ``alpha * sum of squared errors / B``.

    Generation: the student's last-layer patch tokens (after the final norm), mapped to the
    teacher's width, have a random ``ratio`` of their positions replaced by a learned mask token
    (per sample, drawn by sorting uniform noise); the tokens, laid out on their square grid, go
    through ``conv3x3 -> ReLU -> conv3x3`` and are compared with the teacher's last-layer tokens
    at the masked positions only: ``beta / ratio * sum of squared errors / B``.

    The inputs are the layers' outputs as MMRazor's ``ModuleOutputs`` records them,
    ``(B, extra + N, D)`` with the ``extra`` class (and distillation) tokens first, which are
    dropped; ``N`` must be a square.

    Args:
        student_dims: token width of the student (192 for DeiT-T).
        teacher_dims: token width of the teacher (384 for DeiT-S / DeiT-III-S).
        alpha: weight of the mimicking term (the authors' 3e-5).
        beta: weight of the generation term (the authors' 3e-6).
        ratio: fraction of the tokens masked for the generation (the authors' lambda 0.5).
        extra_tokens: leading non-patch tokens of the records (1: class token).
    """

    def __init__(self,
                 student_dims: int,
                 teacher_dims: int,
                 alpha: float = 3e-5,
                 beta: float = 3e-6,
                 ratio: float = 0.5,
                 extra_tokens: int = 1) -> None:
        super().__init__()
        student_dims = check_int(student_dims, 'student_dims', owner=_OWNER)
        teacher_dims = check_int(teacher_dims, 'teacher_dims', owner=_OWNER)
        self.alpha = check_number(alpha, 'alpha', nonnegative=True, owner=_OWNER)
        self.beta = check_number(beta, 'beta', nonnegative=True, owner=_OWNER)
        self.ratio = check_number(ratio, 'ratio', positive=True, max_value=1, owner=_OWNER)
        self.extra_tokens = check_int(extra_tokens, 'extra_tokens', min_value=0, owner=_OWNER)
        same = student_dims == teacher_dims
        self.low_align = None if same else nn.ModuleList(
            nn.Linear(student_dims, teacher_dims) for _ in range(2))
        self.high_align = None if same else nn.Linear(student_dims, teacher_dims)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, teacher_dims))
        self.generation = nn.Sequential(
            nn.Conv2d(teacher_dims, teacher_dims, 3, padding=1), nn.ReLU(),
            nn.Conv2d(teacher_dims, teacher_dims, 3, padding=1))

    def _patches(self, tokens: Tensor, field: str) -> Tensor:
        if tokens.dim() != 3 or tokens.shape[1] <= self.extra_tokens:
            raise ValueError(f'{_OWNER}: {field} must be (B, {self.extra_tokens} + N, D) tokens, '
                             f'got {tuple(tokens.shape)}')
        return tokens[:, self.extra_tokens:]

    def masking(self, batch: int, length: int, device: torch.device) -> Tuple[Tensor, Tensor]:
        """``(keep, mask)``: the kept positions ``(B, L_keep)`` and the mask ``(B, L)`` (1:
        masked), drawn per sample by sorting uniform noise."""
        keep_count = int(length * (1 - self.ratio))
        order = torch.argsort(torch.rand(batch, length, device=device), dim=1)
        mask = torch.ones(batch, length, device=device)
        mask.scatter_(1, order[:, :keep_count], 0.0)
        return order[:, :keep_count], mask

    @staticmethod
    def _check_pair(s: Tensor, t: Tensor, layer: str) -> None:
        if s.shape[:2] != t.shape[:2]:
            raise ValueError(f'{_OWNER}: the {layer} has {tuple(s.shape[:2])} (batch, patch '
                             f'tokens) in the student and {tuple(t.shape[:2])} in the teacher')

    def mimic(self, student: Tuple[Tensor, ...], teacher: Tuple[Tensor, ...]) -> Tensor:
        """The mimicking term of the shallow layers."""
        loss = 0.0
        for i, (s, t) in enumerate(zip(student, teacher)):
            s = self._patches(s, f'student low layer {i}')
            t = self._patches(t, f'teacher low layer {i}')
            self._check_pair(s, t, f'low layer {i}')
            if self.low_align is not None:
                s = self.low_align[i](s)
            loss = loss + ((s - t)**2).sum()
        return self.alpha * loss / student[0].shape[0]

    def generate(self, student: Tensor, teacher: Tensor) -> Tensor:
        """The generation term of the deep layer."""
        s = self._patches(student, 'student high layer')
        t = self._patches(teacher, 'teacher high layer')
        self._check_pair(s, t, 'high layer')
        if self.high_align is not None:
            s = self.high_align(s)
        batch, length, dims = s.shape
        side = int(round(length**0.5))
        if side * side != length:
            raise ValueError(f'{_OWNER}: the high layer has {length} patch tokens, not a square '
                             'grid')
        keep, mask = self.masking(batch, length, s.device)
        kept = torch.gather(s, 1, keep[..., None].expand(-1, -1, dims))
        tokens = self.mask_token.to(s.dtype).expand(batch, length, dims).clone()
        tokens.scatter_(1, keep[..., None].expand(-1, -1, dims), kept)
        grid = tokens.transpose(1, 2).reshape(batch, dims, side, side)
        generated = self.generation(grid).flatten(2).transpose(1, 2)
        mask = mask.to(s.dtype)[..., None]
        loss = (((generated - t) * mask)**2).sum()
        return self.beta / self.ratio * loss / batch

    def forward(self, s_low0: Tensor, s_low1: Tensor, s_high: Tensor, t_low0: Tensor,
                t_low1: Tensor, t_high: Tensor) -> Tensor:
        """The ViTKD loss of the recorded layers: the student's first two layers and its last
        (after the final norm), and the teacher's same layers.

        Raises:
            ValueError: tokens not ``(B, extra + N, D)``, or a high layer whose ``N`` is not a
                square.
        """
        return self.mimic((s_low0, s_low1), (t_low0, t_low1)) + self.generate(s_high, t_high)
