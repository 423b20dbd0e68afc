"""The evaluation sets of shifted regions (``options.regions``): each scored like the
validation set, its metrics recorded as ``val_<metric>@<region>``.

A run trained on one region (:mod:`scalelab.data.regions`) is evaluated at every
evaluation step on its own region's validation set (the plain ``val_*`` columns) and on
the validation patches of every other region it names (``val_rmse@tropics``, …), drawn
at the same fields (time steps). Each region's set is scored exactly as
:func:`scalelab.train.loop.evaluate` scores the validation set: in physical units, with
its own data range (PSNR, SSIM), truth spectrum and percentiles, latitude weights and —
unless ``options.threshold`` fixes it — its own exceedance threshold (the 90th percentile
of its truth); its bicubic reference is recorded once per run as
``val_bicubic_<metric>@<region>``. So ``val_rmse@tropics`` is what ``val_rmse`` would be
had the tropics' patches been the validation set. Each region costs one more pass over
``val_samples`` fields per evaluation (``benchmarks/bench_train.py`` measures it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scalelab.runs.columns import region_metric
from scalelab.train import fieldmetrics


@dataclass
class RegionSet:
    """One shifted region's validation pairs and what scoring them needs (once per run)."""

    name: str
    lr: torch.Tensor
    hr: torch.Tensor
    weights: torch.Tensor | None
    data_range: float
    reference: dict
    threshold: float
    bicubic: dict  # val_bicubic_<metric>@<region>


def region_sets(data, loss_fn, members: int, threshold=None, memory_format=None) -> list:
    """The :class:`RegionSet` of each shifted region of ``data`` (``RunData.shifted``)."""
    from scalelab.train.loop import evaluate_bicubic

    out = []
    for name, (lr, hr, weights) in data.shifted.items():
        if memory_format is not None:
            lr = lr.contiguous(memory_format=memory_format)
        physical = data.to_physical(hr)
        data_range = fieldmetrics.data_range(physical)
        reference = fieldmetrics.reference(physical)
        level = float(fieldmetrics.quantile(physical, 0.9) if threshold is None else threshold)
        bicubic = evaluate_bicubic(loss_fn, lr, hr, data_range, members, reference,
                                   to_physical=data.to_physical, weights=weights,
                                   masked=data.masked)
        out.append(RegionSet(name, lr, hr, weights, data_range, reference, level,
                             {region_metric(k, name): v for k, v in bicubic.items()}))
    return out


def evaluate_regions(sets: list, model, forward, loss_fn, members: int, autocast=None,
                     seed: int = 0, to_physical=None, masked: bool = False) -> dict:
    """Every shifted region's metrics at this step (and its bicubic reference), suffixed
    ``@<region>``; nothing without regions."""
    from scalelab.train.loop import evaluate

    row = {}
    for region in sets:
        scores = evaluate(model, forward, loss_fn, region.lr, region.hr, region.data_range,
                          members, region.threshold, autocast, region.reference, seed,
                          to_physical=to_physical, weights=region.weights, masked=masked)
        row.update({region_metric(k, region.name): v for k, v in scores.items()})
        row.update(region.bicubic)
    return row
