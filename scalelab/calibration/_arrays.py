"""Array input handling shared by the metrics: numpy arrays or torch tensors in."""

from __future__ import annotations

import numpy as np


def as_numpy(values, dtype=np.float64) -> np.ndarray:
    """Convert a numpy array, list or torch tensor (any device) to a numpy array."""
    if hasattr(values, "detach") and hasattr(values, "cpu"):  # a torch tensor, without importing torch
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=dtype)
