"""A batched, box-constrained L-BFGS in numpy: many starts minimised at once.

Scaling-law fits (Hoffmann et al. 2022, §D.2; Besiroglu et al. 2024, "Chinchilla
Scaling: A replication attempt") minimise a small robust objective from thousands of
initialisations (Epoch AI's grid has 4,500) and keep the best. A Python loop of
``scipy.optimize.minimize`` calls spends its time in the interpreter; here every start
(and every bootstrap resample) is one row of an ``(S, P)`` array and one call of the
objective evaluates all rows, so numpy does the loop.

The algorithm is limited-memory BFGS (Nocedal & Wright 2006, Alg. 7.4, the two-loop
recursion) with bounds handled by projection: variables at a bound whose gradient
points outward are frozen for the step, the step is projected onto the box, and the
step length is found by backtracking until the Armijo condition holds. A row stops
when its projected gradient is below ``pgtol``, when its objective falls by less than
``ftol`` relative, or when the line search cannot decrease it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class BatchResult:
    """Per-row results of :func:`minimize_batched`."""

    x: np.ndarray  # (S, P) minimisers
    fun: np.ndarray  # (S,) objective values
    grad: np.ndarray  # (S, P) gradients at x
    n_iter: np.ndarray  # (S,) iterations used
    converged: np.ndarray  # (S,) True where a stopping test (not max_iter) ended the row


def minimize_batched(fun_grad, x0, lower=None, upper=None, *, max_iter: int = 2000,
                     memory: int = 10, pgtol: float = 1e-9, ftol: float = 1e-13,
                     fscale: float = 0.0, max_linesearch: int = 40) -> BatchResult:
    """Minimise ``S`` independent problems with L-BFGS, all rows at once.

    ``fun_grad(x, rows)`` takes an ``(k, P)`` array of points and the indices ``rows``
    (into the ``S`` starts) they belong to, and returns the objectives ``(k,)`` and
    gradients ``(k, P)``; ``rows`` lets a row have its own data (bootstrap weights).
    ``lower``/``upper`` are ``(P,)`` bounds (``-inf``/``inf`` for none; equal bounds fix a
    variable). The relative-decrease test is ``f_k − f_{k+1} <= ftol·max(|f_k|, |f_{k+1}|,
    fscale)``; ``fscale=1`` with ``ftol=2.2e-9`` is scipy's L-BFGS-B default test.
    """
    x = np.array(x0, dtype=float, copy=True)
    S, P = x.shape
    lo = np.full(P, -np.inf) if lower is None else np.asarray(lower, dtype=float)
    hi = np.full(P, np.inf) if upper is None else np.asarray(upper, dtype=float)
    x = np.clip(x, lo, hi)
    all_rows = np.arange(S)
    f, g = fun_grad(x, all_rows)
    f = np.where(np.isfinite(f), f, np.inf)
    s_hist = np.zeros((memory, S, P))
    y_hist = np.zeros((memory, S, P))
    rho = np.zeros((memory, S))
    gnorm = np.sqrt(np.sum(np.where(np.isfinite(g), g, 0.0) ** 2, axis=1))
    gamma = 1.0 / np.maximum(gnorm, 1.0)  # first step: a unit-length gradient step at most
    active = np.isfinite(f) & np.all(np.isfinite(g), axis=1)
    converged = np.zeros(S, dtype=bool)
    n_iter = np.zeros(S, dtype=int)
    slot = 0
    n_stored = 0
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        xa, fa, ga = x[idx], f[idx], g[idx]
        at_bound = ((xa <= lo) & (ga > 0)) | ((xa >= hi) & (ga < 0)) | (lo == hi)
        gf = np.where(at_bound, 0.0, ga)
        done = np.max(np.abs(gf), axis=1) <= pgtol
        # two-loop recursion, most recent pair first
        q = gf.copy()
        order = [(slot - 1 - j) % memory for j in range(min(n_stored, memory))]
        alphas = []
        for j in order:
            a_j = rho[j, idx] * np.sum(s_hist[j, idx] * q, axis=1)
            q -= a_j[:, None] * y_hist[j, idx]
            alphas.append(a_j)
        r = gamma[idx, None] * q
        for j, a_j in zip(reversed(order), reversed(alphas)):
            b_j = rho[j, idx] * np.sum(y_hist[j, idx] * r, axis=1)
            r += s_hist[j, idx] * (a_j - b_j)[:, None]
        d = np.where(at_bound, 0.0, -r)
        slope = np.sum(gf * d, axis=1)
        bad = ~(slope < 0) | ~np.all(np.isfinite(d), axis=1)
        d[bad] = -gamma[idx[bad], None] * gf[bad]
        # backtracking (Armijo) line search on the projected path, rows in parallel
        step = np.ones(idx.size)
        x_new, f_new, g_new = xa.copy(), fa.copy(), ga.copy()
        pending = np.flatnonzero(~done)
        for _ls in range(max_linesearch):
            if pending.size == 0:
                break
            trial = np.clip(xa[pending] + step[pending, None] * d[pending], lo, hi)
            ft, gt = fun_grad(trial, idx[pending])
            decrease = np.sum(ga[pending] * (trial - xa[pending]), axis=1)
            ok = (np.isfinite(ft) & np.all(np.isfinite(gt), axis=1)
                  & (ft <= fa[pending] + 1e-4 * decrease))
            acc = pending[ok]
            x_new[acc], f_new[acc], g_new[acc] = trial[ok], ft[ok], gt[ok]
            pending = pending[~ok]
            step[pending] *= 0.5
        stuck = np.zeros(idx.size, dtype=bool)
        stuck[pending] = True
        # curvature pair; a row whose pair fails s·y > 0 stores nothing this time
        s = x_new - xa
        yv = g_new - ga
        sy = np.sum(s * yv, axis=1)
        yy = np.sum(yv * yv, axis=1)
        valid = (sy > 1e-12 * np.sqrt(np.sum(s * s, axis=1) * yy)) & (yy > 0) & ~stuck & ~done
        s_hist[slot, idx] = np.where(valid[:, None], s, 0.0)
        y_hist[slot, idx] = np.where(valid[:, None], yv, 0.0)
        rho[slot, idx] = np.where(valid, 1.0 / np.where(valid, sy, 1.0), 0.0)
        gamma[idx] = np.where(valid, sy / np.where(valid, yy, 1.0), gamma[idx])
        slot = (slot + 1) % memory
        n_stored += 1
        small = (fa - f_new) <= ftol * np.maximum(np.maximum(np.abs(fa), np.abs(f_new)), max(fscale, 1e-300))
        moved = ~stuck & ~done
        x[idx[moved]], f[idx[moved]], g[idx[moved]] = x_new[moved], f_new[moved], g_new[moved]
        n_iter[idx] += 1
        stop = done | stuck | (small & moved)
        converged[idx[stop]] = True
        active[idx[stop]] = False
    return BatchResult(x=x, fun=f, grad=g, n_iter=n_iter, converged=converged)
