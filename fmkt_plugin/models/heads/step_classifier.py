"""Linear classifier applied to every step of a flow."""
from torch import Tensor, nn

__all__ = ['StepClassifier']


class StepClassifier(nn.Module):
    """Map stacked per-step estimates to per-step logits.

    Input ``(N, B, C)`` (or ``(N, B, C, H, W)``, average-pooled first); output
    ``(N, B, num_classes)``. One shared linear layer for all steps, like the student's own
    ``fc`` that it replaces.

    Args:
        in_channels: feature channels.
        num_classes: classes.
        init_std: std of the normal init of the weight (bias zero), as mmpretrain's heads.
    """

    def __init__(self, in_channels: int, num_classes: int, init_std: float = 0.01) -> None:
        super().__init__()
        self.init_std = init_std
        self.fc = nn.Linear(in_channels, num_classes)
        self.init_weights()

    def init_weights(self) -> None:
        nn.init.normal_(self.fc.weight, std=self.init_std)
        nn.init.zeros_(self.fc.bias)

    def forward(self, estimates: Tensor) -> Tensor:
        if estimates.dim() == 5:
            estimates = estimates.mean(dim=(3, 4))
        if estimates.dim() != 3:
            raise ValueError(f'StepClassifier: expected (N, B, C) or (N, B, C, H, W), got '
                             f'{tuple(estimates.shape)}')
        return self.fc(estimates)
