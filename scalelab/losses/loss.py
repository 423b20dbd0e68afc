"""The loss of a name or weighted-sum expression, as a callable on tensors.

``get_loss(variant)`` takes a parsed :class:`~scalelab.losses.names.LossSpec` (or
parses the expression, :mod:`scalelab.losses.names`) and sums its terms, each
computed by the function its record names (:mod:`scalelab.losses.terms`); see
:mod:`scalelab.losses`.
"""

from __future__ import annotations

import torch

from scalelab._declare import resolve
from scalelab._errors import ScalelabError
from scalelab.losses.names import REGISTRY, LossSpec, parse_loss


class Loss:
    """A weighted sum of named loss terms, callable as ``loss(pred, target, lr=None)``."""

    def __init__(self, variant: str | LossSpec, scale: int | None = None,
                 degradation: str | None = None, degradation_options: dict | None = None):
        spec = variant if isinstance(variant, LossSpec) else parse_loss(variant, source="get_loss")
        self.variant = spec.expression
        self.spec = spec
        self.scale = scale
        self.degradation = degradation or "block_mean"
        # the operator's own settings (gaussian's blur_sigma, learned_kernel's kernel_path)
        self.degradation_options = {k: v for k, v in (degradation_options or {}).items()
                                    if v is not None}
        self.terms = list(spec.terms)
        self.needs_ensemble = spec.needs_ensemble
        self.model = None  # the network whose state a term scores (kl): see bind
        # each term's record: whether it scores the ensemble, and its function
        self._calls = [(term.weight, REGISTRY[term.name].ensemble,
                        resolve(REGISTRY[term.name].function), term.settings)
                       for term in spec.terms]
        from scalelab.data.degrade import check_degradation

        check_degradation(self.degradation)

    def bind(self, model) -> "Loss":
        """Score the state of ``model`` too: a term that reads the network (``kl``, the KL
        of a VAE-perturbed network's last latent) reads it here. The training loop binds
        its network once the bicubic reference is scored. Returns the loss."""
        self.model = model
        return self

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
        for weight, scores_ensemble, function, settings in self._calls:
            value = function(ensemble if scores_ensemble else mean, target, lr, self, **settings)
            total = total + weight * value
        return total


def get_loss(variant: str | LossSpec, scale: int | None = None,
             degradation: str | None = None, degradation_options: dict | None = None) -> Loss:
    """The loss of a name or weighted-sum expression (or of a parsed
    :class:`~scalelab.losses.names.LossSpec`); ``scale``/``degradation`` feed
    ``downscale_consistency`` (default: inferred from the shapes, ``block_mean``), with the
    operator's settings ``degradation_options`` (``blur_sigma``, ``kernel_path``)."""
    return Loss(variant, scale=scale, degradation=degradation,
                degradation_options=degradation_options)
