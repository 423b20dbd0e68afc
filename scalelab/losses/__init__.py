"""Loss variants by name, and weighted sums of them declared in the spec.

``get_loss(variant, scale=None, degradation=None)`` returns a callable
``loss(pred, target, lr=None) -> scalar`` with the attribute ``needs_ensemble``.
``variant`` is a name or an expression such as ``"mse+0.1*spectral"`` or
``"crps_afair(alpha=0.95)"`` (syntax in :mod:`scalelab.losses.names`).

Names (formulas and references in :mod:`scalelab.losses.functional`): ``mse``,
``l1``, ``charbonnier``, ``huber``, ``quantile`` (pinball), ``spectral`` (log power
spectra), ``gradient`` (Sobel), ``downscale_consistency`` (pixel loss + weight ·
MSE(D(ŷ), x), D the degradation operator and x the LR input: the PULSE idea, Menon
et al. 2020, eq. 2, as a soft constraint), ``crps_nrg`` / ``crps_fair`` /
``crps_afair`` (ensemble CRPS), ``wasserstein_reg`` (pixel loss + weight · W₁ of the
intensity distributions, WassDiff), ``class_weighted_ce`` (class-weighted
cross-entropy over intensity bins, SaTformer) and ``kl`` (the KL of a VAE-perturbed
network's latent against N(0, I), FuXi-ENS: ``crps_fair + 0.1*kl``; the loss reads it
from the network it is bound to, ``loss.bind(model)``).

Ensemble losses take ``pred`` of shape ``(B, M, C, H, W)``; given a deterministic
``(B, C, H, W)`` prediction they see it as M = 1. Deterministic losses given an
ensemble use its mean.

Each term is one record (:class:`LossTerm` in :data:`TERMS`, module
:mod:`scalelab.losses.names`): its function, its options with their valid ranges and
whether it scores an ensemble; the loss's dispatch and the names are built from them.

Importing this package is torch-free (``NAMES`` and the expression parser are all a
spec needs); ``Loss``/``get_loss`` (:mod:`scalelab.losses.loss`) and ``functional``
load on first use.
"""

from scalelab._lazy import make_lazy
from scalelab.losses.names import (NAMES, PARAMS, TERMS, LossSpec, LossTerm, check_variant,
                                   needs_ensemble, parse_loss, parse_variant)

_HOMES = {"Loss": "scalelab.losses.loss", "get_loss": "scalelab.losses.loss"}
__all__ = ["NAMES", "PARAMS", "TERMS", "LossTerm", "LossSpec", "Loss", "get_loss",
           "parse_loss", "parse_variant", "needs_ensemble", "check_variant", "functional"]
make_lazy(__name__, _HOMES)
