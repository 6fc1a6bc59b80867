"""Linear auto-encoder that compresses the teacher feature for DiffKD."""
from typing import Tuple

from torch import Tensor, nn

from ...registry import register_model

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
        for name, value in (('channels', channels), ('latent_channels', latent_channels)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'LinearAutoEncoder: {name} must be a positive int, got '
                                 f'{value!r}')
        self.encoder = nn.Sequential(nn.Conv2d(channels, latent_channels, 1),
                                     nn.BatchNorm2d(latent_channels))
        self.decoder = nn.Conv2d(latent_channels, channels, 1)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``(hidden, reconstruction)`` of a ``(B, C, H, W)`` map."""
        hidden = self.encoder(x)
        return hidden, self.decoder(hidden)
