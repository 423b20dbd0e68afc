"""The loss terms as the loss calls them: one function per term, one signature.

``term(pred, target, lr, loss, **settings)``: ``pred`` is ``(B, C, H, W)`` (the
ensemble mean) for a deterministic term and the ensemble ``(B, M, C, H, W)`` for an
ensemble term (its record says which, :mod:`scalelab.losses.names`); ``lr`` the LR
input (or None); ``loss`` the :class:`~scalelab.losses.loss.Loss` being computed (its
``scale`` and ``degradation``); ``settings`` the term's options, defaults filled in.
The formulas and their references are in :mod:`scalelab.losses.functional`.
"""

from __future__ import annotations

import torch

from scalelab._errors import ScalelabError
from scalelab.losses import functional


def mse(pred, target, lr, loss):
    return functional.mse(pred, target)


def l1(pred, target, lr, loss):
    return functional.l1(pred, target)


_PIXEL = {"mse": functional.mse, "l1": functional.l1}


def charbonnier(pred, target, lr, loss, eps):
    return functional.charbonnier(pred, target, eps)


def huber(pred, target, lr, loss, huber_delta):
    return functional.huber(pred, target, huber_delta)


def quantile(pred, target, lr, loss, tau):
    return functional.quantile(pred, target, tau)


def spectral(pred, target, lr, loss, eps):
    return functional.spectral(pred, target, eps)


def gradient(pred, target, lr, loss):
    return functional.gradient(pred, target)


def wasserstein_reg(pred, target, lr, loss, weight, pixel):
    return _PIXEL[pixel](pred, target) + weight * functional.wasserstein_1d(pred, target)


def downscale_consistency(pred, target, lr, loss, weight, pixel):
    """pixel loss + weight · MSE(D(ŷ), x), D the run's degradation operator with its settings
    (gaussian's σ, the learned kernels' file; noise is not added) and x the LR input."""
    from scalelab.data.degrade import degrade

    if lr is None:
        raise ScalelabError("downscale_consistency needs the LR input; call "
                            "loss(pred, target, lr).")
    scale = loss.scale or pred.shape[-1] // lr.shape[-1]
    if pred.shape[-1] != scale * lr.shape[-1] or pred.shape[-2] != scale * lr.shape[-2]:
        raise ScalelabError(f"prediction {tuple(pred.shape[-2:])} is not {scale} times the LR "
                            f"input {tuple(lr.shape[-2:])}; pass the run's scale to get_loss.")
    # the LR input may carry extra channels (e.g. noise of a stochastic model)
    operator = degrade(pred, scale, loss.degradation, **loss.degradation_options)
    consistency = functional.mse(operator, lr[:, :pred.shape[1]])
    return _PIXEL[pixel](pred, target) + weight * consistency


def class_weighted_ce(pred, target, lr, loss, edges, sigma, weights):
    edges = torch.tensor(edges, dtype=pred.dtype, device=pred.device)
    classes = torch.bucketize(target, edges, right=True)
    weights = None if weights is None else torch.tensor(weights, dtype=pred.dtype)
    log_probs = functional.bin_log_probs(pred, edges, sigma)
    return functional.class_weighted_ce(log_probs, classes, weights)


def crps_nrg(ensemble, target, lr, loss):
    return functional.crps_ensemble(ensemble, target, estimator="nrg")


def crps_fair(ensemble, target, lr, loss):
    return functional.crps_ensemble(ensemble, target, estimator="fair")


def crps_afair(ensemble, target, lr, loss, alpha):
    return functional.crps_ensemble(ensemble, target, estimator="afair", alpha=alpha)


def kl(ensemble, target, lr, loss):
    """The KL of the latent that drew ``ensemble`` against N(0, I)
    (:func:`~scalelab.losses.functional.gaussian_kl`), read from the VAE-perturbed network
    the loss is bound to (``loss.bind(model)``; :class:`scalelab.models.stochastic.
    LatentPerturbed` keeps its last draw's ``latent = (mean, log_var)``). A prediction made
    without the network (the loss not bound: bicubic upsampling, the reference) has no
    latent and adds 0."""
    if loss.model is None:
        return 0.0 * ensemble.mean()  # 0, with a (zero) gradient like every term
    latent = getattr(loss.model, "latent", None)
    if latent is None:
        raise ScalelabError("the kl term scores the latent of a VAE-perturbed network, and the "
                            "network bound to the loss has drawn none; build it with "
                            "perturbation='vae' and call it before the loss.")
    return functional.gaussian_kl(*latent)
