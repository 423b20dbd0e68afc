"""Stochastic variant of a network family: noise injected as extra input channels.

The network sees ``[lr, z]`` with z ~ N(0, 1) of ``noise_channels`` channels on the
LR grid, so each draw of z gives one ensemble member (the generator of a conditional
GAN or of a CRPS-trained ensemble, e.g. Leinonen et al. 2021; Lang et al. 2024,
AIFS-CRPS, who inject noise into the network). ``forward(lr)`` returns one member
``(B, C, H, W)``; ``sample(lr, members)`` returns ``(B, M, C, H, W)``.
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
