"""Synthetic multiscale 2-D fields, generated on the fly from a seed.

Gaussian random fields with an isotropic power-law spectrum, P(k) ∝ k^(-slope),
made by colouring white noise in Fourier space (e.g. Lang & Potthoff 2011,
"Fast simulation of Gaussian random fields"). Every sample is a pure function of
(seed, index), so the training-set size D can grow without changing the samples
already drawn, and the validation set never depends on D.
"""

from __future__ import annotations

import math

import torch


def _spectral_filter(size: int, slope: float, device, dtype) -> torch.Tensor:
    k = torch.fft.fftfreq(size, d=1.0 / size, device=device, dtype=dtype)
    kx, ky = torch.meshgrid(k, k, indexing="ij")
    kk = torch.sqrt(kx**2 + ky**2)
    kk[0, 0] = 1.0
    # amplitude ∝ k^(-slope/2) so that the power spectrum ∝ k^(-slope) (2-D radial density adds k)
    amp = kk ** (-(slope + 1.0) / 2.0)
    amp[0, 0] = 0.0
    return amp


def gaussian_random_field(
    n: int,
    size: int,
    slope: float = 3.0,
    seed: int = 0,
    start: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``n`` fields of ``size × size`` with radially averaged spectrum E(k) ∝ k^(-slope).

    Sample ``i`` is drawn from its own generator seeded by ``(seed, start + i)``, so
    samples are reproducible one by one. Returns a tensor ``(n, 1, size, size)``
    normalised to zero mean and unit variance per field.
    """
    amp = _spectral_filter(size, slope, device, torch.float64)
    out = torch.empty(n, 1, size, size, dtype=torch.float64, device=device)
    for i in range(n):
        g = torch.Generator(device="cpu").manual_seed(_mix(seed, start + i))
        noise = torch.randn(size, size, generator=g, dtype=torch.float64).to(device)
        field = torch.fft.ifft2(torch.fft.fft2(noise) * amp).real
        field = (field - field.mean()) / field.std().clamp_min(1e-12)
        out[i, 0] = field
    return out.to(dtype)


def _mix(seed: int, index: int) -> int:
    """A stable 63-bit seed for sample ``index`` of stream ``seed`` (splitmix64-style)."""
    z = (seed * 0x9E3779B97F4A7C15 + index + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


def radial_power_spectrum(fields: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially averaged power spectrum of ``(..., H, W)`` square fields: (k, E(k))."""
    size = fields.shape[-1]
    f = torch.fft.fft2(fields.to(torch.float64))
    power = (f.abs() ** 2).reshape(-1, size, size).mean(0)
    k = torch.fft.fftfreq(size, d=1.0 / size, dtype=torch.float64)
    kx, ky = torch.meshgrid(k, k, indexing="ij")
    kr = torch.sqrt(kx**2 + ky**2).round().long()
    kmax = size // 2
    sums = torch.zeros(kmax + 1, dtype=torch.float64).scatter_add_(
        0, kr.clamp_max(kmax).flatten(), power.flatten()
    )
    counts = torch.zeros(kmax + 1, dtype=torch.float64).scatter_add_(
        0, kr.clamp_max(kmax).flatten(), torch.ones_like(power.flatten())
    )
    spectrum = sums / counts.clamp_min(1) * (2 * math.pi * torch.arange(kmax + 1))
    return torch.arange(1, kmax), spectrum[1:kmax]


def precipitation_field(
    n: int,
    size: int,
    slope: float = 3.0,
    wet_fraction: float = 0.3,
    sigma: float = 1.0,
    seed: int = 0,
    start: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Intermittent, non-negative, heavy-tailed fields built from a Gaussian random field.

    A censored log-normal model (e.g. Bárdossy & Plate 1992; Guillot & Lebel 1999):
    rain = max(exp(σ·g) − exp(σ·g_q), 0) with g a GRF of spectral ``slope`` and g_q its
    (1 − ``wet_fraction``) quantile, so about ``wet_fraction`` of pixels are wet and the
    wet intensities have a log-normal tail. Returned in units of the wet-pixel mean.
    """
    g = gaussian_random_field(n, size, slope, seed, start, device, torch.float64)
    threshold = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(1.0 - wet_fraction))
    rain = (torch.exp(sigma * g) - math.exp(sigma * float(threshold))).clamp_min(0.0)
    return rain.to(dtype)
