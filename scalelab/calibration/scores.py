"""Proper scores for ensemble forecasts.

CRPS of an M-member ensemble x against an observation y (Gneiting & Raftery 2007,
eq. 21): CRPS = (1/M) Σ_j |x_j − y| − 1/(2M²) Σ_j Σ_k |x_j − x_k|. The pairwise term
is computed from the sorted ensemble in O(M log M):
Σ_j Σ_k |x_j − x_k| = 2 Σ_i (2i − M − 1) x_(i), i = 1..M.
"""

from __future__ import annotations

import numpy as np

from scalelab._errors import ScalelabError
from scalelab.calibration._arrays import as_numpy


def crps_ensemble(obs, ens, axis: int = 0, estimator: str = "nrg") -> np.ndarray:
    """CRPS of ensemble ``ens`` (members along ``axis``) against ``obs``.

    ``estimator``: ``"nrg"`` (the standard energy form) or ``"fair"`` (Ferro 2014,
    pairwise term divided by 2M(M−1), unbiased for the infinite ensemble).
    """
    obs = as_numpy(obs)
    ens = np.moveaxis(as_numpy(ens), axis, -1)
    m = ens.shape[-1]
    if estimator not in ("nrg", "fair"):
        raise ScalelabError(f"crps_ensemble: unknown estimator {estimator!r}; valid choices "
                            f"are nrg, fair.")
    if estimator == "fair" and m < 2:
        raise ScalelabError("crps_ensemble: the fair estimator needs at least 2 members, got 1.")
    skill = np.abs(ens - obs[..., None]).mean(-1)
    x = np.sort(ens, axis=-1)
    rank = 2 * np.arange(1, m + 1) - m - 1
    pair_sum = 2 * (x * rank).sum(-1)  # Σ_j Σ_k |x_j − x_k|
    denom = 2 * m * m if estimator == "nrg" else 2 * m * (m - 1)
    return skill - pair_sum / denom
