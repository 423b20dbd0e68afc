"""Degradation (coarsening) operators that make the low-resolution input from a field.

``block_mean``: conservative block averaging over ``scale × scale`` cells — the
coarse value is the mean of the fine cells it covers, so area means (and totals of
e.g. precipitation) are conserved exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scalelab._errors import ScalelabError
from scalelab.data.names import DEGRADATIONS


def block_mean(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Conservative coarsening of ``(..., H, W)`` by averaging ``scale × scale`` blocks."""
    if hr.shape[-1] % scale or hr.shape[-2] % scale:
        raise ScalelabError(
            f"scale {scale} does not divide the field size {tuple(hr.shape[-2:])}; "
            "crop the field or choose another scale."
        )
    return F.avg_pool2d(hr, kernel_size=scale, stride=scale)


OPERATORS = {"block_mean": block_mean}
assert tuple(OPERATORS) == DEGRADATIONS


def degrade(hr: torch.Tensor, scale: int, operator: str = "block_mean") -> torch.Tensor:
    """Apply the named degradation operator."""
    if operator not in OPERATORS:
        raise ScalelabError(
            f"unknown degradation {operator!r}; valid choices are {', '.join(OPERATORS)}."
        )
    return OPERATORS[operator](hr, scale)
