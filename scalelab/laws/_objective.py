"""The robust objective of scaling-law fits (Hoffmann et al. 2022, §D.2; Besiroglu et al. 2024).

Huber loss with a small ``delta`` (1e-3 by default) on the residual
log(observed) − log(predicted), SUMMED over points (a mean makes L-BFGS stop early),
with the prediction written in log-sum-exp form so that every term stays positive.
:func:`robust_objective` evaluates it, with its analytic gradient, for a whole batch of
parameter vectors (grid starts × bootstrap resamples) at once; the function it returns
also carries ``residuals(theta, rows)`` (the log residuals, their Jacobian and the point
weights), which the Gauss–Newton minimiser of :mod:`scalelab.laws._optim` works from.
"""

from __future__ import annotations

import numpy as np


def huber(residual: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss ρ_δ(r) = r²/2 for |r| ≤ δ, δ(|r| − δ/2) otherwise (Huber 1964)."""
    abs_r = np.abs(residual)
    return np.where(abs_r <= delta, 0.5 * residual**2, delta * (abs_r - 0.5 * delta))


def huber_grad(residual: np.ndarray, delta: float) -> np.ndarray:
    """dρ_δ/dr = clip(r, −δ, δ)."""
    return np.clip(residual, -delta, delta)


def softmax_lse(*terms):
    """log Σ exp(terms) and the softmax weights d(LSE)/d(term), broadcasting the terms."""
    shape = np.broadcast_shapes(*[np.shape(t) for t in terms])
    top = terms[0]
    for t in terms[1:]:
        top = np.maximum(top, t)
    top = np.where(np.isfinite(top), top, 0.0)
    exps = [np.exp(t - top) for t in terms]
    total = exps[0]
    for e in exps[1:]:
        total = total + e
    inv = 1.0 / total
    with np.errstate(divide="ignore"):
        lse = top + np.log(total)
    return np.broadcast_to(lse, shape), [np.broadcast_to(e * inv, shape) for e in exps]


def robust_objective(log_predict, inputs: dict, log_y: np.ndarray, delta: float,
                     weights: np.ndarray | None = None, gather: np.ndarray | None = None,
                     scatter: np.ndarray | None = None):
    """Build ``fun_grad(theta, rows)`` for :func:`scalelab.laws._optim.minimize_batched`.

    ``log_predict(theta, inputs)`` returns the log prediction ``(S, n)`` and its Jacobian
    as a list of ``P`` arrays broadcastable to ``(S, n)`` for per-row parameters ``theta`` of shape ``(S, 1, P)`` (or ``(S, n, P)``
    when points carry their own parameters). ``weights`` ``(R, n)`` are per-row point
    weights (bootstrap counts; one row for all). ``gather`` ``(n, P)`` maps each point's
    parameters to columns of the full vector (groups with shared parameters); ``scatter``
    is its one-hot ``(n·P, P_full)`` transpose used to sum gradients back.
    """

    if gather is not None:
        n, P_group = gather.shape
        scatter3 = scatter.reshape(n, P_group, -1)

    def residuals(theta, rows):
        """Log residuals r = log y − log ŷ (k, n), the Jacobian of log ŷ laid out (k, P, n)
        and the point weights (k or 1, n) for parameter rows ``theta`` (k, P)."""
        per_point = theta[:, None, :] if gather is None else theta[:, gather]
        log_pred, jac = log_predict(per_point, inputs)
        log_pred = np.broadcast_to(log_pred, (theta.shape[0], log_y.size))
        jac = np.stack(np.broadcast_arrays(log_pred, *jac)[1:], axis=1)
        if gather is not None:  # per-point parameters -> columns of the full vector
            # laid out (k, n, P_full) as the einsum this replaces laid it out, so the
            # products that follow round alike (it cost O(k·n·P·P_full) time, this O(k·n·P))
            full = np.zeros((jac.shape[0], jac.shape[2], scatter3.shape[2])).transpose(0, 2, 1)
            points = np.arange(jac.shape[2])
            for p in range(jac.shape[1]):  # each point's parameter p is one column of the full
                full[:, gather[:, p], points] += jac[:, p]  # vector: no two share a cell
            bad = ~np.isfinite(jac).all(axis=1)  # as the one-hot product had it: a non-finite
            if bad.any():  # derivative makes every column of its point NaN (inf·0)
                full[np.broadcast_to(bad[:, None, :], full.shape)] = np.nan
            jac = full
        if weights is None:
            w = np.ones((1, log_y.size))
        else:
            w = weights if weights.shape[0] == 1 else weights[rows]
        return log_y - log_pred, jac, w

    def fun_grad(theta, rows):
        if gather is None:
            per_point = theta[:, None, :]
        else:
            per_point = theta[:, gather]
        log_pred, jac = log_predict(per_point, inputs)
        residual = log_y - log_pred
        w = 1.0 if weights is None else (weights if weights.shape[0] == 1 else weights[rows])
        with np.errstate(invalid="ignore"):
            value = np.sum(w * huber(residual, delta), axis=1)
            psi = -w * huber_grad(residual, delta)
        if gather is None:
            grad = np.stack([np.sum(psi * column, axis=1) for column in jac], axis=1)
        else:
            jac = np.stack(np.broadcast_arrays(*jac), axis=-1)
            grad = (psi[:, :, None] * jac).reshape(theta.shape[0], -1) @ scatter
        value = np.where(np.isfinite(value), value, np.inf)
        return value, grad

    fun_grad.residuals = residuals
    fun_grad.delta = delta
    return fun_grad
