"""Validation metrics a run records at each evaluation step.

Plain functions over torch tensors ``(N, C, H, W)`` (prediction, target), computed
in float64 on the tensors' device, so an evaluation costs a few small kernels and
no copies to the host.

Deterministic skill
- ``mse``, ``mae``; RMSE = √MSE.
- ``psnr``: 10 log10(R² / MSE) over the whole set, R the data range of the target
  (the definition of ``skimage.metrics.peak_signal_noise_ratio``).
- ``ssim``: mean structural similarity of Wang et al. 2004 (IEEE TIP 13(4), eq. 13),
  with the conventions of ``skimage.metrics.structural_similarity``'s defaults:
  a 7 × 7 uniform window, K1 = 0.01, K2 = 0.03, sample (N − 1) covariances, the mean
  over the pixels whose window lies wholly inside the image; averaged over images
  and channels.
- ``spectrum_error``: the log spectral distance between the radially averaged power
  spectra of prediction and target, (1/K) Σ_k |log10 E_pred(k) − log10 E_true(k)|
  over k = 1 … ⌊min(H, W)/2⌋ − 1 (radially averaged power spectra are how
  downscaling papers judge small-scale structure, e.g. Harris et al. 2022, JAMES,
  "A generative deep learning approach to stochastic downscaling of precipitation
  forecasts"). It is 0 for a perfect spectrum and log10(c²) for a prediction that
  is the target times c.
- ``percentile_bias``: relative bias of the p-th percentile over all pixels,
  (q_p(pred) − q_p(true)) / |q_p(true)|, at p = 99 and 99.9 for extremes; quantiles
  use numpy's default (linear) interpolation.

Reference forecast: :func:`bicubic_upsample`, plain bicubic interpolation of the coarse
input to the target's grid (Keys 1981, a = −0.75, as ``torch.nn.functional.interpolate``
and OpenCV), the baseline a downscaling method is first compared with; the training loop
scores it once per run (``val_bicubic_<metric>``).

Ensemble skill and calibration (members on axis 1, ``(N, M, C, H, W)``) come from
``scalelab.calibration`` (CRPS: Gneiting & Raftery 2007, eq. 21; spread-skill
ratio; rank-histogram flatness; ECE and Brier score of exceedance probabilities),
see :func:`ensemble_metrics`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from scalelab.data.spectrum import radial_power_spectrum

__all__ = [
    "mse", "mae", "psnr", "ssim", "radial_spectrum", "spectrum_error", "quantile", "quantiles",
    "percentile_bias", "reference", "deterministic_metrics", "ensemble_metrics",
    "bicubic_upsample",
]


def _f64(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to(torch.float64)


def mse(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(torch.mean((_f64(pred) - _f64(target)) ** 2))


def mae(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(torch.mean(torch.abs(_f64(pred) - _f64(target))))


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB, 10 log10(R² / MSE), over the whole set."""
    error = mse(pred, target)
    return 10.0 * math.log10(data_range**2 / error) if error > 0 else float("inf")


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: float, win_size: int = 7,
         k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean SSIM (Wang et al. 2004) of ``(N, C, H, W)`` images, averaged over images and channels."""
    x = _f64(pred).flatten(0, -3).unsqueeze(1)  # (N·C, 1, H, W)
    y = _f64(target).flatten(0, -3).unsqueeze(1)
    # window means over the pixels whose window lies inside the image ("valid"), which
    # is skimage's filter-then-crop; the five local moments in one pooling call
    moments = _box_mean(torch.cat([x, y, x * x, y * y, x * y], dim=1), win_size)
    ux, uy, uxx, uyy, uxy = moments.unbind(1)
    n_window = win_size * win_size
    cov_norm = n_window / (n_window - 1)  # sample covariance
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


def _box_mean(z: torch.Tensor, win_size: int) -> torch.Tensor:
    """Mean over every ``win_size × win_size`` window inside the image, by running sums."""
    c = F.pad(z.cumsum(-1), (1, 0))
    z = c[..., win_size:] - c[..., :-win_size]
    c = F.pad(z.cumsum(-2), (0, 0, 1, 0))
    return (c[..., win_size:, :] - c[..., :-win_size, :]) / (win_size * win_size)


def radial_spectrum(fields: torch.Tensor) -> torch.Tensor:
    """Radially averaged power spectrum E(k), k = 1 … ⌊min(H, W)/2⌋ − 1, averaged over fields.

    :func:`scalelab.data.spectrum.radial_power_spectrum` with ``"ring_mean"``: the mean
    of |F(kx, ky)|² over the wavevectors whose length rounds to the integer k (in
    cycles per domain), in float64; the last ring (cut by the Nyquist edge) is left out.
    """
    return radial_power_spectrum(_f64(fields), normalisation="ring_mean")[1][:-1]


def spectrum_error(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Log spectral distance, mean over k of |log10 E_pred(k) − log10 E_true(k)|."""
    return _log_spectral_distance(radial_spectrum(pred), radial_spectrum(target))


def _log_spectral_distance(e_pred: torch.Tensor, e_true: torch.Tensor) -> float:
    tiny = torch.finfo(torch.float64).tiny
    log_ratio = torch.log10(e_pred.clamp_min(tiny)) - torch.log10(e_true.clamp_min(tiny))
    return float(torch.mean(torch.abs(log_ratio)))


def quantile(values: torch.Tensor, q: float) -> float:
    """The ``q``-quantile of all values, numpy's default linear interpolation."""
    return quantiles(values, (q,))[0]


def quantiles(values: torch.Tensor, qs) -> list[float]:
    """The ``qs``-quantiles of all values, numpy's default (linear) interpolation.

    Upper quantiles need only the top of the distribution: the values from the
    lowest requested rank up are found by one partial sort (``topk``), not a full
    sort; ``torch.quantile``'s limit of 2²⁴ values does not apply.
    """
    flat = _f64(values).flatten()
    n = flat.numel()
    lowest = math.floor((n - 1) * min(qs))
    top = torch.topk(flat, n - lowest).values.flip(0)  # ascending: ranks lowest … n − 1
    out = []
    for q in qs:
        position = (n - 1) * q
        lower = math.floor(position)
        upper = min(lower + 1, n - 1)
        low, high = top[lower - lowest], top[upper - lowest]
        out.append(float(low + (high - low) * (position - lower)))
    return out


def percentile_bias(pred: torch.Tensor, target: torch.Tensor, percentile: float) -> float:
    """Relative bias of the ``percentile``-th percentile (0-100): (q(pred) − q(true)) / |q(true)|."""
    return _relative_bias(quantile(pred, percentile / 100), quantile(target, percentile / 100))


def _relative_bias(estimate: float, truth: float) -> float:
    return (estimate - truth) / abs(truth) if truth != 0 else float("nan")


PERCENTILES = {"val_p99_bias": 99.0, "val_p999_bias": 99.9}


def reference(target: torch.Tensor) -> dict:
    """What the metrics need of a fixed validation target, computed once per run."""
    return {
        "spectrum": radial_spectrum(target),
        "percentiles": quantiles(target, [p / 100 for p in PERCENTILES.values()]),
    }


def deterministic_metrics(pred: torch.Tensor, target: torch.Tensor, data_range: float,
                          ref: dict | None = None) -> dict:
    """All deterministic skill metrics of ``pred`` against ``target``, prefixed ``val_``.

    ``ref``: :func:`reference` of ``target``, when it is evaluated against many times.
    """
    ref = ref or reference(target)
    error = mse(pred, target)
    pred_percentiles = quantiles(pred, [p / 100 for p in PERCENTILES.values()])
    return {
        "val_mse": error,
        "val_rmse": math.sqrt(error),
        "val_mae": mae(pred, target),
        "val_psnr": 10.0 * math.log10(data_range**2 / error) if error > 0 else float("inf"),
        "val_ssim": ssim(pred, target, data_range),
        "val_spectrum_error": _log_spectral_distance(radial_spectrum(pred), ref["spectrum"]),
        **{name: _relative_bias(estimate, truth) for name, estimate, truth
           in zip(PERCENTILES, pred_percentiles, ref["percentiles"])},
    }


def ensemble_metrics(ens: torch.Tensor, target: torch.Tensor, threshold: float,
                     seed: int = 0) -> dict:
    """Probabilistic skill and calibration of an ensemble ``(N, M, C, H, W)``, prefixed ``val_``.

    From ``scalelab.calibration``: ``val_crps`` (fair estimator, Ferro 2014: unbiased
    for the infinite ensemble, so runs with different M compare),
    ``val_spread_skill`` (Fortin et al. 2014; 1 for a consistent ensemble),
    ``val_rank_delta`` (rank-histogram flatness δ of Candille & Talagrand 2005; ≈ 1
    when flat; ties broken with ``seed``; it grows with the number of pixels for any
    histogram that is not flat), ``val_rank_departure`` (the RMS relative departure of the
    rank probabilities from flat, estimated without bias from the per-image histograms:
    the same at any number of pixels, :func:`scalelab.calibration.rank_histogram_departure`)
    and ``val_rank_neff`` (the effective number of independent ranks it found), and the
    calibration of the exceedance
    probability P(y > ``threshold``), forecast as the fraction of members above it:
    ``val_exceed_ece`` (Guo et al. 2017 eq. 3, 15 equal-width bins) and
    ``val_exceed_brier``; and the data of the rank histogram (``val_rank_hist``, counts
    of the observation's rank among the members) and of the exceedance reliability
    diagram (``val_exceed_reliability``: per-bin confidence, accuracy, count, edges).
    """
    from scalelab import calibration

    obs, members = _f64(target), _f64(ens)
    prob = (members > threshold).to(torch.float64).mean(1).flatten().cpu().numpy()
    event = (obs > threshold).flatten().to(torch.int64).cpu().numpy()
    per_image = calibration.rank_histogram(obs.cpu().numpy(), members.cpu().numpy(), axis=1,
                                           seed=seed, per=0)
    counts = per_image.sum(axis=0)  # the pooled histogram (the same ranks)
    # one image: its pixels' ranks taken as independent (the pooled histogram)
    departure = calibration.rank_histogram_departure(per_image if len(per_image) > 1
                                                     else counts)
    reliability = calibration.reliability_curve(prob, event, bins=15, binary="p_positive")
    return {
        "val_crps": float(calibration.crps_ensemble(obs, members, axis=1, estimator="fair").mean()),
        "val_spread_skill": float(calibration.spread_skill_ratio(obs, members, axis=1)),
        "val_rank_delta": calibration.rank_histogram_flatness(counts).delta,
        "val_rank_departure": departure.departure,
        "val_rank_neff": departure.n_eff,
        "val_exceed_ece": calibration.ece(prob, event, binary="p_positive"),
        "val_exceed_brier": calibration.brier_score(prob, event, binary="p_positive"),
        # the data behind the report's rank histograms and reliability diagrams
        "val_rank_hist": [int(c) for c in counts],
        "val_exceed_reliability": {name: [float(v) for v in np.asarray(values)]
                                   for name, values in reliability._asdict().items()},
    }


def bicubic_upsample(lr: torch.Tensor, size: tuple[int, int], channels: int) -> torch.Tensor:
    """The first ``channels`` of the coarse input ``(N, C_in, h, w)`` (the target's own coarse
    field; predictors and static fields follow it) interpolated bicubically to ``size``
    (Keys 1981, a = −0.75; ``align_corners=False``), in float64: ``(N, channels, *size)``.
    Missing coarse values (NaN) become 0 first, as the network sees them."""
    coarse = torch.nan_to_num(_f64(lr[:, :channels]))
    return F.interpolate(coarse, size=tuple(size), mode="bicubic", align_corners=False)
