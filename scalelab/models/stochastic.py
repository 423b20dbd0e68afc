"""Stochastic variant of a network family: noise injected as extra input channels.

The network sees ``[lr, z]`` with z ~ N(0, 1) of ``noise_channels`` channels on the
LR grid, so each draw of z gives one ensemble member (the generator of a conditional
GAN or of a CRPS-trained ensemble, e.g. Leinonen et al. 2021; Lang et al. 2024,
AIFS-CRPS, who inject noise into the network). ``forward(lr)`` returns one member
``(B, C, H, W)``; ``sample(lr, members)`` returns ``(B, M, C, H, W)``.

:class:`LatentPerturbed` is the VAE perturbation of FuXi-ENS (Zhong et al. 2024): the
injected channels are a latent drawn from a distribution an encoder predicts from the
input, so the ensemble's spread depends on the flow; its loss adds the latent's KL
(``crps_fair + 0.1*kl``).
"""

from __future__ import annotations

import torch
from torch import nn

from scalelab._errors import ScalelabError


class Stochastic(nn.Module):
    def __init__(self, base: nn.Module, noise_channels: int = 1):
        super().__init__()
        self.base = base
        self.noise_channels = noise_channels
        self.scale = base.scale

    def _noise(self, lr: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        shape = (lr.shape[0], self.noise_channels, *lr.shape[-2:])
        if generator is None:
            return torch.randn(shape, device=lr.device, dtype=lr.dtype)
        return torch.randn(shape, generator=generator, dtype=lr.dtype,
                           device=generator.device).to(lr.device)

    def forward(self, lr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.base(torch.cat([lr, self._noise(lr, generator)], dim=1))

    def sample(self, lr: torch.Tensor, members: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``members`` independent draws for each input: ``(B, M, C, H, W)``."""
        if members < 1:
            raise ScalelabError(f"members must be >= 1, got {members}.")
        batch = lr.shape[0]
        repeated = lr.repeat_interleave(members, dim=0)
        out = self(repeated, generator)
        return out.reshape(batch, members, *out.shape[1:])


class LatentPerturbed(Stochastic):
    """Stochastic variant whose injected channels are a VAE latent (FuXi-ENS, Zhong et al. 2024).

    An encoder (two 3×3 convolutions of the network's ``width``, a GELU between) maps the
    input to a latent mean μ and log-variance log σ² of ``latent_channels`` channels on the
    LR grid; each member draws z = μ + σ·ε with ε ~ N(0, I) of its own (the
    reparameterisation of Kingma & Welling 2014) and the network sees ``[lr, z]``. The last
    draw's ``latent = (μ, log σ²)`` stays on the module for the loss's ``kl`` term (its KL
    against N(0, I)). The encoder's last convolution starts at zero, so before training
    z ~ N(0, I): the network starts as the noise-injected variant. FuXi-ENS's prior is
    the input's own encoder and its posterior sees the target; here the prior is N(0, I),
    so the latent's KL pulls the perturbation towards plain noise unless spread pays off
    in the CRPS. The encoder is part of the network at inference, so its parameters
    count in N.
    """

    def __init__(self, base: nn.Module, in_channels: int, latent_channels: int, width: int):
        super().__init__(base, latent_channels)
        self.encoder = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.GELU(),
                                     nn.Conv2d(width, 2 * latent_channels, 3, padding=1))
        nn.init.zeros_(self.encoder[-1].weight)
        nn.init.zeros_(self.encoder[-1].bias)
        self.latent: tuple[torch.Tensor, torch.Tensor] | None = None

    def _noise(self, lr: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        mean, log_var = self.encoder(lr).chunk(2, dim=1)
        log_var = log_var.clamp(-30.0, 20.0)  # exp stays finite in fp32 and bf16
        self.latent = (mean, log_var)
        return mean + torch.exp(0.5 * log_var) * super()._noise(lr, generator)
