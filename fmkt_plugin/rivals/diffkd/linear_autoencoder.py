"""Linear auto-encoder that compresses the teacher feature for DiffKD."""
from typing import Tuple

from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_int

__all__ = ['LinearAutoEncoder']


@register_model()
class LinearAutoEncoder(nn.Module):
    """``hidden = BN(1x1 conv(x))`` (``channels -> latent_channels``), ``recon = 1x1 conv``.

    DiffKD runs its diffusion model on this smaller latent to save computation; the latent is
    trained by the reconstruction loss only.

    Args:
        channels: channels of the teacher feature.
        latent_channels: channels of the latent.
    """

    def __init__(self, channels: int, latent_channels: int) -> None:
        super().__init__()
        channels = check_int(channels, 'channels', owner='LinearAutoEncoder')
        latent_channels = check_int(latent_channels, 'latent_channels',
                                    owner='LinearAutoEncoder')
        self.encoder = nn.Sequential(nn.Conv2d(channels, latent_channels, 1),
                                     nn.BatchNorm2d(latent_channels))
        self.decoder = nn.Conv2d(latent_channels, channels, 1)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``(hidden, reconstruction)`` of a ``(B, C, H, W)`` map."""
        hidden = self.encoder(x)
        return hidden, self.decoder(hidden)
