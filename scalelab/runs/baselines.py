"""Reference forecasts recorded beside each run's metrics: bicubic upsampling of the coarse
input, scored by the training loop once per run on the same validation set
(``val_bicubic_<metric>``, :func:`scalelab.train.loop.evaluate_bicubic`). Torch-free.

- :func:`bicubic_column` — the column of a metric's bicubic reference (``val_mse`` →
  ``val_bicubic_mse``; ``val_loss``, each run's own loss, → ``val_bicubic_loss``).
- :func:`bicubic_value` — that reference for a table's runs, when they share one (their
  validation set and, for ``val_loss``, their loss are the same).
- :func:`versus_bicubic` — "12.3% better than bicubic upsampling (0.0393)", in words.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PREFIX = "val_bicubic_"
#: metrics for which a larger value is better (all others: smaller is better)
HIGHER_IS_BETTER = ("val_psnr", "val_ssim")
#: metrics whose value is not a skill to compare by ratio (a signed bias, a count)
NOT_COMPARED = ("val_p99_bias", "val_p999_bias")


def bicubic_column(y: str) -> str | None:
    """The column holding bicubic upsampling's value of the metric ``y``, or None when ``y``
    is not a validation metric (``val_…``)."""
    if not isinstance(y, str) or not y.startswith("val_") or y.startswith(PREFIX) \
            or y in NOT_COMPARED:
        return None
    return PREFIX + y.removeprefix("val_")


def bicubic_value(runs: pd.DataFrame, y: str, rtol: float = 1e-6) -> float | None:
    """Bicubic upsampling's value of ``y`` for the runs of ``runs`` (any rows of them), or
    None when the table has no such column or its runs disagree on it (different
    validation sets, or different losses for ``val_loss``): one reference, or none."""
    column = bicubic_column(y)
    if column is None or not isinstance(runs, pd.DataFrame) or column not in runs.columns:
        return None
    values = pd.to_numeric(runs[column], errors="coerce").to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    lo, hi = float(values.min()), float(values.max())
    if hi - lo > rtol * max(abs(lo), abs(hi), 1e-300):
        return None
    return float(np.median(values))


def improvement(value: float, reference: float, y: str) -> float:
    """The fraction by which ``value`` of ``y`` is better than ``reference`` (negative:
    worse): (reference − value)/|reference|, or (value − reference)/|reference| for a
    metric where larger is better."""
    if not np.isfinite(value) or not np.isfinite(reference) or reference == 0:
        return float("nan")
    gain = (value - reference) if y in HIGHER_IS_BETTER else (reference - value)
    return float(gain / abs(reference))


def versus_bicubic(value: float, reference: float | None, y: str) -> str | None:
    """``value`` against bicubic upsampling's ``reference`` of ``y`` in words, e.g.
    "12.3% better than bicubic upsampling (0.04482)"; None without a reference."""
    if reference is None:
        return None
    gain = improvement(value, reference, y)
    if not np.isfinite(gain):
        return None
    word = "better" if gain >= 0 else "worse"
    return f"{abs(gain):.1%} {word} than bicubic upsampling ({reference:.4g})"
