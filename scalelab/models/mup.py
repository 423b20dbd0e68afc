"""μP for width scaling: the maximal-update parametrisation with Adam, relative to a base width.

Yang et al. 2022, "Tensor Programs V: Tuning Large Neural Networks via Zero-Shot
Hyperparameter Transfer", Table 3 (the form their ``mup`` package implements), for Adam:
with ``m = width / base_width``,

- hidden weights (both fan-in and fan-out grow with the width): initialised as in the
  standard parametrisation (variance ∝ 1/fan_in, PyTorch's default), Adam learning rate
  ``lr / m``;
- input weights, biases and norms (at most one dimension grows with the width): unchanged,
  learning rate ``lr``;
- output weights (fan-in grows, fan-out fixed — the "readout"): their input multiplied
  by ``1 / m``, learning rate ``lr``;
- attention logits scaled by ``1/d`` instead of ``1/√d`` in the head dimension d (their μP
  Transformer's attention), written ``√d_base / d`` so that the base model is unchanged;
  swinir's heads grow with the width (8 channels a head by default), so d only changes
  where ``heads`` is fixed or the base width is below 8.

At ``width == base_width`` every multiplier is 1: the base model is the standard one, and
under μP its tuned learning rate is meant to carry over to every width — which
``sweeps/lr_sensitivity.yaml`` measures rather than assumes.

Which dimensions grow with the width is found as the ``mup`` package finds it
(``set_base_shapes``): the same network is built at ``base_width`` and each parameter's
shape is compared with its base's; nothing is declared per family. Works for any family
whose record has ``mup=True`` (EDSR, SRCNN, U-Net, SwinIR and their stochastic variants).
"""

from __future__ import annotations

import torch
from torch import nn

from scalelab._errors import ScalelabError


class Readout(nn.Module):
    """An output layer whose input is multiplied by ``multiplier`` (μP's 1/m; its bias is not)."""

    def __init__(self, layer: nn.Module, multiplier: float):
        super().__init__()
        self.layer = layer
        self.multiplier = float(multiplier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x * self.multiplier)

    def extra_repr(self) -> str:
        return f"multiplier={self.multiplier:g}"


def _fan_dims(module: nn.Module) -> tuple[int, int]:
    """(fan-in, fan-out) dimensions of a layer's weight: a transposed convolution stores
    (in, out, ...), the others (out, in, ...)."""
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return 0, 1
    return 1, 0


def apply_mup(model: nn.Module, base: nn.Module) -> dict[str, float]:
    """Turn ``model`` into its μP form relative to ``base`` (the same network at the base
    width); returns each parameter's learning-rate multiplier by name (1 for most).

    In place: each readout layer (weight of ≥ 2 dimensions whose fan-in grows and fan-out
    does not) is wrapped in :class:`Readout` with multiplier ``base fan-in / fan-in``, and
    each attention with a ``head_dim`` has its logit scale set to ``√d_base / d``. The
    multipliers: ``base fan-in / fan-in`` for hidden weights (both dimensions grow).
    """
    params, base_params = dict(model.named_parameters()), dict(base.named_parameters())
    if set(params) != set(base_params):
        missing = sorted(set(params) ^ set(base_params))[0]
        raise ScalelabError(f"μP: the network at the base width has other parameters than at "
                            f"this width ({missing!r}); its family cannot be scaled by width "
                            f"alone, so use parametrization: standard.")
    base_modules = dict(base.named_modules())
    multipliers = {name: 1.0 for name in params}
    readouts = []
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter) or weight.ndim < 2:
            continue
        base_weight = base_modules[name].weight
        fan_in, fan_out = _fan_dims(module)
        grows_in = weight.shape[fan_in] != base_weight.shape[fan_in]
        grows_out = weight.shape[fan_out] != base_weight.shape[fan_out]
        ratio = base_weight.shape[fan_in] / weight.shape[fan_in]
        prefix = f"{name}." if name else ""
        if grows_in and grows_out:  # hidden: Adam's learning rate ∝ 1/fan_in
            multipliers[f"{prefix}weight"] = ratio
        elif grows_in:  # readout: output multiplier ∝ 1/fan_in
            readouts.append((name, ratio))
    for name, module in model.named_modules():  # attention logits ∝ 1/d
        if hasattr(module, "head_dim") and hasattr(module, "scale"):
            base_dim = base_modules[name].head_dim
            module.scale = base_dim ** 0.5 / module.head_dim
    for name, ratio in readouts:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Readout(getattr(parent, child), ratio))
    # names after wrapping: "<readout>.weight" became "<readout>.layer.weight"
    wrapped = {name for name, _ in readouts}
    renamed = {}
    for name, value in multipliers.items():
        owner, _, leaf = name.rpartition(".")
        renamed[f"{owner}.layer.{leaf}" if owner in wrapped else name] = value
    return renamed


def lr_multipliers(model: nn.Module) -> dict[str, float]:
    """The learning-rate multiplier of each parameter of ``model`` (``apply_mup``'s; all 1
    for a network in the standard parametrisation)."""
    found = getattr(model, "lr_multipliers", None)
    names = [name for name, _ in model.named_parameters()]
    return {name: float(found.get(name, 1.0)) if found else 1.0 for name in names}
