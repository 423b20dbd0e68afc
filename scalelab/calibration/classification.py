"""Calibration of (classification or exceedance) probabilities.

Expected calibration error with equal-width bins (Naeini et al. 2015; Guo et al.
2017, eq. 3): ECE = Σ_b (n_b/n) |acc(b) − conf(b)|, over the top-label confidence.
"""

from __future__ import annotations

import numpy as np

from scalelab._errors import ScalelabError
from scalelab.calibration._arrays import as_numpy


def ece(probs, labels, bins: int = 15) -> float:
    """Top-label expected calibration error with ``bins`` equal-width bins.

    ``probs``: (n, k) class probabilities; ``labels``: (n,) integer classes. A
    confidence of exactly 1.0 falls in the last bin.
    """
    probs = as_numpy(probs)
    labels = as_numpy(labels, dtype=np.int64)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],):
        raise ScalelabError(f"ece needs probs of shape (n, k) and labels of shape (n,), got "
                            f"{probs.shape} and {labels.shape}.")
    if np.isnan(probs).any() or (probs < 0).any() or (probs > 1).any():
        raise ScalelabError("ece: probabilities must lie in [0, 1] and hold no NaN.")
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    acc_sum = np.bincount(index, weights=correct.astype(float), minlength=bins)
    return float(np.abs(acc_sum - conf_sum).sum() / confidence.size)
