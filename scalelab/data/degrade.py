"""Degradation (coarsening) operators that make the low-resolution input from a field.

Each operator maps ``(..., H, W)`` to ``(..., H/scale, W/scale)`` and is a named
choice in a spec (``degradation``); losses use the same operators
(``downscale_consistency``).

- ``block_mean``: conservative block averaging over ``scale × scale`` cells — the
  coarse value is the mean of the fine cells it covers, so area means (and totals of
  e.g. precipitation) are conserved exactly (the first-order conservative remapping
  of Jones 1999, on nested grids).
- ``bicubic``: bicubic interpolation with antialiasing, the kernel widened by the
  scale factor (Keys 1981 cubic, a = −0.5; the ``imresize``/PIL convention that image
  super-resolution benchmarks use, e.g. Lim et al. 2017).
- ``gaussian``: Gaussian blur (σ = ``blur_sigma``, default ``scale / 2``) with
  mirror padding, then keeping the upper-left pixel of each ``scale × scale`` block —
  the classical blur-downsample model of Zhang et al. 2018 (SRMD, eq. 1).
- ``learned_kernel``: per-pixel, per-channel resampling kernels predicted by a small
  network fitted to a target LR (ADK-Net/CAR; :mod:`scalelab.data.kernels`), read from
  the file ``kernel_path`` (``options.kernel_path`` of a run) that ``scalelab
  fit-kernels`` writes.

Optional additive Gaussian noise (``noise_std``, in the field's units) makes the LR
input noisy as in the same degradation model, y = (x ⊗ k)↓s + n.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from scalelab._errors import ScalelabError
from scalelab._declare import resolve
from scalelab.data.names import DEGRADATION_RECORDS, DEGRADATIONS


def _check_divides(hr: torch.Tensor, scale: int) -> None:
    if not isinstance(scale, int) or scale < 1:
        raise ScalelabError(f"scale must be a positive integer, got {scale!r}.")
    if hr.shape[-1] % scale or hr.shape[-2] % scale:
        raise ScalelabError(
            f"scale {scale} does not divide the field size {tuple(hr.shape[-2:])}; "
            "crop the field or choose another scale."
        )


def _as_4d(hr: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    lead = hr.shape[:-2]
    return hr.reshape(-1, 1, *hr.shape[-2:]), lead


def block_mean(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Conservative coarsening of ``(..., H, W)`` by averaging ``scale × scale`` blocks."""
    _check_divides(hr, scale)
    x, lead = _as_4d(hr)
    out = F.avg_pool2d(x, kernel_size=scale, stride=scale)
    return out.reshape(*lead, *out.shape[-2:])


def bicubic(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Antialiased bicubic downsampling of ``(..., H, W)`` by ``scale`` (PIL convention)."""
    _check_divides(hr, scale)
    x, lead = _as_4d(hr)
    size = (hr.shape[-2] // scale, hr.shape[-1] // scale)
    out = F.interpolate(x, size=size, mode="bicubic", antialias=True, align_corners=False)
    return out.reshape(*lead, *size)


def gaussian_kernel1d(sigma: float, truncate: float = 4.0, dtype=torch.float64, device="cpu"):
    """Normalised 1-D Gaussian of radius ``int(truncate·σ + 0.5)`` (scipy.ndimage's rule)."""
    radius = int(truncate * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian(hr: torch.Tensor, scale: int, blur_sigma: float | None = None) -> torch.Tensor:
    """Gaussian blur (mirror padding) then ``scale``-fold subsampling of ``(..., H, W)``."""
    _check_divides(hr, scale)
    sigma = scale / 2.0 if blur_sigma is None else float(blur_sigma)
    if not sigma > 0:
        raise ScalelabError(f"blur_sigma must be positive, got {blur_sigma!r}.")
    x, lead = _as_4d(hr)
    kernel = gaussian_kernel1d(sigma, dtype=x.dtype, device=x.device)
    radius = kernel.numel() // 2
    if radius >= min(hr.shape[-2:]):
        raise ScalelabError(
            f"blur_sigma {sigma} is too wide for a {tuple(hr.shape[-2:])} field; "
            "choose a smaller blur_sigma or a larger field."
        )
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    out = x[..., ::scale, ::scale]
    return out.reshape(*lead, *out.shape[-2:])


# the operators the degradation records name (scalelab.data.names)
OPERATORS = {record.name: resolve(record.function) for record in DEGRADATION_RECORDS}


def check_degradation(operator: str) -> None:
    if operator not in OPERATORS:
        raise ScalelabError(
            f"unknown degradation {operator!r}; valid choices are {', '.join(OPERATORS)}."
        )


def degrade(hr: torch.Tensor, scale: int, operator: str = "block_mean", *,
            noise_std: float = 0.0, blur_sigma: float | None = None,
            generator: torch.Generator | None = None, kernel_path=None) -> torch.Tensor:
    """Apply the named degradation operator, then optional additive Gaussian noise.

    Differentiable in ``hr`` (losses coarsen the network's output with it).
    ``blur_sigma``: ``gaussian``'s σ; ``kernel_path``: ``learned_kernel``'s file.
    """
    check_degradation(operator)
    if noise_std < 0 or not math.isfinite(noise_std):
        raise ScalelabError(f"noise_std must be a finite number >= 0, got {noise_std!r}.")
    if operator == "gaussian":
        lr = gaussian(hr, scale, blur_sigma)
    elif operator == "learned_kernel":
        lr = OPERATORS[operator](hr, scale, kernel_path)
    else:
        lr = OPERATORS[operator](hr, scale)
    if noise_std > 0:
        noise = torch.randn(lr.shape, generator=generator, dtype=lr.dtype, device="cpu")
        lr = lr + noise_std * noise.to(lr.device)
    return lr
