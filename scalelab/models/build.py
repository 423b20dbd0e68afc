"""Building a network of a named family, and measuring it: parameters N and forward FLOPs.

``build_model(family, width, depth, scale, **options)`` makes a network; ``count_params``
gives its exact parameter count N, ``forward_flops`` its forward FLOPs per sample and
``training_flops`` the forward FLOPs of training on one sample, measured with torch's
FLOP counter (``torch.utils.flop_counter``), not estimated by hand.
"""

from __future__ import annotations

import torch
from torch import nn

from scalelab._declare import resolve
from scalelab._errors import ScalelabError
from scalelab.models.names import REGISTRY
from scalelab.models.stochastic import LatentPerturbed, Stochastic

PERTURBATIONS = ("noise", "vae")


def build_model(family: str, width: int, depth: int, scale: int, channels: int = 1,
                stochastic: bool = False, noise_channels: int = 1, in_channels: int | None = None,
                perturbation: str = "noise", **options) -> nn.Module:
    """A network of the named family; ``stochastic=True`` wraps it in :class:`Stochastic`.

    The stochastic variant takes ``noise_channels`` extra input channels of N(0, 1)
    noise; ``model.sample(lr, members)`` returns ``(B, M, C, H, W)``. ``channels``: the
    target's channels; ``in_channels`` (default ``channels``): the input's, the target's
    LR first, then extra inputs (predictors, static fields). A generative
    family (``diffusion``) samples by itself and is never wrapped. ``perturbation="vae"``:
    the injected channels are a latent an encoder predicts from the input
    (:class:`~scalelab.models.stochastic.LatentPerturbed`, FuXi-ENS), ``noise_channels``
    of them. ``options`` are the
    family's own settings (its record's ``options``, e.g. ``heads`` of ``swinir``).
    """
    if family not in REGISTRY:
        raise ScalelabError(
            f"unknown model family {family!r}; valid choices are {', '.join(REGISTRY)}."
        )
    unknown = sorted(set(options) - set(REGISTRY[family].options))
    if unknown:
        valid = ", ".join(REGISTRY[family].options) or "none"
        raise ScalelabError(f"the {family} family has no option {unknown[0]!r}; its options are "
                            f"{valid}.")
    in_channels = channels if in_channels is None else in_channels
    for name, value in (("width", width), ("depth", depth), ("scale", scale),
                        ("channels", channels), ("noise_channels", noise_channels),
                        ("in_channels", in_channels)):
        if not isinstance(value, int) or value < 1:
            raise ScalelabError(f"{name} must be a positive integer, got {value!r}.")
    if perturbation not in PERTURBATIONS:
        raise ScalelabError(f"perturbation must be one of {', '.join(PERTURBATIONS)}, got "
                            f"{perturbation!r}.")
    network = resolve(REGISTRY[family].builder)  # the family's record names its class
    if not stochastic or REGISTRY[family].generative:
        return network(width=width, depth=depth, scale=scale, channels=channels,
                                 in_channels=in_channels, **options)
    base = network(width=width, depth=depth, scale=scale, channels=channels,
                             in_channels=in_channels + noise_channels, **options)
    if perturbation == "vae":
        return LatentPerturbed(base, in_channels, noise_channels, width)
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


def training_flops(model: nn.Module, lr_shape: tuple[int, ...]) -> int:
    """Forward FLOPs of training on one sample: :func:`forward_flops` for a network trained
    on its output; for a generative family, the forward of its ``training_loss`` (one
    denoiser evaluation, plus the regression mean if any), by torch's counter."""
    if not hasattr(model, "training_loss"):
        return forward_flops(model, lr_shape)
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters())
    channels, height, width = lr_shape
    lr = torch.zeros((1, *lr_shape), device=param.device, dtype=param.dtype)
    hr = torch.zeros((1, model.channels, height * model.scale, width * model.scale),
                     device=param.device, dtype=param.dtype)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.training_loss(lr, hr)
    return int(counter.get_total_flops())
