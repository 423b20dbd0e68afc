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

from scalelab._errors import ScalelabError


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
    standardise: bool = True,
) -> torch.Tensor:
    """``n`` fields of ``size × size`` with radially averaged spectrum E(k) ∝ k^(-slope).

    Sample ``i`` is drawn from its own generator seeded by ``(seed, start + i)``, so
    samples are reproducible one by one. Returns a tensor ``(n, 1, size, size)``
    normalised to zero mean and unit variance per field (``standardise=True``), or
    divided by the exact pixel standard deviation of the process, √(Σ_k A_k² / H W),
    so that every pixel is exactly N(0, 1) over the ensemble (``standardise=False``).
    """
    amp = _spectral_filter(size, slope, device, torch.float64)
    process_std = torch.sqrt((amp**2).sum() / size**2)
    out = torch.empty(n, 1, size, size, dtype=torch.float64, device=device)
    for i in range(n):
        g = torch.Generator(device="cpu").manual_seed(_mix(seed, start + i))
        noise = torch.randn(size, size, generator=g, dtype=torch.float64).to(device)
        field = torch.fft.ifft2(torch.fft.fft2(noise) * amp).real
        if standardise:
            field = (field - field.mean()) / field.std().clamp_min(1e-12)
        else:
            field = field / process_std
        out[i, 0] = field
    return out.to(dtype)


def _mix(seed: int, index: int) -> int:
    """A stable 63-bit seed for sample ``index`` of stream ``seed`` (splitmix64-style)."""
    z = (seed * 0x9E3779B97F4A7C15 + index + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


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
    rain = max(exp(σ·g) − exp(σ·z), 0) / m with g a GRF of spectral ``slope`` whose
    pixels are exactly N(0, 1) over the ensemble (not standardised per field),
    z = Φ⁻¹(1 − ``wet_fraction``) its quantile, so about ``wet_fraction`` of pixels are
    wet (the rest exactly 0) and the wet intensities have a shifted log-normal tail,
    P(rain > r) = 1 − Φ(log(m·r + e^{σz}) / σ). ``m`` is the wet-pixel mean in closed
    form, m = e^{σ²/2}(1 − Φ(z − σ)) / (1 − Φ(z)) − e^{σz}, so the fields come in units
    of the mean wet-pixel intensity.
    """
    if not 0.0 < wet_fraction < 1.0:
        raise ScalelabError(f"wet_fraction must be in (0, 1), got {wet_fraction!r}.")
    if not sigma > 0:
        raise ScalelabError(f"sigma must be positive, got {sigma!r}.")
    g = gaussian_random_field(n, size, slope, seed, start, device, torch.float64,
                              standardise=False)
    normal = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64),
                                        torch.tensor(1.0, dtype=torch.float64))
    z = float(normal.icdf(torch.tensor(1.0 - wet_fraction, dtype=torch.float64)))
    tail = float(1.0 - normal.cdf(torch.tensor(z - sigma, dtype=torch.float64)))
    wet_mean = math.exp(sigma**2 / 2) * tail / wet_fraction - math.exp(sigma * z)
    rain = (torch.exp(sigma * g) - math.exp(sigma * z)).clamp_min(0.0) / wet_mean
    return rain.to(dtype)


def turbulence_field(
    n: int,
    size: int,
    seed: int = 0,
    start: int = 0,
    viscosity: float = 1e-3,
    time: float = 1.0,
    peak_wavenumber: float = 4.0,
    normalise: bool = True,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Vorticity snapshots of decaying 2-D turbulence from a pseudo-spectral solver.

    Solves the 2-D incompressible Navier–Stokes equations in vorticity form,
    ∂ω/∂t + u·∇ω = ν∇²ω on the periodic square [0, 2π)², with u = (∂ψ/∂y, −∂ψ/∂x) and
    ∇²ψ = −ω (e.g. Boffetta & Ecke 2012, eq. 2). Spatial derivatives are spectral, with
    the 2/3 rule against aliasing (Orszag 1971); time stepping is Heun's RK2 with an
    integrating factor for the viscous term. Sample ``i`` starts from a random vorticity
    with energy spectrum ∝ k⁴ exp(−(k/k₀)²) seeded by ``(seed, start + i)`` (unit r.m.s.
    velocity) and is integrated to ``time``; the step is fixed (CFL 0.3 for |u| ≤ 3), so
    every sample is independent of the batch it is drawn in. Returns ``(n, 1, size,
    size)`` vorticity normalised to zero mean and unit variance per field
    (``normalise=False``: the raw vorticity).
    """
    f64 = torch.float64
    k = torch.fft.fftfreq(size, d=1.0 / size, device=device, dtype=f64)
    kx, ky = torch.meshgrid(k, k, indexing="ij")
    kk = torch.sqrt(kx**2 + ky**2)
    # initial vorticity: energy spectrum E(k) ∝ k^4 exp(-(k/k0)^2); |ω̂|² ∝ k E(k)
    amp = torch.sqrt(kk**5 * torch.exp(-((kk / peak_wavenumber) ** 2)))
    amp[0, 0] = 0.0
    half = size // 2 + 1  # real FFT: the last axis keeps the non-negative wavenumbers
    kx, ky, amp = kx[:, :half], ky[:, :half].abs(), amp[:, :half]
    ky[:, -1] = ky[:, -1].abs()
    k2 = kx**2 + ky**2
    k2_safe = torch.where(k2 == 0, torch.ones_like(k2), k2)
    dealias = ((kx.abs() < size / 3) & (ky.abs() < size / 3)).to(f64)
    omega_hat = torch.empty(n, size, half, dtype=torch.complex128, device=device)
    for i in range(n):
        g = torch.Generator(device="cpu").manual_seed(_mix(seed, start + i))
        noise = torch.randn(size, size, generator=g, dtype=f64).to(device)
        w_hat = torch.fft.rfft2(noise) * amp * dealias
        w = torch.fft.irfft2(w_hat, s=(size, size))
        # unit r.m.s. velocity |u|² = |∇ψ|²
        psi_hat = torch.fft.rfft2(w) / k2_safe
        u = torch.fft.irfft2(1j * ky * psi_hat, s=(size, size))
        v = torch.fft.irfft2(-1j * kx * psi_hat, s=(size, size))
        speed = torch.sqrt((u**2 + v**2).mean()).clamp_min(1e-30)
        omega_hat[i] = torch.fft.rfft2(w) / speed

    def tendency(w_hat):
        psi_hat = w_hat / k2_safe
        grads = torch.fft.irfft2(
            torch.stack([1j * ky * psi_hat, -1j * kx * psi_hat, 1j * kx * w_hat, 1j * ky * w_hat]),
            s=(size, size),
        )
        u, v, wx, wy = grads
        return -torch.fft.rfft2(u * wx + v * wy) * dealias

    dx = 2 * math.pi / size
    steps = max(1, math.ceil(time / (0.3 * dx / 3.0)))
    dt = time / steps
    decay = torch.exp(-viscosity * k2 * dt)
    for _ in range(steps):
        n1 = tendency(omega_hat)
        predictor = (omega_hat + dt * n1) * decay
        n2 = tendency(predictor)
        omega_hat = (omega_hat + 0.5 * dt * n1) * decay + 0.5 * dt * n2
    omega = torch.fft.irfft2(omega_hat, s=(size, size)).unsqueeze(1)
    if not normalise:
        return omega.to(dtype)
    omega = (omega - omega.mean((-2, -1), keepdim=True)) / omega.std(
        dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return omega.to(dtype)
