"""(LR, HR) training, validation and test pairs of a named field, degraded by a named operator.

``make_pairs`` is the entry the training loop calls: it returns the training pairs
(D samples) and a validation set that never changes with D; ``make_test_pairs``
returns the held-out test set. Each split draws from its own seed stream (synthetic
fields) or its own block of the data (real fields, see :mod:`scalelab.data.gridded`),
so the splits are deterministic and disjoint.
"""

from __future__ import annotations

import functools

import torch

from scalelab._errors import ScalelabError
from scalelab.data.degrade import check_degradation, degrade
from scalelab.data.gridded import GriddedSource, example_path
from scalelab.data.names import FIELDS
from scalelab.data.synthetic import (
    _mix, gaussian_random_field, precipitation_field, turbulence_field,
)

TRAIN, VAL, TEST = 0, 1, 2  # split streams: a split's samples never depend on another's size
_SPLIT_NAMES = ("train", "val", "test")


@functools.lru_cache(maxsize=8)
def _gridded(path: str, variable: str | None, split_dim: str | None) -> GriddedSource:
    return GriddedSource(path, variable, split_dim=split_dim)


def _source(field: str, options: dict) -> GriddedSource:
    if field == "dem":
        return _gridded(str(example_path("jacksboro_dem.nc")), "elevation", None)
    if "path" not in options:
        raise ScalelabError("field 'gridded' needs options.path (a netCDF file or zarr store) "
                            "and options.variable.")
    return _gridded(str(options["path"]), options.get("variable"), options.get("split_dim"))


def make_fields(field: str, n: int, size: int, seed: int, split: int, device="cpu",
                options: dict | None = None) -> torch.Tensor:
    """``n`` HR fields ``(n, 1, size, size)`` of the named kind for one split (0, 1, 2)."""
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
    if field == "turbulence":
        return turbulence_field(
            n, size, seed=seed * 3 + split, viscosity=float(options.get("viscosity", 1e-3)),
            time=float(options.get("time", 1.0)), device=device,
        )
    if field in ("dem", "gridded"):
        return _source(field, options).samples(_SPLIT_NAMES[split], n, size, seed, device=device)
    raise ScalelabError(f"unknown field {field!r}; valid choices are {', '.join(FIELDS)}.")


def _check_request(field: str, size: int, scale: int, degradation: str) -> None:
    if field not in FIELDS:
        raise ScalelabError(f"unknown field {field!r}; valid choices are {', '.join(FIELDS)}.")
    check_degradation(degradation)
    if scale < 1 or size % scale:
        raise ScalelabError(f"scale {scale} does not divide field_size {size}; choose a "
                            "field_size that is a multiple of the scale.")


def _degrade_split(hr, scale, degradation, options, seed, split):
    noise_std = float(options.get("lr_noise_std", 0.0))
    blur_sigma = options.get("blur_sigma")
    generator = torch.Generator(device="cpu").manual_seed(_mix(seed * 3 + split, 1 << 40))
    return degrade(hr, scale, degradation, noise_std=noise_std,
                   blur_sigma=None if blur_sigma is None else float(blur_sigma),
                   generator=generator)


def make_pairs(field: str, samples: int, val_samples: int, size: int, scale: int,
               degradation: str = "block_mean", data_seed: int = 0, device="cpu",
               options: dict | None = None):
    """Return ``((lr_train, hr_train), (lr_val, hr_val))`` tensors ``(N, 1, H, W)`` on ``device``.

    The validation fields come from their own seed stream (or data block), so they
    are the same for every training-set size D.
    """
    options = options or {}
    _check_request(field, size, scale, degradation)
    hr_train = make_fields(field, samples, size, data_seed, TRAIN, device, options)
    hr_val = make_fields(field, val_samples, size, data_seed, VAL, device, options)
    return (
        (_degrade_split(hr_train, scale, degradation, options, data_seed, TRAIN), hr_train),
        (_degrade_split(hr_val, scale, degradation, options, data_seed, VAL), hr_val),
    )


def make_test_pairs(field: str, test_samples: int, size: int, scale: int,
                    degradation: str = "block_mean", data_seed: int = 0, device="cpu",
                    options: dict | None = None):
    """Return the held-out test pairs ``(lr_test, hr_test)``; independent of D and of validation."""
    options = options or {}
    _check_request(field, size, scale, degradation)
    hr_test = make_fields(field, test_samples, size, data_seed, TEST, device, options)
    return _degrade_split(hr_test, scale, degradation, options, data_seed, TEST), hr_test
