"""Learned rescaling: an invertible network whose forward pass makes the LR and whose inverse
makes the HR (IRN, Xiao et al. 2020, "Invertible Image Rescaling", ECCV; collaborative LR
of HCD, Xu et al. 2022, "Downscaled Representation Matters").

The map is a bijection x ↔ (y, z) between an HR field x of C channels and its LR y (C
channels, 1/s the size) plus a high-frequency latent z ((s² − 1)·C channels on the LR
grid). Each ×2 stage (s = 2, 4, 8: log₂ s stages) is

- a Haar wavelet split (Xiao et al. 2020, §3.2): every 2×2 block of each channel becomes
  its mean (the low-pass, LL) and three differences (horizontal, vertical, diagonal),
  ``W = H / 4`` with H the 4×4 matrix of ±1 of the Haar transform, so the inverse is Hᵀ;
  the LL channels come first. At initialisation the LR is thus the block mean exactly;
- ``depth`` affine coupling blocks (their eq. 1–2, the ``InvBlockExp`` of their code):
  the C low-pass channels x₁ and the rest x₂ give
  y₁ = x₁ + φ(x₂), y₂ = x₂ ⊙ exp(ρ(y₁)) + η(y₁), ρ = clamp · (2 sigmoid(·) − 1),
  inverted exactly by x₂ = (y₂ − η(y₁)) ⊙ exp(−ρ(y₁)), x₁ = y₁ − φ(x₂). φ, ρ, η are
  three-layer 3×3 convolution nets of ``width`` hidden channels whose last layer starts at
  zero, so each block starts as the identity.

``downscale(hr)`` is the forward map, ``(lr, z)``; ``upscale(lr, z)`` its inverse. The
module's ``forward(lr)`` is what a sweep evaluates, a downscaling of the degradation's LR:
``upscale(lr, z)`` with z ~ N(0, τ² I) drawn (τ = ``temperature``, 1 as in IRN; 0 takes
the prior's mode, one deterministic downscaling), and ``sample(lr, members)`` ``(B, M, C, H, W)``
draws members by independent z, so the family yields ensembles like the stochastic ones.

Training (``training_loss(lr, hr)``, IRN's objective, §3.3 with per-element means; the
weights are the options): the LR guidance ‖ŷ − y‖² between the network's LR ŷ and the
run's LR input y (the degradation's LR: the block mean by default), weighted by
``guide_weight``; the HR reconstruction ‖upscale(ŷ, z′) − x‖², z′ ~ N(0, I); and the
distribution matching of z, weighted by ``distr_weight``: IRN's simplified form, the
cross-entropy of z under N(0, I) up to constants, ½E[z²] (``distribution: ce``), or the
moments of z against N(0, I), (mean z)² + (var z − 1)² per channel (``moments``).

Collaborative LR (HCD, Xu et al. 2022, §3.2), ``collaborative_steps`` k > 0: before the
inverse, the LR itself takes k gradient steps on ½‖upscale(y, z) − x‖²/s² (the
reconstruction error per LR pixel; ``collaborative_lr`` the step), which needs the HR,
so it serves rescaling: the reconstruction term of training (the LR's offset is added as a
constant, gradients still reach the downscaler) and ``val_recon_rmse``.

``rescaling_metrics(lr, hr)`` is what the training loop records besides the downscaling
metrics: ``val_lr_rmse`` (the network's LR against the run's LR input) and
``val_recon_rmse`` (HR reconstructed from its own LR, z drawn).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from scalelab._errors import ScalelabError

DISTRIBUTIONS = ("ce", "moments")

# rows: LL, detail along width, detail along height, diagonal; columns: the 2×2 block's
# pixels (0,0), (0,1), (1,0), (1,1) in pixel_unshuffle's order
_HAAR = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0],
                      [1.0, 1.0, -1.0, -1.0], [1.0, -1.0, -1.0, 1.0]])


def haar_split(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` → ``(B, 4C, H/2, W/2)``: each 2×2 block's mean and its three
    Haar differences (divided by 4); the C block means first, then each detail of all C."""
    batch, channels, height, width = x.shape
    blocks = F.pixel_unshuffle(x, 2).reshape(batch, channels, 4, height // 2, width // 2)
    out = torch.einsum("kp,bcphw->bkchw", _HAAR.to(x), blocks) / 4
    return out.reshape(batch, 4 * channels, height // 2, width // 2)


def haar_merge(y: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`haar_split` (Hᵀ, since H·Hᵀ = 4 I)."""
    batch, channels4, height, width = y.shape
    channels = channels4 // 4
    parts = y.reshape(batch, 4, channels, height, width)
    blocks = torch.einsum("kp,bkchw->bcphw", _HAAR.to(y), parts)
    return F.pixel_shuffle(blocks.reshape(batch, 4 * channels, height, width), 2)


def _subnet(c_in: int, c_out: int, width: int) -> nn.Sequential:
    net = nn.Sequential(nn.Conv2d(c_in, width, 3, padding=1), nn.LeakyReLU(0.2),
                        nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2),
                        nn.Conv2d(width, c_out, 3, padding=1))
    nn.init.zeros_(net[-1].weight)  # each coupling starts as the identity
    nn.init.zeros_(net[-1].bias)
    return net


class Coupling(nn.Module):
    """IRN's affine coupling block (Xiao et al. 2020, eq. 1–2) on ``split`` + the rest."""

    def __init__(self, channels: int, split: int, width: int, clamp: float = 1.0):
        super().__init__()
        self.split, self.clamp = split, clamp
        self.phi = _subnet(channels - split, split, width)
        self.rho = _subnet(split, channels - split, width)
        self.eta = _subnet(split, channels - split, width)

    def _log_scale(self, y1: torch.Tensor) -> torch.Tensor:
        return self.clamp * (torch.sigmoid(self.rho(y1)) * 2 - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = x[:, :self.split], x[:, self.split:]
        y1 = x1 + self.phi(x2)
        y2 = x2 * torch.exp(self._log_scale(y1)) + self.eta(y1)
        return torch.cat([y1, y2], dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y1, y2 = y[:, :self.split], y[:, self.split:]
        x2 = (y2 - self.eta(y1)) * torch.exp(-self._log_scale(y1))
        x1 = y1 - self.phi(x2)
        return torch.cat([x1, x2], dim=1)


class IRN(nn.Module):
    def __init__(self, width: int = 16, depth: int = 2, scale: int = 4, channels: int = 1,
                 in_channels: int | None = None, guide_weight: float = 1.0,
                 distr_weight: float = 1.0, distribution: str = "ce", clamp: float = 1.0,
                 collaborative_steps: int = 0, collaborative_lr: float = 0.25,
                 temperature: float = 1.0):
        super().__init__()
        in_channels = channels if in_channels is None else in_channels
        if in_channels != channels:
            raise ScalelabError(f"irn: the LR of an invertible rescaling holds the target's "
                                f"channels only ({channels}), got in_channels={in_channels}; "
                                f"drop the predictors and static fields, or use another family.")
        stages = int(round(math.log2(scale))) if scale >= 2 else 0
        if 2 ** stages != scale:
            raise ScalelabError(f"irn: the scale must be a power of 2 (each stage halves the "
                                f"grid), got {scale}; choose 2, 4 or 8.")
        if distribution not in DISTRIBUTIONS:
            raise ScalelabError(f"irn: unknown distribution {distribution!r}; valid choices are "
                                f"{', '.join(DISTRIBUTIONS)}.")
        if not isinstance(collaborative_steps, int) or collaborative_steps < 0:
            raise ScalelabError(f"irn: collaborative_steps must be an integer >= 0, got "
                                f"{collaborative_steps!r}.")
        self.scale, self.channels, self.in_channels = scale, channels, in_channels
        self.guide_weight, self.distr_weight = float(guide_weight), float(distr_weight)
        self.distribution = distribution
        self.collaborative_steps, self.collaborative_lr = collaborative_steps, collaborative_lr
        if not temperature >= 0:
            raise ScalelabError(f"irn: temperature must be >= 0, got {temperature!r}.")
        self.temperature = float(temperature)
        self.stages = nn.ModuleList(
            nn.ModuleList(Coupling(channels * 4 ** (s + 1), channels, width, clamp)
                          for _ in range(depth))
            for s in range(stages))

    @property
    def latent_channels(self) -> int:
        """Channels of z: (s² − 1)·C."""
        return (self.scale ** 2 - 1) * self.channels

    def downscale(self, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The forward map: HR ``(B, C, H, W)`` → (LR ``(B, C, H/s, W/s)``, z)."""
        x = hr
        for blocks in self.stages:
            x = haar_split(x)
            for block in blocks:
                x = block(x)
        return x[:, :self.channels], x[:, self.channels:]

    def upscale(self, lr: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The inverse map: (LR, z) → HR."""
        x = torch.cat([lr, z.to(lr.dtype)], dim=1)
        for blocks in reversed(self.stages):
            for block in reversed(blocks):
                x = block.inverse(x)
            x = haar_merge(x)
        return x

    def _latent(self, lr: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """z ~ N(0, τ² I) for an evaluated downscaling (τ = ``temperature``)."""
        shape = (lr.shape[0], self.latent_channels, *lr.shape[-2:])
        if generator is None:
            z = torch.randn(shape, device=lr.device, dtype=lr.dtype)
        else:
            z = torch.randn(shape, generator=generator, dtype=lr.dtype,
                            device=generator.device).to(lr.device)
        return z * self.temperature

    def forward(self, lr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One downscaling of the LR input ``(B, C, H, W)``: the inverse with z ~ N(0, I)."""
        lr = lr[:, :self.channels]
        return self.upscale(lr, self._latent(lr, generator))

    def sample(self, lr: torch.Tensor, members: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``members`` draws of z per input: ``(B, M, C, H, W)``."""
        if members < 1:
            raise ScalelabError(f"members must be >= 1, got {members}.")
        batch = lr.shape[0]
        out = self(lr.repeat_interleave(members, dim=0), generator)
        return out.reshape(batch, members, *out.shape[1:])

    def collaborate(self, lr: torch.Tensor, z: torch.Tensor, hr: torch.Tensor,
                    steps: int | None = None) -> torch.Tensor:
        """HCD's collaborative LR: ``steps`` gradient steps on the LR itself against
        ½‖upscale(y, z) − hr‖²/s² (``collaborative_lr`` the step); detached."""
        steps = self.collaborative_steps if steps is None else steps
        y = lr.detach()
        if steps == 0:
            return y
        target = hr.detach()
        with torch.enable_grad():
            for _ in range(steps):
                y = y.clone().requires_grad_(True)
                diff = self.upscale(y, z.detach()) - target
                if diff.dtype in (torch.float16, torch.bfloat16):  # at least float32
                    diff = diff.float()
                error = 0.5 * (diff ** 2).sum()
                (grad,) = torch.autograd.grad(error / self.scale ** 2, y)
                y = (y - self.collaborative_lr * grad.to(y.dtype)).detach()
        return y

    def compile_parts(self) -> None:
        """``torch.compile`` each coupling's subnets in place: the forward map and its inverse
        both run them compiled (the training loop calls ``training_loss``, not forward)."""
        for blocks in self.stages:
            for block in blocks:
                for net in (block.phi, block.rho, block.eta):
                    net.compile()

    def distribution_loss(self, z: torch.Tensor) -> torch.Tensor:
        """The distribution-matching term of z against N(0, I) (see the module)."""
        z = z.float()
        if self.distribution == "ce":
            return 0.5 * (z ** 2).mean()
        flat = z.transpose(0, 1).reshape(z.shape[1], -1)
        return (flat.mean(1) ** 2 + (flat.var(1, unbiased=False) - 1) ** 2).mean()

    def training_loss(self, lr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """IRN's objective (see the module): reconstruction + LR guidance + distribution."""
        lr_hat, z = self.downscale(hr)
        guide = F.mse_loss(lr_hat.float(), lr[:, :self.channels].float())
        latent = torch.randn_like(z)
        used = lr_hat
        if self.collaborative_steps:
            used = lr_hat + (self.collaborate(lr_hat, latent, hr) - lr_hat.detach())
        recon = F.mse_loss(self.upscale(used, latent).float(), hr.float())
        return recon + self.guide_weight * guide + self.distr_weight * self.distribution_loss(z)

    def rescaling_metrics(self, lr: torch.Tensor, hr: torch.Tensor, to_physical=None,
                          seed: int = 0, members: int = 1, batch_size: int = 256) -> dict:
        """``val_lr_rmse``: the network's LR against the LR input ``lr`` (the run's
        degradation); ``val_recon_rmse``: HR reconstructed from the network's own LR (z drawn
        with ``seed``; collaborative LR if set; the mean of ``members`` draws, as the
        deterministic skill of an ensemble is scored), both in physical units
        (``to_physical``). Missing HR values (NaN) are filled with the bilinear upsampling
        of the LR for the forward map and left out of the score."""
        physical = to_physical or (lambda x: x)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        lr_sq = recon_sq = 0.0
        lr_n = recon_n = 0
        was_training = self.training
        self.eval()
        for i in range(0, hr.shape[0], batch_size):
            lr_b, hr_b = lr[i:i + batch_size, :self.channels], hr[i:i + batch_size]
            valid = torch.isfinite(hr_b)
            if not bool(valid.all()):
                base = F.interpolate(lr_b.float(), size=hr_b.shape[-2:], mode="bilinear",
                                     align_corners=False).to(hr_b.dtype)
                hr_b = torch.where(valid, hr_b, base)
            with torch.no_grad():
                own, _ = self.downscale(hr_b)
                many = own.repeat_interleave(members, dim=0)
                z = self._latent(many, generator)
            refined = self.collaborate(many, z, hr_b.repeat_interleave(members, dim=0))
            with torch.no_grad():
                recon = self.upscale(refined, z)
                recon = recon.reshape(hr_b.shape[0], members, *recon.shape[1:]).mean(1)
            lr_err = (physical(own).double() - physical(lr_b).double()) ** 2
            recon_err = ((physical(recon).double() - physical(hr_b).double()) ** 2)[valid]
            lr_sq += float(lr_err.sum())
            lr_n += lr_err.numel()
            recon_sq += float(recon_err.sum())
            recon_n += recon_err.numel()
        self.train(was_training)
        return {"val_lr_rmse": math.sqrt(lr_sq / max(lr_n, 1)),
                "val_recon_rmse": math.sqrt(recon_sq / max(recon_n, 1))}
