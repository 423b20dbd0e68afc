"""Metrics of real fields: missing values masked, rows latitude-weighted, in physical units.

The training loop hands these the validation prediction and target after the inverse
transform (physical units). Without missing values and without weights they are
exactly :func:`scalelab.train.metrics.deterministic_metrics` and
:func:`~scalelab.train.metrics.ensemble_metrics`; otherwise:

- missing target values (NaN, ``options.nan: mask``) are left out of every metric:
  the means below run over valid pixels only; SSIM and the spectrum see the masked
  pixels filled with the target's value in both fields (0 after filling), so they add
  no error; percentiles and the ensemble scores use the valid pixels alone;
- on global latitude–longitude grids, MSE, RMSE, MAE and PSNR are area-weighted means,
  Σ w e / Σ w with w the row's latitude weight (WeatherBench 2, Rasp et al. 2024,
  §4; :func:`scalelab.data.cf.latitude_weights`); SSIM, the spectrum and the
  percentiles are not weighted.

:func:`fill_masked` is what makes any loss ignore missing pixels: the prediction is
set to the target there, so a pointwise loss adds nothing for them (its mean is over
all pixels, i.e. scaled by the batch's valid fraction) and a spectral loss sees no
error there.
"""

from __future__ import annotations

import math

import torch

from scalelab.train import metrics


def fill_masked(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pred, target)`` with missing target pixels (NaN) set to 0 in both.

    ``pred`` is ``(B, C, H, W)`` or an ensemble ``(B, M, C, H, W)``.
    """
    valid = torch.isfinite(target)
    target = torch.where(valid, target, torch.zeros_like(target))
    if pred.dim() == target.dim() + 1:
        valid, filled = valid.unsqueeze(1), target.unsqueeze(1)
    else:
        filled = target
    return torch.where(valid, pred, filled.to(pred.dtype)), target


def reference(target: torch.Tensor) -> dict:
    """:func:`scalelab.train.metrics.reference` of a target that may have missing values."""
    valid = torch.isfinite(target)
    if bool(valid.all()):
        return metrics.reference(target)
    ref = metrics.reference(torch.where(valid, target, torch.zeros_like(target)))
    ref["percentiles"] = metrics.quantiles(target[valid], [p / 100 for p in
                                                           metrics.PERCENTILES.values()])
    return ref


def data_range(target: torch.Tensor) -> float:
    """R of PSNR and SSIM: the range of the valid target values."""
    valid = target[torch.isfinite(target)]
    return float(valid.max() - valid.min())


def quantile(target: torch.Tensor, q: float) -> float:
    """The ``q``-quantile of the valid target values."""
    return metrics.quantile(target[torch.isfinite(target)], q)


def deterministic_metrics(pred: torch.Tensor, target: torch.Tensor, data_range: float,
                          ref: dict | None = None, weights: torch.Tensor | None = None) -> dict:
    """The keys of :func:`scalelab.train.metrics.deterministic_metrics`, masked and weighted.

    ``weights``: broadcastable to ``target`` (e.g. ``(N, 1, H, 1)`` row weights), or None.
    """
    valid = torch.isfinite(target)
    if weights is None and bool(valid.all()):
        return metrics.deterministic_metrics(pred, target, data_range, ref)
    ref = ref or reference(target)
    pred_f, target_f = fill_masked(pred, target)
    row = metrics.deterministic_metrics(pred_f, target_f, data_range, ref)
    w = valid.to(torch.float64)
    if weights is not None:
        w = w * weights.to(device=target.device, dtype=torch.float64)
    total = w.sum()
    error = pred_f.to(torch.float64) - target_f.to(torch.float64)
    mse = float((w * error**2).sum() / total)
    row.update({
        "val_mse": mse,
        "val_rmse": math.sqrt(mse),
        "val_mae": float((w * error.abs()).sum() / total),
        "val_psnr": 10.0 * math.log10(data_range**2 / mse) if mse > 0 else float("inf"),
    })
    if not bool(valid.all()):
        estimates = metrics.quantiles(pred[valid], [p / 100 for p in metrics.PERCENTILES.values()])
        for name, estimate, truth in zip(metrics.PERCENTILES, estimates, ref["percentiles"]):
            row[name] = (estimate - truth) / abs(truth) if truth != 0 else float("nan")
    return row


def ensemble_metrics(ens: torch.Tensor, target: torch.Tensor, threshold: float,
                     seed: int = 0) -> dict:
    """:func:`scalelab.train.metrics.ensemble_metrics` over the valid pixels only."""
    valid = torch.isfinite(target)
    if bool(valid.all()):
        return metrics.ensemble_metrics(ens, target, threshold, seed)
    members = ens.movedim(1, -1)[valid]  # (P, M)
    obs = target[valid]
    return metrics.ensemble_metrics(members[:, :, None, None, None], obs[:, None, None, None],
                                    threshold, seed)
