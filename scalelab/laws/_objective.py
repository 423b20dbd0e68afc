"""The robust objective of scaling-law fits (Hoffmann et al. 2022, §D.2; Besiroglu et al. 2024).

Huber loss with a small ``delta`` (1e-3 by default) on the residual
log(observed) − log(predicted), SUMMED over points (a mean makes L-BFGS stop early),
with the prediction written in log-sum-exp form so that every term stays positive.
"""

from __future__ import annotations

import numpy as np


def huber(residual: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss ρ_δ(r) = r²/2 for |r| ≤ δ, δ(|r| − δ/2) otherwise."""
    abs_r = np.abs(residual)
    return np.where(abs_r <= delta, 0.5 * residual**2, delta * (abs_r - 0.5 * delta))


def huber_grad(residual: np.ndarray, delta: float) -> np.ndarray:
    """dρ_δ/dr = clip(r, −δ, δ)."""
    return np.clip(residual, -delta, delta)
