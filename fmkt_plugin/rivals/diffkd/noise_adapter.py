"""Adaptive noise matching of DiffKD: how noisy a student feature looks, per sample."""
from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_int
from .bottleneck import ResidualBottleneck
from .checks import check_kernel_size

__all__ = ['NoiseAdapter']


@register_model()
class NoiseAdapter(nn.Module):
    """Predicts, per sample, the weight ``gamma`` in (0, 1) of the feature in its noisy mix.

    DiffKD (Huang et al., NeurIPS 2023) treats the student feature as a noisy teacher
    feature whose noise level is unknown; this module estimates it so that the denoiser
    starts from ``gamma * x + (1 - gamma) * eps``. Body: a residual bottleneck (waist
    ``channels / 8``) and global pooling for maps (``kernel_size=3``) or two 1x1 conv + BN
    layers for ``(B, C, 1, 1)`` vectors (``kernel_size=1``); then a linear layer to two
    logits, ``gamma`` being the softmax weight of the first.

    Args:
        channels: channels of the feature.
        kernel_size: 3 for maps, 1 for vectors.
    """

    def __init__(self, channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        channels = check_int(channels, 'channels', owner='NoiseAdapter')
        if check_kernel_size(kernel_size, 'NoiseAdapter') == 3:
            self.body = nn.Sequential(ResidualBottleneck(channels, reduction=min(8, channels)),
                                      nn.AdaptiveAvgPool2d(1))
        else:
            self.body = nn.Sequential(
                nn.Conv2d(channels, 2 * channels, 1), nn.BatchNorm2d(2 * channels),
                nn.ReLU(inplace=True), nn.Conv2d(2 * channels, channels, 1),
                nn.BatchNorm2d(channels), nn.AdaptiveAvgPool2d(1))
        self.pred = nn.Linear(channels, 2)

    def forward(self, x: Tensor) -> Tensor:
        """``gamma`` of shape ``(B,)`` for a ``(B, C, H, W)`` (or ``(B, C)``) feature."""
        if x.dim() == 2:
            x = x[:, :, None, None]
        return self.pred(self.body(x).flatten(1)).softmax(dim=1)[:, 0]
