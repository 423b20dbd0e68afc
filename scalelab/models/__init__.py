"""Downscaling network families scaled by width and depth.

``build_model(family, width, depth, scale)`` makes a network; ``count_params`` gives
its exact parameter count N and ``forward_flops`` its forward FLOPs per sample,
measured with torch's FLOP counter (``torch.utils.flop_counter``), not estimated
by hand. Knows nothing of data sources or sweeps.
"""

from __future__ import annotations

import torch
from torch import nn

from scalelab._errors import ScalelabError
from scalelab.models.edsr import EDSR
from scalelab.models.names import NAMES
from scalelab.models.srcnn import SRCNN
from scalelab.models.stochastic import Stochastic
from scalelab.models.unet import UNet

__all__ = ["NAMES", "EDSR", "SRCNN", "UNet", "Stochastic", "build_model", "count_params",
           "forward_flops"]

_FAMILIES = {"edsr": EDSR, "srcnn": SRCNN, "unet": UNet}
assert tuple(_FAMILIES) == NAMES


def build_model(family: str, width: int, depth: int, scale: int, channels: int = 1,
                stochastic: bool = False, noise_channels: int = 1,
                in_channels: int | None = None) -> nn.Module:
    """A network of the named family; ``stochastic=True`` wraps it in :class:`Stochastic`.

    ``channels``: the target's channels; ``in_channels`` (default ``channels``): the
    input's, the target's LR first, then extra inputs (predictors, static fields).

    The stochastic variant takes ``noise_channels`` extra input channels of N(0, 1)
    noise; ``model.sample(lr, members)`` returns ``(B, M, C, H, W)``.
    """
    if family not in _FAMILIES:
        raise ScalelabError(
            f"unknown model family {family!r}; valid choices are {', '.join(_FAMILIES)}."
        )
    in_channels = channels if in_channels is None else in_channels
    for name, value in (("width", width), ("depth", depth), ("scale", scale),
                        ("channels", channels), ("noise_channels", noise_channels),
                        ("in_channels", in_channels)):
        if not isinstance(value, int) or value < 1:
            raise ScalelabError(f"{name} must be a positive integer, got {value!r}.")
    if not stochastic:
        return _FAMILIES[family](width=width, depth=depth, scale=scale, channels=channels,
                                 in_channels=in_channels)
    base = _FAMILIES[family](width=width, depth=depth, scale=scale, channels=channels,
                             in_channels=in_channels + noise_channels)
    return Stochastic(base, noise_channels)


def count_params(model: nn.Module) -> int:
    """Exact number of trainable parameters N."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def forward_flops(model: nn.Module, lr_shape: tuple[int, ...]) -> int:
    """Forward FLOPs for one sample of shape ``lr_shape`` (C, H, W), by torch's counter.

    Counts matrix-multiply/convolution FLOPs (2 per multiply-add), the convention of
    Kaplan et al. 2020 and of ``torch.utils.flop_counter.FlopCounterMode``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters())
    x = torch.zeros((1, *lr_shape), device=param.device, dtype=param.dtype)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return int(counter.get_total_flops())
