"""(LR, HR) training, validation and test pairs of a named field, degraded by a named operator.

``make_pairs`` is the entry the training loop calls: it returns the training pairs
(D samples) and a validation set that never changes with D; ``make_test_pairs``
returns the held-out test set. Each split draws from its own seed stream (synthetic
fields) or its own block of the data (real fields, see :mod:`scalelab.data.gridded`),
so the splits are deterministic and disjoint. :func:`make_run_data` is what a run
uses: the pairs plus what the metrics need (the inverse transform to physical units,
latitude weights of the validation rows, whether the target has missing values).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Callable

import torch

from scalelab._declare import resolve
from scalelab._errors import ScalelabError
from scalelab.data.degrade import block_mean, check_degradation, degrade
from scalelab.data.names import REGISTRY, is_data
from scalelab.data.options import data_key
from scalelab.data.synthetic import _mix


TRAIN, VAL, TEST = 0, 1, 2  # split streams: a split's samples never depend on another's size
_SPLIT_NAMES = ("train", "val", "test")


@functools.lru_cache(maxsize=8)
def _cached_source(key: str):
    import json

    values = json.loads(key)
    field = values.pop("field")
    return resolve(REGISTRY[field].maker)(field, values)  # the reader its record names


def _source(field: str, options: dict):
    """The (cached) reader of a data field; its data keys alone make the cache key."""
    return _cached_source(data_key(field, options))


def make_fields(field: str, n: int, size: int, seed: int, split: int, device="cpu",
                options: dict | None = None) -> torch.Tensor:
    """``n`` HR fields ``(n, C, size, size)`` of the named kind for one split (0, 1, 2)."""
    options = options or {}
    if field not in REGISTRY:
        raise ScalelabError(f"unknown field {field!r}; valid choices are {', '.join(REGISTRY)}.")
    record = REGISTRY[field]
    if record.kind == "synthetic":  # the generator its record names, with the declared options
        settings = {key: float(options.get(key, opt.default))
                    for key, opt in record.options.items()}
        return resolve(record.maker)(n, size, seed=seed * 3 + split, device=device, **settings)
    patches = _source(field, options).read(_SPLIT_NAMES[split], n, size, 1, seed)
    return torch.from_numpy(patches.target).to(device)


def _check_request(field: str, size: int, scale: int, degradation: str) -> None:
    if field not in REGISTRY:
        raise ScalelabError(f"unknown field {field!r}; valid choices are {', '.join(REGISTRY)}.")
    check_degradation(degradation)
    if scale < 1 or size % scale:
        raise ScalelabError(f"scale {scale} does not divide field_size {size}; choose a "
                            "field_size that is a multiple of the scale.")


def _degrade_split(hr, scale, degradation, options, seed, split):
    noise_std = float(options.get("lr_noise_std", 0.0))
    blur_sigma = options.get("blur_sigma")
    generator = torch.Generator(device="cpu").manual_seed(_mix(seed * 3 + split, 1 << 40))
    with torch.no_grad():  # a learned operator builds no graph over the data
        return degrade(hr, scale, degradation, noise_std=noise_std,
                       blur_sigma=None if blur_sigma is None else float(blur_sigma),
                       generator=generator, kernel_path=options.get("kernel_path"))


def _split_pairs(field, n, size, scale, degradation, seed, split, device, options,
                 region=None):
    """(lr, hr, row weights or None) of one split (of one region: ``options.regions``)."""
    if not is_data(field):
        hr = make_fields(field, n, size, seed, split, device, options)
        return _degrade_split(hr, scale, degradation, options, seed, split), hr, None
    # only a grid has regions (photos have no latitude/longitude: refused with the spec)
    where = {} if region is None else {"region": region}
    patches = _source(field, options).read(_SPLIT_NAMES[split], n, size, scale, seed, **where)
    hr = torch.from_numpy(patches.target)
    if patches.lr is not None:  # from the coarse source
        lr = torch.from_numpy(patches.lr)
    else:
        made_of = hr if patches.predictors is None else torch.cat(
            [hr, torch.from_numpy(patches.predictors)], dim=1)
        lr = _degrade_split(made_of, scale, degradation, options, seed, split)
    if patches.static is not None:
        static = torch.from_numpy(patches.static).nan_to_num(0.0)
        lr = torch.cat([lr, block_mean(static, scale)], dim=1)
    lr = lr.nan_to_num(0.0)  # a missing input is the training mean (zscore) or 0
    weights = None if patches.weights is None else torch.from_numpy(patches.weights)
    return lr.to(device), hr.to(device), weights


def make_pairs(field: str, samples: int, val_samples: int, size: int, scale: int,
               degradation: str = "block_mean", data_seed: int = 0, device="cpu",
               options: dict | None = None):
    """Return ``((lr_train, hr_train), (lr_val, hr_val))`` tensors ``(N, C, H, W)`` on ``device``.

    The validation fields come from their own seed stream (or data block), so they
    are the same for every training-set size D.
    """
    data = make_run_data(field, samples, val_samples, size, scale, degradation, data_seed,
                         device, options)
    return data.train, data.val


def make_test_pairs(field: str, test_samples: int, size: int, scale: int,
                    degradation: str = "block_mean", data_seed: int = 0, device="cpu",
                    options: dict | None = None):
    """Return the held-out test pairs ``(lr_test, hr_test)``; independent of D and of validation."""
    options = options or {}
    _check_request(field, size, scale, degradation)
    lr, hr, _ = _split_pairs(field, test_samples, size, scale, degradation, data_seed, TEST,
                             device, options)
    return lr, hr


def _identity(x):
    return x


@dataclass
class RunData:
    """The pairs of a run and what its metrics need.

    ``to_physical``: the target from model space to physical units (identity for
    synthetic fields); ``val_weights``: ``(N, 1, H, 1)`` latitude weights of the
    validation rows, or None; ``masked``: the HR target has missing values (NaN) that
    losses and metrics must ignore.
    """

    train: tuple
    val: tuple
    to_physical: Callable = _identity
    val_weights: torch.Tensor | None = None
    masked: bool = False
    #: the validation sets of the shifted regions (``options.regions``): region →
    #: ``(lr, hr, weights)``, drawn at the same fields as the plain validation set
    shifted: dict = dataclass_field(default_factory=dict)


def make_run_data(field: str, samples: int, val_samples: int, size: int, scale: int,
                  degradation: str = "block_mean", data_seed: int = 0, device="cpu",
                  options: dict | None = None) -> RunData:
    """The training pairs (D samples), the validation pairs and how to score them."""
    options = options or {}
    _check_request(field, size, scale, degradation)
    lr_train, hr_train, _ = _split_pairs(field, samples, size, scale, degradation, data_seed,
                                         TRAIN, device, options)
    lr_val, hr_val, weights = _split_pairs(field, val_samples, size, scale, degradation,
                                           data_seed, VAL, device, options)
    if not is_data(field):
        return RunData((lr_train, hr_train), (lr_val, hr_val))
    source = _source(field, options)
    shifted = {}
    for region in getattr(source, "layout", None) and source.layout.eval_regions or ():
        lr_r, hr_r, w_r = _split_pairs(field, val_samples, size, scale, degradation, data_seed,
                                       VAL, device, options, region=region)
        if w_r is not None:
            w_r = w_r.to(device=device, dtype=torch.float64)[:, None, :, None]
        shifted[region] = (lr_r, hr_r, w_r)
    masked = bool(torch.isnan(hr_train).any() or torch.isnan(hr_val).any()
                  or any(torch.isnan(hr).any() for _, hr, _ in shifted.values()))
    if weights is not None:
        weights = weights.to(device=device, dtype=torch.float64)[:, None, :, None]
    return RunData((lr_train, hr_train), (lr_val, hr_val), source.to_physical, weights, masked,
                   shifted)
