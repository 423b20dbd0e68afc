"""The loss of a name or weighted-sum expression, as a callable on tensors.

``get_loss(variant)`` parses the expression (:mod:`scalelab.losses.names`) and sums
its terms (:mod:`scalelab.losses.functional`); see :mod:`scalelab.losses`.
"""

from __future__ import annotations

import torch

from scalelab._errors import ScalelabError
from scalelab.losses import functional
from scalelab.losses.names import ENSEMBLE, parse_variant

_PIXEL = {"mse": functional.mse, "l1": functional.l1}


class Loss:
    """A weighted sum of named loss terms, callable as ``loss(pred, target, lr=None)``."""

    def __init__(self, variant: str, scale: int | None = None, degradation: str | None = None):
        self.variant = variant
        self.scale = scale
        self.degradation = degradation or "block_mean"
        self.terms = parse_variant(variant, source="get_loss")
        self.needs_ensemble = any(name in ENSEMBLE for _, name, _ in self.terms)
        from scalelab.data.degrade import check_degradation

        check_degradation(self.degradation)

    def __repr__(self) -> str:
        return f"Loss({self.variant!r})"

    def __call__(self, pred: torch.Tensor, target: torch.Tensor,
                 lr: torch.Tensor | None = None) -> torch.Tensor:
        ensemble = pred if pred.dim() == target.dim() + 1 else pred.unsqueeze(1)
        if ensemble.dim() != target.dim() + 1 or ensemble.shape[2:] != target.shape[1:]:
            raise ScalelabError(f"prediction shape {tuple(pred.shape)} does not match target shape "
                                f"{tuple(target.shape)}; give (B, C, H, W) or (B, M, C, H, W).")
        mean = ensemble.mean(1)
        total = 0.0
        for weight, name, settings in self.terms:
            if name in ENSEMBLE:
                value = functional.crps_ensemble(ensemble, target, estimator=name[len("crps_"):],
                                                 alpha=settings.get("alpha", 0.95))
            else:
                value = self._deterministic(name, settings, mean, target, lr)
            total = total + weight * value
        return total

    def _deterministic(self, name, settings, pred, target, lr):
        if name in _PIXEL:
            return _PIXEL[name](pred, target)
        if name == "charbonnier":
            return functional.charbonnier(pred, target, settings["eps"])
        if name == "huber":
            return functional.huber(pred, target, settings["huber_delta"])
        if name == "quantile":
            return functional.quantile(pred, target, settings["tau"])
        if name == "spectral":
            return functional.spectral(pred, target, settings["eps"])
        if name == "gradient":
            return functional.gradient(pred, target)
        if name == "wasserstein_reg":
            return (_PIXEL[settings["pixel"]](pred, target)
                    + settings["weight"] * functional.wasserstein_1d(pred, target))
        if name == "downscale_consistency":
            return (_PIXEL[settings["pixel"]](pred, target)
                    + settings["weight"] * self._consistency(pred, lr))
        if name == "class_weighted_ce":
            edges = torch.tensor(settings["edges"], dtype=pred.dtype, device=pred.device)
            classes = torch.bucketize(target, edges, right=True)
            weights = settings["weights"]
            weights = None if weights is None else torch.tensor(weights, dtype=pred.dtype)
            log_probs = functional.bin_log_probs(pred, edges, settings["sigma"])
            return functional.class_weighted_ce(log_probs, classes, weights)
        raise AssertionError(name)  # parse_variant admits only known names

    def _consistency(self, pred, lr):
        from scalelab.data.degrade import degrade

        if lr is None:
            raise ScalelabError("downscale_consistency needs the LR input; call loss(pred, target, lr).")
        scale = self.scale or pred.shape[-1] // lr.shape[-1]
        if pred.shape[-1] != scale * lr.shape[-1] or pred.shape[-2] != scale * lr.shape[-2]:
            raise ScalelabError(f"prediction {tuple(pred.shape[-2:])} is not {scale} times the LR "
                                f"input {tuple(lr.shape[-2:])}; pass the run's scale to get_loss.")
        # the LR input may carry extra channels (e.g. noise of a stochastic model)
        return functional.mse(degrade(pred, scale, self.degradation), lr[:, :pred.shape[1]])


def get_loss(variant: str, scale: int | None = None, degradation: str | None = None) -> Loss:
    """The loss of a name or weighted-sum expression; ``scale``/``degradation`` feed
    ``downscale_consistency`` (default: inferred from the shapes, ``block_mean``)."""
    return Loss(variant, scale=scale, degradation=degradation)
