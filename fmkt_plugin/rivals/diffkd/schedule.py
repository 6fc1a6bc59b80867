"""Discrete noise schedule of DDPM/DDIM (noise prediction), as used by DiffKD."""
from typing import NamedTuple, Optional, Union

import torch
from torch import Tensor

from ...registry import register_model
from ...utils.validation import check_int, check_number

__all__ = ['DDIMSchedule', 'NoiseCoefficients']


class NoiseCoefficients(NamedTuple):
    """Coefficients of ``x_t = alpha * x_0 + sigma * eps`` at a discrete timestep.

    Attributes:
        alpha: ``sqrt(alpha_bar_t)``, the weight of the clean sample.
        sigma: ``sqrt(1 - alpha_bar_t)``, the weight of the noise.
    """

    alpha: Tensor
    sigma: Tensor


@register_model()
class DDIMSchedule:
    """Linear-beta DDPM schedule over ``T`` discrete timesteps, with noise (eps) prediction.

    ``beta_i`` rises linearly from ``beta_start`` to ``beta_end`` (i = 0 .. T-1) and
    ``alpha_bar_t = prod_{i <= t} (1 - beta_i)``. Timestep 0 is the (almost) clean end,
    ``T - 1`` the (almost) pure-noise end; a timestep of ``-1`` stands for the clean sample
    itself (``alpha_bar = final_alpha_bar``, 1 by default), the target of the last DDIM step.

    Time runs the other way round from the flow schedules (t=1 student, t=0 teacher): here the
    teacher-like clean feature sits at timestep -1/0 and noise at ``T - 1``.

    Args:
        num_train_timesteps: ``T``.
        beta_start: first beta.
        beta_end: last beta.
        final_alpha_bar: ``alpha_bar`` of timestep -1 (1.0: the last step lands on the
            predicted clean sample).

    Raises:
        ValueError: for invalid values, naming the field.
    """

    def __init__(self,
                 num_train_timesteps: int = 1000,
                 beta_start: float = 1e-4,
                 beta_end: float = 0.02,
                 final_alpha_bar: float = 1.0) -> None:
        owner = 'DDIMSchedule'
        self.num_train_timesteps = check_int(num_train_timesteps, 'num_train_timesteps',
                                             min_value=2, owner=owner)
        self.beta_start = check_number(beta_start, 'beta_start', positive=True, owner=owner)
        self.beta_end = check_number(beta_end, 'beta_end (not below beta_start)',
                                     min_value=self.beta_start, owner=owner)
        if not self.beta_end < 1.0:  # beta = 1 wipes the signal out in one step
            raise ValueError(f'{owner}: beta_end must be < 1, got {beta_end!r}')
        self.final_alpha_bar = check_number(final_alpha_bar, 'final_alpha_bar', positive=True,
                                            max_value=1.0, owner=owner)
        betas = torch.linspace(self.beta_start, self.beta_end, self.num_train_timesteps,
                               dtype=torch.float64)
        # index 0 holds timestep -1 (the clean end), index t + 1 holds timestep t
        self._alpha_bar = torch.cat([torch.tensor([self.final_alpha_bar], dtype=torch.float64),
                                     torch.cumprod(1.0 - betas, dim=0)])

    @property
    def alphas_cumprod(self) -> Tensor:
        """``alpha_bar_t`` for t = 0 .. T-1 (float64)."""
        return self._alpha_bar[1:].clone()

    def _check(self, t: Tensor) -> Tensor:
        t = torch.as_tensor(t)
        if t.is_floating_point() or t.dtype == torch.bool:
            raise ValueError(f'DDIMSchedule: timesteps must be integers, got dtype {t.dtype}')
        if t.numel() and (int(t.min()) < -1 or int(t.max()) >= self.num_train_timesteps):
            raise ValueError(f'DDIMSchedule: timesteps must lie in [-1, '
                             f'{self.num_train_timesteps - 1}], got {t.min()}..{t.max()}')
        return t.long()

    def alpha_bar(self, t: Union[int, Tensor]) -> Tensor:
        """``alpha_bar`` at integer timesteps ``t`` (-1 allowed), float64, on ``t``'s device."""
        t = self._check(t)
        return self._alpha_bar.to(t.device)[t + 1]

    def __call__(self, t: Union[int, Tensor], like: Optional[Tensor] = None) -> NoiseCoefficients:
        """Signal and noise coefficients at timesteps ``t``.

        Args:
            t: an int, a 0-d or a ``(B,)`` integer tensor.
            like: if given, the coefficients are cast to its dtype/device and shaped to
                broadcast against it (batch first).
        """
        ab = self.alpha_bar(t)
        alpha, sigma = ab.sqrt(), (1.0 - ab).sqrt()
        if like is not None:
            shape = (-1, ) + (1, ) * (like.dim() - 1) if ab.dim() == 1 else ()
            alpha = alpha.to(like.device, like.dtype).reshape(shape)
            sigma = sigma.to(like.device, like.dtype).reshape(shape)
        return NoiseCoefficients(alpha, sigma)

    def add_noise(self, x0: Tensor, noise: Tensor, t: Union[int, Tensor]) -> Tensor:
        """Forward process: ``sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise``."""
        c = self(t, like=x0)
        return c.alpha * x0 + c.sigma * noise

    def predict_x0(self, x_t: Tensor, eps: Tensor, t: Union[int, Tensor]) -> Tensor:
        """Clean sample implied by ``x_t`` and a noise prediction ``eps``."""
        c = self(t, like=x_t)
        return (x_t - c.sigma * eps) / c.alpha

    def sample_timesteps(self, batch_size: int, device=None,
                         generator: Optional[torch.Generator] = None) -> Tensor:
        """Uniform training timesteps in ``[0, T)``, shape ``(batch_size,)``."""
        return torch.randint(0, self.num_train_timesteps, (batch_size, ), device=device,
                             generator=generator)

    def timesteps(self, num_steps: int, stride: Optional[int] = None) -> Tensor:
        """Descending inference grid ``[(num_steps - 1) * stride, ..., stride, 0]``.

        Args:
            num_steps: number of DDIM steps (model evaluations).
            stride: gap between timesteps; default ``T // num_steps`` (the whole chain).
        """
        num_steps = check_int(num_steps, 'num_steps', owner='DDIMSchedule')
        stride = self.num_train_timesteps // num_steps if stride is None else stride
        if not isinstance(stride, int) or stride < 1 or (num_steps - 1) * stride >= \
                self.num_train_timesteps:
            raise ValueError(f'DDIMSchedule: stride {stride!r} with {num_steps} steps leaves '
                             f'[0, {self.num_train_timesteps})')
        return torch.arange(num_steps - 1, -1, -1, dtype=torch.long) * stride

    def __repr__(self) -> str:
        return (f'DDIMSchedule(num_train_timesteps={self.num_train_timesteps}, '
                f'beta_start={self.beta_start}, beta_end={self.beta_end})')
