"""Fake quantization with a straight-through estimator, for quantization-aware training.

Any family's convolutions and linear layers are quantized without editing the family:
:func:`attach_quantizers` walks the network and gives each ``nn.Conv2d``/``nn.Linear``

- its weight through :class:`WeightFakeQuant` (``torch.nn.utils.parametrize``): symmetric
  per-output-channel quantization to k bits,
  ``ŵ = s·clamp(round(w/s), −q, q)``, ``q = 2^(k−1) − 1``, ``s = max|w_c| / q`` for each
  output channel c (Jacob et al. 2018 §2; Kumar et al. 2024 §3 fake-quantize weights the
  same way), and
- its input through a forward pre-hook: symmetric per-tensor quantization of the
  activation to k bits, ``x̂ = s·clamp(round(x/s), −q, q)``, ``s = max|x| / q``.

Both pass gradients straight through (Bengio et al. 2013): the backward of ``round`` is
the identity, ``x̂ = x + (Q(x) − x).detach()``, so ``∂L/∂x = ∂L/∂x̂``. The scales are
recomputed from the tensor at each call and not differentiated (``detach``).

The quantizers are attached once, when the run's model is built (so its ``state_dict``
keys do not change mid-run), and switched on and off with :func:`set_quantized`: an
FP-then-QAT run (Dremov et al. 2025) trains in full precision, then turns them on for its
last fraction of steps. A network so quantized is evaluated quantized.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

#: layers whose weights and inputs are quantized
QUANTIZED_LAYERS = (nn.Conv2d, nn.Linear)


def levels(bits: int) -> int:
    """q = 2^(k−1) − 1, the largest integer of a symmetric k-bit grid (−q … q)."""
    return 2 ** (int(bits) - 1) - 1


def fake_quantize(x: torch.Tensor, bits: int, dims: tuple = ()) -> torch.Tensor:
    """Symmetric fake quantization of ``x`` to ``bits`` bits with a straight-through gradient.

    ``dims``: the dimensions the scale is shared over is all but these (``(0,)``: one scale
    per index of dim 0, e.g. per output channel of a weight); ``()``: one scale for the
    tensor. Forward: ``s·clamp(round(x/s), −q, q)``, ``s = max|x| / q`` (a zero slice keeps
    its zeros); backward: the identity.
    """
    q = levels(bits)
    reduce = tuple(d for d in range(x.dim()) if d not in dims)
    with torch.no_grad():
        top = x.detach().abs().amax(dim=reduce, keepdim=True) if reduce else x.detach().abs()
        scale = torch.where(top > 0, top / q, torch.ones_like(top))
        grid = torch.clamp(torch.round(x.detach() / scale), -q, q) * scale
    return x + (grid - x).detach()


class WeightFakeQuant(nn.Module):
    """A parametrization: the weight seen by the layer is its k-bit per-output-channel grid
    when ``enabled``, the weight itself otherwise."""

    def __init__(self, bits: int):
        super().__init__()
        self.bits = int(bits)
        self.enabled = True

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return fake_quantize(weight, self.bits, dims=(0,)) if self.enabled else weight


class _ActFakeQuant:
    """A forward pre-hook quantizing a layer's input to k bits per tensor when enabled."""

    def __init__(self, bits: int):
        self.bits = int(bits)
        self.enabled = True

    def __call__(self, module, args):
        if not self.enabled:
            return None
        return (fake_quantize(args[0], self.bits), *args[1:])


def attach_quantizers(model: nn.Module, weight_bits: int = 0, act_bits: int = 0,
                      enabled: bool = True) -> nn.Module:
    """Give every conv/linear layer of ``model`` k-bit fake-quantized weights
    (``weight_bits``) and inputs (``act_bits``); 0 leaves that part in full precision.
    Returns the model (changed in place); :func:`set_quantized` switches them."""
    model._fake_quant = []  # the quantizers, for set_quantized
    if not weight_bits and not act_bits:
        return model
    multipliers = getattr(model, "lr_multipliers", None)  # μP's, keyed by parameter name
    for name, layer in [(n, m) for n, m in model.named_modules()
                        if isinstance(m, QUANTIZED_LAYERS)]:
        if weight_bits:
            quant = WeightFakeQuant(weight_bits)
            parametrize.register_parametrization(layer, "weight", quant)
            model._fake_quant.append(quant)
            key = f"{name}.weight" if name else "weight"
            if multipliers and key in multipliers:  # the weight's new name
                multipliers[key.removesuffix("weight") + "parametrizations.weight.original"] = \
                    multipliers.pop(key)
        if act_bits:
            hook = _ActFakeQuant(act_bits)
            layer.register_forward_pre_hook(hook)
            model._fake_quant.append(hook)
    set_quantized(model, enabled)
    return model


def set_quantized(model: nn.Module, enabled: bool) -> None:
    """Switch the fake quantizers :func:`attach_quantizers` gave ``model`` on or off."""
    for quant in getattr(model, "_fake_quant", ()):
        quant.enabled = bool(enabled)


def is_quantized(model: nn.Module) -> bool:
    """Whether ``model`` has fake quantizers and they are on."""
    quants = getattr(model, "_fake_quant", ())
    return bool(quants) and all(q.enabled for q in quants)
