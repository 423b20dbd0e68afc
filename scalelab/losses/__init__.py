"""Loss variants by name.

``get_loss(name)`` returns a callable ``loss(pred, target, lr=None) -> scalar``.

- ``mse``: mean squared error, (1/n) Σ (ŷ − y)².
- ``l1``: mean absolute error, (1/n) Σ |ŷ − y| (Lim et al. 2017 train EDSR with it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scalelab._errors import ScalelabError
from scalelab.losses.names import NAMES

__all__ = ["NAMES", "get_loss", "mse", "l1"]


def mse(pred: torch.Tensor, target: torch.Tensor, lr: torch.Tensor | None = None) -> torch.Tensor:
    return F.mse_loss(pred, target)


def l1(pred: torch.Tensor, target: torch.Tensor, lr: torch.Tensor | None = None) -> torch.Tensor:
    return F.l1_loss(pred, target)


_LOSSES = {"mse": mse, "l1": l1}
assert tuple(_LOSSES) == NAMES


def get_loss(name: str):
    if name not in _LOSSES:
        raise ScalelabError(f"unknown loss {name!r}; valid choices are {', '.join(_LOSSES)}.")
    return _LOSSES[name]
