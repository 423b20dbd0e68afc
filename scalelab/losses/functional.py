"""The loss formulas, as plain functions of tensors (each with its formula and reference).

Shapes: a deterministic prediction and the target are ``(B, C, H, W)``; an ensemble
prediction is ``(B, M, C, H, W)``. Every function returns a scalar mean over the
batch and is differentiable in the prediction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from scalelab._errors import ScalelabError
from scalelab.calibration.scores import crps_torch
from scalelab.data.spectrum import radial_power_spectrum


def mse(pred, target):
    """Mean squared error, (1/n) Σ (ŷ − y)²."""
    return F.mse_loss(pred, target)


def l1(pred, target):
    """Mean absolute error, (1/n) Σ |ŷ − y| (Lim et al. 2017 train EDSR with it)."""
    return F.l1_loss(pred, target)


def charbonnier(pred, target, eps: float = 1e-3):
    """Charbonnier loss, (1/n) Σ √((ŷ − y)² + ε²) (Charbonnier et al. 1994; LapSRN,
    Lai et al. 2017, eq. 3, with ε = 10⁻³): a differentiable L1."""
    return torch.sqrt((pred - target) ** 2 + eps**2).mean()


def huber(pred, target, huber_delta: float = 1.0):
    """Huber loss (Huber 1964): ½r² for |r| ≤ δ, δ(|r| − ½δ) otherwise, averaged."""
    return F.huber_loss(pred, target, delta=huber_delta)


def quantile(pred, target, tau: float = 0.5):
    """Pinball (quantile) loss ρ_τ(r) = max(τ r, (τ − 1) r), r = y − ŷ (Koenker & Bassett
    1978): minimised when ŷ is the τ-quantile of y; τ = ½ gives half the L1 loss."""
    residual = target - pred
    return torch.maximum(tau * residual, (tau - 1.0) * residual).mean()


def spectral(pred, target, eps: float = 1e-8):
    """Distance of log power spectra: mean over samples, channels and wavenumber rings of
    (log(E_ŷ(k) + ε) − log(E_y(k) + ε))², E the radially binned power spectrum.

    The spectral loss used against the over-smoothing of MSE-trained downscaling
    networks (e.g. Harder et al. 2023 compare spectra; Kashinath et al. 2021, Phil.
    Trans. A, eq. 4, penalise the spectrum's distance). ε keeps constant fields (zero
    power) finite: two constant fields have loss 0.
    """
    return ((torch.log(_ring_spectrum(pred) + eps) - torch.log(_ring_spectrum(target) + eps))
            ** 2).mean()


def _ring_spectrum(fields: torch.Tensor) -> torch.Tensor:
    """E(k) of every field of ``(B, C, H, W)``: ``(B, C, K)``, the power |F(k)|²/(H W)²
    summed over rings k = 1 … ⌊min(H, W)/2⌋ (per-pixel variance by scale, Parseval)."""
    return radial_power_spectrum(fields, normalisation="variance", average=False)[1]


_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def sobel(fields: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel derivatives (∂/∂y, ∂/∂x) of ``(B, C, H, W)`` on the interior (valid) pixels."""
    kernel_x = torch.tensor(_SOBEL_X, dtype=fields.dtype, device=fields.device)
    channels = fields.shape[1]
    weight = torch.stack([kernel_x.T, kernel_x]).unsqueeze(1).repeat(channels, 1, 1, 1)
    grads = F.conv2d(fields, weight, groups=channels)  # cross-correlation, like scipy.ndimage
    return grads[:, 0::2], grads[:, 1::2]


def gradient(pred, target):
    """Gradient loss: mean squared difference of Sobel derivatives (Sobel & Feldman 1968),
    (1/n) Σ [(G_y ŷ − G_y y)² + (G_x ŷ − G_x y)²] over interior pixels — the edge
    term of e.g. Ma et al. 2020 (SPSR) that keeps fronts and edges sharp."""
    gy_p, gx_p = sobel(pred)
    gy_t, gx_t = sobel(target)
    return ((gy_p - gy_t) ** 2 + (gx_p - gx_t) ** 2).mean()


def crps_ensemble(pred: torch.Tensor, target: torch.Tensor, estimator: str = "fair",
                  alpha: float = 0.95) -> torch.Tensor:
    """CRPS of an M-member ensemble ``(B, M, ...)`` against ``(B, ...)``, averaged.

    CRPS = (1/M) Σ_j |x_j − y| − c · Σ_{j,k} |x_j − x_k| with c = 1/(2M²) for the energy
    (``nrg``) estimator and 1/(2M(M−1)) for the ``fair`` one (Ferro 2014; Zamo &
    Naveau 2018, eqs. 3–4). ``afair`` is the almost fair CRPS of Lang et al. 2024
    (AIFS-CRPS, eq. 4), equal to α·fair + (1 − α)·nrg. The formulas live once, in
    :func:`scalelab.calibration.scores.crps_torch` (the torch backend of
    ``scalelab.calibration.crps_ensemble``); this averages its per-point score.
    """
    members = pred.shape[1]
    if estimator in ("fair", "afair") and members < 2:
        raise ScalelabError(f"the {estimator} CRPS needs an ensemble of at least 2 members, got "
                            f"{members}; set ensemble_members >= 2 or use crps_nrg.")
    return crps_torch(target, pred, axis=1, estimator=estimator, alpha=alpha).mean()


def wasserstein_1d(pred, target):
    """1-D Wasserstein distance W₁ between the value distributions of each sample's
    prediction and target (all pixels and channels pooled), averaged over the batch.

    For two empirical distributions of n points each, W₁ = (1/n) Σ_i |ŷ_(i) − y_(i)|
    over the sorted values (e.g. Peyré & Cuturi 2019, Remark 2.30); WassDiff (Liu et
    al. 2024) adds it to the pixel loss so the predicted intensity distribution (dry
    fraction, extremes) matches the target's.
    """
    flat_pred = pred.reshape(pred.shape[0], -1).sort(dim=1).values
    flat_target = target.reshape(target.shape[0], -1).sort(dim=1).values
    return (flat_pred - flat_target).abs().mean()


def bin_log_probs(pred, edges: torch.Tensor, sigma: float) -> torch.Tensor:
    """log P(bin k) of N(ŷ, σ²) for bins (−∞, e₁), [e₁, e₂), …, [e_K, ∞): ``(B, K+1, ...)``.

    Turns a continuous prediction into differentiable class probabilities over
    intensity bins: each bin's probability is the Gaussian mass it holds,
    Φ(z_b) − Φ(z_a) with z = (e − ŷ)/σ, computed in log space without cancellation:
    log Φ(z_b) + log(1 − e^{log Φ(z_a) − log Φ(z_b)}) below the mean, and the same on
    the mirrored tail above it. Standardised bounds are clipped to ±40 (Φ is 1 or 0
    there to double precision), which keeps every branch finite.
    """
    limit = 40.0
    inf = torch.tensor([limit], dtype=pred.dtype, device=pred.device)
    bounds = torch.cat([-inf * sigma, edges.to(pred), inf * sigma]).view(-1, *([1] * pred.dim()))
    z = ((bounds - pred.unsqueeze(0)) / sigma).clamp(-limit, limit)
    z[0], z[-1] = -limit, limit
    za, zb = z[:-1], z[1:]
    tiny = torch.finfo(pred.dtype).tiny
    lower = torch.special.log_ndtr(zb) + torch.log(
        (-torch.expm1(torch.special.log_ndtr(za) - torch.special.log_ndtr(zb))).clamp_min(tiny))
    upper = torch.special.log_ndtr(-za) + torch.log(
        (-torch.expm1(torch.special.log_ndtr(-zb) - torch.special.log_ndtr(-za))).clamp_min(tiny))
    return torch.where(za + zb < 0, lower, upper).movedim(0, 1)


def class_weighted_ce(log_probs: torch.Tensor, classes: torch.Tensor,
                      weights: torch.Tensor | None = None) -> torch.Tensor:
    """Class-weighted cross-entropy −Σ_i w_{c_i} log p_i(c_i) / Σ_i w_{c_i} over pixels i.

    With ``weights=None`` the weights are "balanced" on the batch, w_c = n / (K n_c)
    for the classes present (King & Zeng 2001; the inverse-frequency weighting of
    SaTformer, Weather4cast 2025, that keeps rare heavy-rain bins from being ignored).
    ``log_probs`` is ``(B, K, ...)``; ``classes`` holds bin indices ``(B, ...)``.
    """
    n_bins = log_probs.shape[1]
    if weights is None:
        counts = torch.bincount(classes.flatten(), minlength=n_bins).to(log_probs.dtype)
        present = counts > 0
        weights = torch.zeros(n_bins, dtype=log_probs.dtype, device=log_probs.device)
        weights[present] = classes.numel() / (int(present.sum()) * counts[present])
    return F.nll_loss(log_probs, classes, weight=weights.to(log_probs))


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, 1)) = ½ (μ² + σ² − 1 − log σ²) per latent element (Kingma & Welling
    2014, appendix B), averaged over the batch and every latent element — the per-element
    mean that FuXi-ENS (Zhong et al. 2024) adds to its pixel-averaged CRPS, so the KL's
    weight (0.1 in ``crps_fair + 0.1*kl``) does not change with the latent's size."""
    return 0.5 * (mean ** 2 + log_var.exp() - 1.0 - log_var).mean()
