"""Data for downscaling: field generators, degradation operators, (LR, HR) pairs.

Knows nothing of models or sweeps. ``make_pairs`` is the one entry the training
loop calls: it returns the training pairs (D samples) and a validation set that
never changes with D (a separate seed stream).
"""

from __future__ import annotations

import torch

from scalelab._errors import ScalelabError
from scalelab.data.degrade import block_mean, degrade
from scalelab.data.names import DEGRADATIONS, FIELDS
from scalelab.data.synthetic import (
    gaussian_random_field, precipitation_field, radial_power_spectrum,
)

__all__ = [
    "FIELDS", "DEGRADATIONS", "gaussian_random_field", "precipitation_field", "radial_power_spectrum",
    "block_mean", "degrade", "make_fields", "make_pairs",
]

TRAIN, VAL, TEST = 0, 1, 2  # split streams: a split's samples never depend on another's size


def make_fields(field: str, n: int, size: int, seed: int, split: int, device="cpu",
                options: dict | None = None) -> torch.Tensor:
    """``n`` HR fields ``(n, 1, size, size)`` of the named kind for one split."""
    options = options or {}
    if field == "grf":
        return gaussian_random_field(
            n, size, slope=float(options.get("slope", 3.0)),
            seed=seed * 3 + split, device=device,
        )
    if field == "precip":
        return precipitation_field(
            n, size, slope=float(options.get("slope", 3.0)),
            wet_fraction=float(options.get("wet_fraction", 0.3)),
            sigma=float(options.get("sigma", 1.0)), seed=seed * 3 + split, device=device,
        )
    raise ScalelabError(f"unknown field {field!r}; valid choices are {', '.join(FIELDS)}.")


def make_pairs(field: str, samples: int, val_samples: int, size: int, scale: int,
               degradation: str = "block_mean", data_seed: int = 0, device="cpu",
               options: dict | None = None):
    """Return ``((lr_train, hr_train), (lr_val, hr_val))`` tensors on ``device``.

    The validation fields come from their own seed stream, so they are the same for
    every training-set size D.
    """
    hr_train = make_fields(field, samples, size, data_seed, TRAIN, device, options)
    hr_val = make_fields(field, val_samples, size, data_seed, VAL, device, options)
    return (
        (degrade(hr_train, scale, degradation), hr_train),
        (degrade(hr_val, scale, degradation), hr_val),
    )
