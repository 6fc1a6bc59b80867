"""Residual bottleneck block of the DiffKD denoiser and noise adapter."""
from torch import Tensor, nn

__all__ = ['ResidualBottleneck']


class ResidualBottleneck(nn.Module):
    """``x + BN(1x1(ReLU(BN(3x3(ReLU(BN(1x1(x))))))))`` with a ``channels / reduction`` waist.

    Args:
        channels: input and output channels.
        reduction: channel reduction of the waist (the 3x3 conv runs on ``channels //
            reduction`` channels).
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        if channels < 1 or reduction < 1 or channels // reduction < 1:
            raise ValueError(f'ResidualBottleneck: channels ({channels}) // reduction '
                             f'({reduction}) must be >= 1')
        mid = channels // reduction
        self.block = nn.Sequential(
            nn.Conv2d(channels, mid, 1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)
