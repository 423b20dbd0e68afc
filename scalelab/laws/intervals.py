"""Prediction intervals that keep their word at a distance: split-conformal on backtests.

A bootstrap interval says how far the law's parameters could move with the points it
was fitted to; it says nothing of how wrong the law's *form* is beyond the data, which
is what dominates an extrapolation. Each candidate of :func:`scalelab.laws.predict` is
backtested (fitted with the largest sizes left out, then asked for them), and its errors
there, r = log(truth / prediction), are the evidence of how wrong it is at a distance
d = (held-out size) / (largest size it was fitted to) ≥ 1.

Each error is normalised by a scale of its own point: the half width (in log units) of
the backtest fit's bootstrap interval there, which grows with the distance and with how
few points the fold kept, as the law's form dictates (where a candidate has no
bootstrap, s(d) = √(0.5² + log² d), since extrapolation errors grow with the log of the
distance: an error δα in an exponent gives δα·log d; Choshen et al. 2024, §5). The
normalised errors z = |r| / scale are the nonconformity scores of split-conformal
prediction (Vovk et al. 2005; Lei et al. 2018, "Distribution-free predictive inference
for regression", §2.2, with locally weighted residuals, §5.2), and at the target the
interval's half width in log units is q times the target's own scale, where q is

- the conformal quantile, the ⌈(n + 1)·level⌉-th smallest z, once there are enough
  scores for it (n + 1 ≥ 1/(1 − level));
- below that, Student's t quantile times the root mean square of z, its degrees of
  freedom from the scores' effective count (``FOLD_WEIGHT`` per fold: one fold's errors
  share its fitted law and move together);

and the larger of the two when both exist. The interval used is the union of this one
and the bootstrap's: widened, never narrowed.

Torch-free; numpy and scipy only.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import t as student_t

#: scores from one fold count as this many independent ones: a fold's held-out runs
#: share one fitted law, so their errors move together
FOLD_WEIGHT = 3.0
#: the scale at d = 1 (the runs' own noise), in units of log d
NEAR = 0.5
#: the smallest bootstrap half width taken as a scale (log units)
MIN_SCALE = 1e-4


def distance_scale(distance) -> np.ndarray:
    """s(d) = √(NEAR² + log² d) (d ≥ 1): an extrapolation's error grows with the log of
    its distance, from the runs' own noise at d ≈ 1."""
    d = np.maximum(np.asarray(distance, dtype=float), 1.0)
    return np.hypot(NEAR, np.log(d))


def conformal_quantile(scores, level: float, n_folds: int | None = None) -> float:
    """q of the normalised scores at ``level`` (conformal, or t·RMS while scores are few).

    ``n_folds`` (when the scores come from that many backtest folds) caps the scores'
    effective count at ``FOLD_WEIGHT`` per fold, since the errors of one fold's held-out
    runs are not independent.
    """
    z = np.abs(np.asarray(scores, dtype=float))
    z = z[np.isfinite(z)]
    if z.size == 0:
        return math.nan
    n = z.size if n_folds is None else min(z.size, max(1.0, FOLD_WEIGHT * n_folds))
    rms = float(np.sqrt(np.mean(z**2)))
    q = float(student_t.ppf(0.5 + level / 2, df=max(n - 1.0, 1.0))) * rms
    rank = math.ceil((z.size + 1) * level)
    if n + 1 >= 1.0 / (1.0 - level) and rank <= z.size:
        q = max(q, float(np.sort(z)[rank - 1]))
    return q


def bootstrap_scale(prediction, lower, upper) -> np.ndarray:
    """The half width in log units of bootstrap intervals (NaN where there is none)."""
    p, lo, hi = (np.asarray(v, dtype=float) for v in (prediction, lower, upper))
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.maximum(np.log(p / lo), np.log(hi / p))
    return np.where(np.isfinite(w) & (w > 0), np.maximum(w, MIN_SCALE), np.nan)


def scales(prediction, lower, upper, distance) -> np.ndarray:
    """Each point's scale: its bootstrap half width where every point has one (which grows
    with distance and with fewer points fitted, as the law's form dictates), else s(d)."""
    w = bootstrap_scale(prediction, lower, upper)
    return w if np.isfinite(w).all() else distance_scale(distance)


def widen(prediction: float, lower: float, upper: float, q: float, distance: float,
          use_bootstrap: bool = False):
    """The union of [lower, upper] and prediction·exp(±q·scale), the scale the bootstrap's
    half width (``use_bootstrap``) or s(distance)."""
    if not (math.isfinite(prediction) and prediction > 0 and math.isfinite(q)):
        return lower, upper
    scale = float(bootstrap_scale(prediction, lower, upper)) if use_bootstrap else math.nan
    if not math.isfinite(scale):
        scale = float(distance_scale(distance))
    half = q * scale
    lo, hi = prediction * math.exp(-half), prediction * math.exp(half)
    lower = lo if not math.isfinite(lower) else min(lower, lo)
    upper = hi if not math.isfinite(upper) else max(upper, hi)
    return lower, upper
