"""Residual bottleneck block of the DiffKD denoiser and noise adapter."""
from torch import Tensor, nn

from ...utils.validation import check_int

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
        channels = check_int(channels, 'channels', owner='ResidualBottleneck')
        reduction = check_int(reduction, 'reduction', max_value=channels,
                              owner='ResidualBottleneck')
        mid = channels // reduction
        self.block = nn.Sequential(
            nn.Conv2d(channels, mid, 1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)
