"""Conditional diffusion downscaling: an EDM denoiser on a U-Net backbone.

Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative
Models" (EDM). The denoiser is D_θ(x; σ) = c_skip(σ) x + c_out(σ) F_θ(c_in(σ) x;
c_noise(σ)) (their eq. 7) with the preconditioning of Table 1:
c_skip = σ_d² / (σ² + σ_d²), c_out = σ σ_d / √(σ² + σ_d²), c_in = 1 / √(σ² + σ_d²),
c_noise = ¼ ln σ. F_θ is the U-Net family (:class:`~scalelab.models.unet.UNet` of
the same width and depth) on the HR grid; its input is [c_in x, bilinear(lr)] (the
condition, as in SR3, Saharia et al. 2022, and CorrDiff) and the noise level enters as
a positional embedding of c_noise added to every block (Ho et al. 2020, App. B).

Training (Table 1, "Training"): ln σ ~ N(P_mean, P_std²) with P_mean = −1.2,
P_std = 1.2, and the loss λ(σ) ‖D_θ(y + n; σ) − y‖², n ~ N(0, σ² I),
λ(σ) = (σ² + σ_d²) / (σ σ_d)² (eq. 8), averaged over pixels.

Sampling: the time steps σ_i = (σ_max^{1/ρ} + i/(N − 1) (σ_min^{1/ρ} −
σ_max^{1/ρ}))^ρ, σ_N = 0 (eq. 5; σ_min = 0.002, σ_max = 80, ρ = 7), integrated with
Heun's second-order method (Algorithm 1: the deterministic sampler, ``sampler:
heun``) or with the stochastic sampler of Algorithm 2 (``sampler: stochastic``: noise
is added back by the factor γ = min(S_churn/N, √2 − 1) for σ in [S_tmin, S_tmax],
with S_noise; defaults from Table 5, ImageNet-64). The last step is an Euler step, so
a sample of N steps costs 2N − 1 evaluations of D_θ (NFE); each member of an
ensemble is an independent sample.

Residual modelling (option ``residual``): ``none`` diffuses the HR field itself;
``bilinear`` (the default, as the other families predict the residual to the
interpolated input) the residual y − bilinear(lr); ``regression`` the residual on a
deterministic mean μ(lr), a U-Net of the same width and depth trained with MSE, as in
CorrDiff (Mardani et al. 2023, "Residual corrective diffusion modeling for km-scale
atmospheric downscaling", eq. 3). CorrDiff trains μ first and then the diffusion;
here both train together in one run, the diffusion on y − μ(lr) with μ held fixed
(a stop-gradient), and the run's loss is the sum of the two.

``training_loss(lr, hr)`` is the objective a run trains (one denoiser evaluation per
sample, plus μ); ``forward(lr)`` draws one sample and ``sample(lr, members)``
``(B, M, C, H, W)``, like the noise-channel :class:`~scalelab.models.stochastic.Stochastic`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from scalelab._errors import ScalelabError
from scalelab.models.names import RESIDUALS, SAMPLERS
from scalelab.models.unet import UNet


def positional_embedding(values: torch.Tensor, dim: int, max_positions: int = 10000) -> torch.Tensor:
    """Sinusoidal embedding (Vaswani et al. 2017, §3.5) of scalars ``(B,)`` → ``(B, dim)``,
    frequencies from 1 down to 1/max_positions (EDM's ``PositionalEmbedding``)."""
    half = dim // 2
    freqs = torch.arange(half, dtype=torch.float32, device=values.device) / max(half - 1, 1)
    freqs = (1.0 / max_positions) ** freqs
    args = values.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=1)


class EDMDenoiser(nn.Module):
    """D_θ(x; σ | condition) with the EDM preconditioning of Karras et al. 2022, Table 1."""

    def __init__(self, width: int, depth: int, channels: int, sigma_data: float,
                 cond_channels: int | None = None):
        super().__init__()
        self.sigma_data = sigma_data
        self.emb_in = 2 * max(1, width // 2)
        self.embed = nn.Sequential(nn.Linear(self.emb_in, width), nn.SiLU())
        self.net = UNet(width, depth, scale=1, channels=channels,
                        in_channels=channels + (cond_channels or channels), emb_dim=width)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        sigma = sigma.to(torch.float32).reshape(-1, 1, 1, 1)
        sd2 = self.sigma_data**2
        c_skip = sd2 / (sigma**2 + sd2)
        c_out = sigma * self.sigma_data / (sigma**2 + sd2).sqrt()
        c_in = 1 / (sigma**2 + sd2).sqrt()
        c_noise = sigma.flatten().log() / 4
        emb = self.embed(positional_embedding(c_noise, self.emb_in))
        out = self.net.features(torch.cat([(c_in * x).to(cond.dtype), cond], dim=1), emb)
        return c_skip * x + c_out * out.float()


class Diffusion(nn.Module):
    def __init__(self, width: int = 16, depth: int = 2, scale: int = 4, channels: int = 1,
                 in_channels: int | None = None, sigma_data: float = 0.5,
                 p_mean: float = -1.2, p_std: float = 1.2, sigma_min: float = 0.002,
                 sigma_max: float = 80.0, rho: float = 7.0, sampler: str = "heun",
                 sampler_steps: int = 18, s_churn: float = 40.0, s_tmin: float = 0.05,
                 s_tmax: float = 50.0, s_noise: float = 1.003, residual: str = "bilinear"):
        super().__init__()
        # extra input channels (predictors, static fields) condition the denoiser; the
        # family draws its own noise, so it is never wrapped for noise channels
        in_channels = channels if in_channels is None else in_channels
        if not isinstance(in_channels, int) or in_channels < channels:
            raise ScalelabError(f"diffusion: in_channels must be at least channels ({channels}), "
                                f"got {in_channels!r}.")
        if sampler not in SAMPLERS:
            raise ScalelabError(f"diffusion: unknown sampler {sampler!r}; valid choices are "
                                f"{', '.join(SAMPLERS)}.")
        if residual not in RESIDUALS:
            raise ScalelabError(f"diffusion: unknown residual {residual!r}; valid choices are "
                                f"{', '.join(RESIDUALS)}.")
        if not isinstance(sampler_steps, int) or sampler_steps < 1:
            raise ScalelabError(f"diffusion: sampler_steps must be a positive integer, got "
                                f"{sampler_steps!r}.")
        for name, value in (("sigma_data", sigma_data), ("p_std", p_std), ("sigma_min", sigma_min),
                            ("rho", rho)):
            if not value > 0:
                raise ScalelabError(f"diffusion: {name} must be positive, got {value!r}.")
        if not sigma_max > sigma_min:
            raise ScalelabError(f"diffusion: sigma_max ({sigma_max}) must exceed sigma_min "
                                f"({sigma_min}).")
        self.scale, self.channels, self.in_channels = scale, channels, in_channels
        self.p_mean, self.p_std = p_mean, p_std
        self.sigma_min, self.sigma_max, self.rho = sigma_min, sigma_max, rho
        self.sampler, self.sampler_steps, self.residual = sampler, sampler_steps, residual
        self.s_churn, self.s_tmin, self.s_tmax, self.s_noise = s_churn, s_tmin, s_tmax, s_noise
        self.denoiser = EDMDenoiser(width, depth, channels, sigma_data, cond_channels=in_channels)
        self.mean_net = (UNet(width, depth, scale, channels, in_channels=in_channels)
                         if residual == "regression" else None)

    @property
    def evaluations_per_sample(self) -> int:
        """Denoiser evaluations (NFE) of one sample: 2N − 1 for N steps."""
        return 2 * self.sampler_steps - 1

    def sigma_steps(self, device=None) -> torch.Tensor:
        """σ_0 > … > σ_{N−1} of Karras et al. 2022, eq. 5, then σ_N = 0 (float64)."""
        n = self.sampler_steps
        i = torch.arange(n, dtype=torch.float64, device=device)
        lo, hi = self.sigma_min ** (1 / self.rho), self.sigma_max ** (1 / self.rho)
        t = (hi + i / max(n - 1, 1) * (lo - hi)) ** self.rho
        return torch.cat([t, torch.zeros(1, dtype=torch.float64, device=device)])

    def _condition(self, lr: torch.Tensor) -> torch.Tensor:
        """Every input channel on the HR grid: the target's LR first, then any predictors."""
        return F.interpolate(lr, scale_factor=self.scale, mode="bilinear", align_corners=False)

    def _mean(self, lr: torch.Tensor, cond: torch.Tensor) -> torch.Tensor | None:
        if self.residual == "bilinear":
            return cond[:, :self.channels]
        if self.residual == "regression":
            return self.mean_net(lr)
        return None

    def training_loss(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """EDM loss (Karras et al. 2022, eq. 8 with Table 1's p(σ) and λ(σ)) on the field or
        its residual, plus the MSE of the regression mean when ``residual: regression``."""
        cond = self._condition(lr)
        mean = self._mean(lr, cond)
        target = (hr if mean is None else hr - mean.detach()).float()
        batch = target.shape[0]
        sigma = (torch.randn(batch, device=target.device) * self.p_std + self.p_mean).exp()
        noisy = target + torch.randn_like(target) * sigma.view(-1, 1, 1, 1)
        denoised = self.denoiser(noisy, sigma, cond)
        sd2 = self.denoiser.sigma_data**2
        weight = (sigma**2 + sd2) / (sigma * self.denoiser.sigma_data) ** 2
        loss = (weight.view(-1, 1, 1, 1) * (denoised - target) ** 2).mean()
        if self.residual == "regression":
            loss = loss + F.mse_loss(mean.float(), hr.float())
        return loss

    def _randn(self, shape, like: torch.Tensor, generator) -> torch.Tensor:
        if generator is None:
            return torch.randn(shape, device=like.device, dtype=torch.float32)
        return torch.randn(shape, generator=generator, dtype=torch.float32,
                           device=generator.device).to(like.device)

    def sample(self, lr: torch.Tensor, members: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``members`` independent samples per input, ``(B, M, C, H, W)`` (Algorithm 1 or 2)."""
        if members < 1:
            raise ScalelabError(f"members must be >= 1, got {members}.")
        batch = lr.shape[0]
        lr = lr.repeat_interleave(members, dim=0)
        cond = self._condition(lr)
        mean = self._mean(lr, cond)
        steps = self.sigma_steps()  # on the host: the step sizes are Python numbers
        n = self.sampler_steps
        shape = (cond.shape[0], self.channels, *cond.shape[2:])  # the target's channels
        x = self._randn(shape, cond, generator) * float(steps[0])
        for i in range(n):
            t_cur, t_next = float(steps[i]), float(steps[i + 1])
            gamma = 0.0
            if self.sampler == "stochastic" and self.s_tmin <= t_cur <= self.s_tmax:
                gamma = min(self.s_churn / n, math.sqrt(2) - 1)
            t_hat = t_cur + gamma * t_cur
            if gamma > 0:
                x = x + math.sqrt(t_hat**2 - t_cur**2) * self.s_noise * self._randn(
                    x.shape, x, generator)
            d_cur = (x - self.denoiser(x, x.new_full((x.shape[0],), t_hat), cond)) / t_hat
            x_next = x + (t_next - t_hat) * d_cur
            if i < n - 1:  # Heun's correction; the last step (to σ = 0) stays Euler
                d_next = (x_next - self.denoiser(x_next, x.new_full((x.shape[0],), t_next),
                                                 cond)) / t_next
                x_next = x + (t_next - t_hat) * (0.5 * d_cur + 0.5 * d_next)
            x = x_next
        out = x if mean is None else x + mean.float()
        return out.reshape(batch, members, *out.shape[1:])

    def compile_parts(self) -> None:
        """``torch.compile`` the denoiser (and the mean network) in place: the networks run
        compiled, the sampler's Python loop stays eager, the state dict keeps its keys."""
        self.denoiser.compile()
        if self.mean_net is not None:
            self.mean_net.compile()

    def forward(self, lr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One sample per input, ``(B, C, H, W)``."""
        return self.sample(lr, 1, generator)[:, 0]
