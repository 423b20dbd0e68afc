"""The radially binned (isotropic) power spectrum of 2-D fields, written once.

Used to check the synthetic fields' slope (:mod:`scalelab.data.synthetic`), by the
``spectral`` training loss (:mod:`scalelab.losses.functional`) and by the
``spectrum_error`` validation metric (:mod:`scalelab.train.metrics`). Radially
averaged spectra are how downscaling papers judge small-scale structure (e.g.
Harris et al. 2022, JAMES; Kashinath et al. 2021, Phil. Trans. A, eq. 4).

For a field f on an H × W grid with DFT F̂(k_y, k_x) = Σ_x f(x) e^{−2πi k·x}
(numpy's and torch's unnormalised forward transform), wavenumbers count cycles per
domain along each axis (k_y ∈ {−H/2, …, H/2 − 1}, k_x likewise for W), and ring k
holds the wavevectors whose length rounds to k. Rings k = 1 … K, K = ⌊min(H, W)/2⌋,
are returned; the mean (k = 0) and the corners beyond ring K are left out. Ring K
reaches the Nyquist edge of the grid, so it holds only part of a circle.

Normalisations (``normalisation=``):

- ``"variance"``: E(k) = Σ_{ring k} |F̂|² / (H W)². By Parseval's theorem,
  (1/HW) Σ_x |f|² = Σ_k |F̂(k)|² / (HW)², so the rings split the field's per-pixel
  variance by scale: Σ_{k ≥ 1} E(k) over all rings (the corners too) equals
  (1/HW) Σ_x (f − f̄)². A field with spectral density ∝ |k|^(−β−1) has E(k) ∝ k^(−β).
- ``"ring_mean"``: E(k) = the mean of |F̂|² over the wavevectors of ring k (no
  1/(HW)² factor): the power per wavevector, independent of how many grid
  wavevectors a ring happens to hold; a ratio of two such spectra is what the log
  spectral distance needs.
"""

from __future__ import annotations

import torch

from scalelab._errors import ScalelabError

NORMALISATIONS = ("variance", "ring_mean")


def radial_power_spectrum(fields: torch.Tensor, normalisation: str = "variance",
                          average: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Radially binned power spectrum of ``(..., H, W)`` fields: ``(k, E(k))``, k = 1 … K.

    ``normalisation``: ``"variance"`` (ring sums of |F̂|²/(HW)², which add up to the
    per-pixel variance: Parseval) or ``"ring_mean"`` (mean |F̂|² per ring); see the
    module docstring. ``average=True`` averages the spectra of all fields into one
    ``(K,)`` spectrum; ``False`` keeps one per field, ``(..., K)``. Computed in the
    fields' dtype and device, differentiable in ``fields``. ``k`` is ``1 … K`` as
    integers, K = ⌊min(H, W)/2⌋.
    """
    if normalisation not in NORMALISATIONS:
        raise ScalelabError(f"unknown spectrum normalisation {normalisation!r}; valid choices are "
                            f"{', '.join(NORMALISATIONS)}.")
    if fields.dim() < 2 or min(fields.shape[-2:]) < 2:
        raise ScalelabError(f"radial_power_spectrum needs fields of shape (..., H, W) with H, W >= 2, "
                            f"got {tuple(fields.shape)}.")
    height, width = fields.shape[-2:]
    power = torch.fft.fft2(fields).abs() ** 2
    if average:
        power = power.reshape(-1, height, width).mean(0)
    ky = torch.fft.fftfreq(height, d=1.0 / height, device=fields.device, dtype=power.dtype)
    kx = torch.fft.fftfreq(width, d=1.0 / width, device=fields.device, dtype=power.dtype)
    kmax = min(height, width) // 2
    # ring of every wavevector; the corners beyond ring K collect in slot K + 1, dropped
    ring = torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2).round().long().clamp_max(kmax + 1)
    ring = ring.flatten()
    sums = power.new_zeros(*power.shape[:-2], kmax + 2).index_add(-1, ring, power.flatten(-2))
    sums = sums[..., 1:kmax + 1]
    if normalisation == "variance":
        spectrum = sums / (height * width) ** 2
    else:
        counts = torch.bincount(ring, minlength=kmax + 2)[1:kmax + 1]
        spectrum = sums / counts.to(power.dtype)
    return torch.arange(1, kmax + 1, device=fields.device), spectrum
