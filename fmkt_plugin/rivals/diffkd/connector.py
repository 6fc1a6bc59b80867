"""DiffKD: denoise the student feature with a diffusion model trained on the teacher's."""
from typing import NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from mmrazor.models.architectures.connectors.base_connector import BaseConnector
from torch import Tensor, nn

from ...models.builder import build_component
from ...registry import register_model
from ...utils.validation import check_int, check_number
from .checks import check_kernel_size
from .denoiser import DiffKDDenoiser
from .linear_autoencoder import LinearAutoEncoder
from .noise_adapter import NoiseAdapter
from .schedule import DDIMSchedule
from .solver import DDIMSolver

__all__ = ['DiffKDConnector', 'DiffKDOutput']

_OWNER = 'DiffKDConnector'


class DiffKDOutput(NamedTuple):
    """What one DiffKD pass gives the loss.

    Attributes:
        denoised: the denoised student feature, in the (latent) teacher space.
        target: the teacher feature it is matched with (the detached AE latent with an AE).
        diffusion_loss: noise-prediction MSE of the denoiser on the noised target.
        ae_loss: reconstruction MSE of the auto-encoder (None without one).
        gamma: the noise adapter's per-sample feature weight, ``(B,)``.
    """

    denoised: Tensor
    target: Tensor
    diffusion_loss: Tensor
    ae_loss: Optional[Tensor]
    gamma: Tensor


@register_model()
class DiffKDConnector(BaseConnector):
    """DiffKD (Huang et al., NeurIPS 2023) as schedule + solver + noise model + adapters.

    Student side (``forward`` / :meth:`denoise`): a 1x1 conv maps the student feature to the
    teacher's (latent) channels; the :class:`NoiseAdapter` predicts ``gamma`` per sample and
    the start state is ``gamma * x + (1 - gamma) * eps`` (eps ~ N(0, I)); ``num_steps`` DDIM
    steps of the :class:`DiffKDDenoiser` run from timestep ``(num_steps - 1) * stride`` to the
    clean end, with ``stride = T // round(num_steps / denoise_span)`` (the default
    ``denoise_span = 0.5`` walks the less noisy half of a ``2 * num_steps``-step grid, as the
    authors' code does); a projection, 1x1 conv + BatchNorm as in the authors' current code
    (``proj_norm=False``: the conv alone, as in their first release), maps the result to the
    output. Gradients flow through all steps into the student and the denoiser.

    Teacher side (:meth:`forward_pair`): with ``ae_channels`` a :class:`LinearAutoEncoder`
    (1x1 conv + BN encoder to a BN-normalised latent, 1x1 conv decoder) compresses the
    teacher feature, its reconstruction MSE is ``ae_loss`` and its detached latent is the
    target; without, the teacher feature is. The denoiser is trained on the target with the
    usual noise-prediction loss at a uniform random timestep (``diffusion_loss``).

    One instance serves one branch: the authors run one on the last feature map (kernel 3,
    with the auto-encoder) and a second one on the logits (kernel 1, no auto-encoder).

    Used alone as an MMRazor connector on the student feature it returns the denoised feature;
    :class:`DiffKDLoss` calls :meth:`forward_pair` to get the auxiliary losses as well.

    Args:
        student_channels: channels of the student feature.
        teacher_channels: channels of the teacher feature.
        kernel_size: 3 for feature maps, 1 for vectors (e.g. logits).
        num_steps: DDIM steps of the student-side denoising.
        denoise_span: fraction of the diffusion chain those steps cover, in (0, 1].
        ae_channels: latent channels of the teacher auto-encoder (None: no auto-encoder).
        schedule: :class:`DDIMSchedule` config (default: 1000 linear-beta timesteps).
        denoiser: noise-model config (default ``DiffKDDenoiser``; ``channels`` and
            ``kernel_size`` are filled in).
        use_noise_adapter: mix the student feature with noise at the adapted level (True) or
            start the denoising from the feature itself (False).
        proj_norm: BatchNorm after the projection's 1x1 conv (state-dict keys ``proj.0.*``
            and ``proj.1.*``; without it the conv alone, keys ``proj.*``).
        init_cfg: mmengine init config.

    Raises:
        ValueError: at build time, for invalid values, naming the field.
    """

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 kernel_size: int = 3,
                 num_steps: int = 5,
                 denoise_span: float = 0.5,
                 ae_channels: Optional[int] = None,
                 schedule: Union[dict, DDIMSchedule, None] = None,
                 denoiser: Optional[dict] = None,
                 use_noise_adapter: bool = True,
                 proj_norm: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        student_channels = check_int(student_channels, 'student_channels', owner=_OWNER)
        teacher_channels = check_int(teacher_channels, 'teacher_channels', owner=_OWNER)
        self.num_steps = check_int(num_steps, 'num_steps', owner=_OWNER)
        kernel_size = check_kernel_size(kernel_size, _OWNER)
        self.denoise_span = check_number(denoise_span, 'denoise_span', positive=True,
                                         max_value=1.0, owner=_OWNER)
        self.schedule = build_component(schedule or dict(type=DDIMSchedule), 'schedule',
                                        base=DDIMSchedule)
        self.solver = DDIMSolver()
        grid = max(self.num_steps, int(round(self.num_steps / self.denoise_span)))
        self.stride = self.schedule.num_train_timesteps // grid
        if self.stride < 1:
            raise ValueError(f'{_OWNER}: num_steps={num_steps} exceeds the '
                             f'{self.schedule.num_train_timesteps} timesteps of the schedule')

        self.ae = None
        latent = teacher_channels
        if ae_channels is not None:
            latent = check_int(ae_channels, 'ae_channels', owner=_OWNER)
            self.ae = LinearAutoEncoder(teacher_channels, latent)
        self.student_channels, self.teacher_channels = student_channels, teacher_channels
        self.latent_channels = latent
        self.kernel_size = kernel_size
        self.trans = nn.Conv2d(student_channels, latent, 1)
        denoiser_cfg = dict(type=DiffKDDenoiser) if denoiser is None else dict(denoiser)
        self.denoiser = build_component(denoiser_cfg, 'denoiser', base=nn.Module,
                                        channels=latent, kernel_size=kernel_size)
        self.noise_adapter = NoiseAdapter(latent, kernel_size) if use_noise_adapter else None
        self.proj_norm = bool(proj_norm)
        conv = nn.Conv2d(latent, latent, 1)
        self.proj = nn.Sequential(conv, nn.BatchNorm2d(latent)) if self.proj_norm else conv
        self.last_gamma: Optional[Tensor] = None

    def timesteps(self) -> Tensor:
        """The DDIM grid of the student-side denoising (descending)."""
        return self.schedule.timesteps(self.num_steps, self.stride)

    @staticmethod
    def _as_map(x: Tensor, field: str) -> Tensor:
        if x.dim() == 2:
            return x[:, :, None, None]
        if x.dim() != 4:
            raise ValueError(f'{_OWNER}: {field} must be (B, C) or (B, C, H, W), got shape '
                             f'{tuple(x.shape)}')
        return x

    def denoise(self, student_feat: Tensor) -> Tensor:
        """The denoised student feature (latent channels), shaped like the input map."""
        vector = student_feat.dim() == 2
        x = self.trans(self._as_map(student_feat, 'student feature'))
        if self.noise_adapter is not None:
            gamma = self.noise_adapter(x)
            g = gamma[:, None, None, None]
            x = g * x + (1.0 - g) * torch.randn_like(x)
        else:
            gamma = torch.ones(x.shape[0], device=x.device, dtype=x.dtype)
        self.last_gamma = gamma.detach()
        out = self.proj(self.solver(self.denoiser, x, self.schedule, self.timesteps()).sample)
        return out.flatten(1) if vector else out

    def diffusion_loss(self, target: Tensor) -> Tensor:
        """Noise-prediction MSE of the denoiser on ``target`` (detached) at random timesteps."""
        x0 = self._as_map(target, 'teacher feature').detach()
        noise = torch.randn_like(x0)
        t = self.schedule.sample_timesteps(x0.shape[0], device=x0.device)
        return F.mse_loss(self.denoiser(self.schedule.add_noise(x0, noise, t), t), noise)

    def forward_pair(self, student_feat: Tensor, teacher_feat: Tensor) -> DiffKDOutput:
        """Denoise the student feature and compute the auxiliary losses on the teacher's.

        Random draws, in this order: the noise of the adapted start state, then the noise and
        the timesteps of the diffusion loss.

        Args:
            student_feat: ``(B, C_s, H, W)`` (or ``(B, C_s)`` with ``kernel_size=1``).
            teacher_feat: ``(B, C_t, H, W)`` (or ``(B, C_t)``), same batch and size.

        Returns:
            :class:`DiffKDOutput`; ``denoised`` and ``target`` have the shape of the
            (latent) teacher feature.
        """
        if student_feat.shape[0] != teacher_feat.shape[0] or \
                student_feat.shape[2:] != teacher_feat.shape[2:]:
            raise ValueError(f'{_OWNER}: student feature {tuple(student_feat.shape)} and '
                             f'teacher feature {tuple(teacher_feat.shape)} differ in batch or '
                             'spatial size')
        if teacher_feat.shape[1] != self.teacher_channels:
            raise ValueError(f'{_OWNER}: teacher feature has {teacher_feat.shape[1]} '
                             f'channels, teacher_channels is {self.teacher_channels}')
        vector = teacher_feat.dim() == 2
        teacher_map = self._as_map(teacher_feat, 'teacher feature').detach()
        ae_loss = None
        if self.ae is not None:
            hidden, recon = self.ae(teacher_map)
            ae_loss = F.mse_loss(recon, teacher_map)
            target = hidden.detach()
        else:
            target = teacher_map
        denoised = self.denoise(student_feat)
        diff_loss = self.diffusion_loss(target)
        if vector:
            target = target.flatten(1)
        return DiffKDOutput(denoised, target, diff_loss, ae_loss, self.last_gamma)

    def forward_train(self, feature: Tensor) -> Tensor:
        """MMRazor connector call: the denoised student feature."""
        if feature.shape[1] != self.student_channels:
            raise ValueError(f'{_OWNER}: student feature has {feature.shape[1]} channels, '
                             f'student_channels is {self.student_channels}')
        return self.denoise(feature)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['last_gamma'] = None
        return state
