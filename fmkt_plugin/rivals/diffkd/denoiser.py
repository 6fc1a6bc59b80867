"""Light noise-prediction model of DiffKD: eps(x_t, t) on a feature map."""
from typing import Union

import torch
from torch import Tensor, nn

from ...models.meta_encoders.time_embedding import SinusoidalTimeEmbedding
from ...registry import register_model
from ...utils.validation import check_int
from .bottleneck import ResidualBottleneck
from .checks import check_kernel_size

__all__ = ['DiffKDDenoiser']


@register_model()
class DiffKDDenoiser(nn.Module):
    """Predicts the noise of a noisy feature at a discrete diffusion timestep.

    The timestep enters additively, as an embedding of ``channels`` values broadcast over the
    positions (the project's :class:`SinusoidalTimeEmbedding` on the integer timestep, with a
    small MLP). The body follows the light model of DiffKD (Huang et al., NeurIPS 2023):

    - ``kernel_size=3`` (feature maps): two residual bottlenecks (waist ``channels / 4``), then
      a 1x1 conv and BatchNorm;
    - ``kernel_size=1`` (vectors such as logits, as ``(B, C, 1, 1)`` maps): 1x1 convs
      ``C -> 4C -> C -> 4C -> C`` with BatchNorm/ReLU between.

    As in the authors' design, every path from the embedding to the output passes a
    BatchNorm, so in training mode a timestep shared by the whole batch (the DDIM steps) only
    shifts the input by a per-channel constant that the batch statistics remove; per-sample
    timesteps (the diffusion loss) and eval mode (running statistics) do see it.

    Args:
        channels: channels of the (latent) feature.
        kernel_size: 3 for maps, 1 for vectors.
        time_embed_dim: sinusoidal features of the timestep embedding.

    Raises:
        ValueError: for an invalid channel count or kernel size.
    """

    def __init__(self, channels: int, kernel_size: int = 3, time_embed_dim: int = 128) -> None:
        super().__init__()
        channels = check_int(channels, 'channels', owner='DiffKDDenoiser')
        kernel_size = check_kernel_size(kernel_size, 'DiffKDDenoiser')
        time_embed_dim = check_int(time_embed_dim, 'time_embed_dim', owner='DiffKDDenoiser')
        self.channels = channels
        self.kernel_size = kernel_size
        # integer timesteps 0..T-1 go in unscaled: the frequency ladder suits integers
        self.time_embed = SinusoidalTimeEmbedding(time_embed_dim, out_channels=channels,
                                                  time_scale=1.0)
        if kernel_size == 3:
            self.body = nn.Sequential(
                ResidualBottleneck(channels), ResidualBottleneck(channels),
                nn.Conv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        else:
            wide = 4 * channels
            self.body = nn.Sequential(
                nn.Conv2d(channels, wide, 1), nn.BatchNorm2d(wide), nn.ReLU(inplace=True),
                nn.Conv2d(wide, channels, 1), nn.BatchNorm2d(channels),
                nn.Conv2d(channels, wide, 1), nn.BatchNorm2d(wide), nn.ReLU(inplace=True),
                nn.Conv2d(wide, channels, 1))

    def forward(self, x: Tensor, t: Union[int, Tensor]) -> Tensor:
        """Predict the noise.

        Args:
            x: noisy feature ``(B, C, H, W)`` (or ``(B, C)``).
            t: integer timestep(s): an int, a 0-d or a ``(B,)`` tensor.

        Returns:
            The noise prediction, shaped like ``x``.
        """
        if x.dim() not in (2, 4) or x.shape[1] != self.channels:
            raise ValueError(f'DiffKDDenoiser: expected (B, {self.channels}[, H, W]), got '
                             f'{tuple(x.shape)}')
        vector = x.dim() == 2
        if vector:
            x = x[:, :, None, None]
        t = torch.as_tensor(t, device=x.device)
        temb = self.time_embed(t.float(), batch_size=x.shape[0]).to(x.dtype)
        out = self.body(x + temb[:, :, None, None])
        return out.flatten(1) if vector else out
