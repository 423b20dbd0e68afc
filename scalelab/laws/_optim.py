"""Batched, box-constrained minimisers in numpy for scaling-law fits: many starts at once.

Two methods (``Law(method=...)``; :func:`minimize_stage` runs a fit's stages with either):
:func:`minimize_gauss_newton`, damped Gauss–Newton on the Huber loss of log residuals
(the default: it uses the least-squares structure, so a row converges in tens of
iterations), and :func:`minimize_batched`, a general L-BFGS, described here.

Scaling-law fits (Hoffmann et al. 2022, §D.2; Besiroglu et al. 2024, "Chinchilla
Scaling: A replication attempt") minimise a small robust objective from thousands of
initialisations (Epoch AI's grid has 4,500) and keep the best. A Python loop of
``scipy.optimize.minimize`` calls spends its time in the interpreter; here every start
(and every bootstrap resample) is one row of an ``(S, P)`` array and one call of the
objective evaluates all rows, so numpy does the loop.

The algorithm is limited-memory BFGS (Nocedal & Wright 2006, Alg. 7.4, the two-loop
recursion, with the initial Hessian scaled by ``s·y / y·y`` of the latest pair, eq. 7.20)
with bounds handled by projection: variables at a bound whose gradient points outward
are frozen for the step, the step is projected onto the box, and the step length is
found by backtracking until the Armijo condition holds, each new trial at the
minimiser of the quadratic that interpolates the last one (Nocedal & Wright 2006,
§3.5); a row whose predicted decrease falls below the objective's rounding stops. A row whose two-loop direction
is not a descent direction forgets its curvature pairs and takes a scaled gradient
step (a restart). Only the rows still running are kept in the work arrays, so the cost
of an iteration follows the number of rows that still move.

A row stops when

- its projected gradient is below ``pgtol`` (``"gradient"``);
- its objective fell by less than ``ftol`` relative over the last ``window``
  iterations (``"ftol"``; ``window=1`` is scipy L-BFGS-B's per-iteration test). The
  Huber objective of a scaling-law fit is nearly piecewise linear (residuals on the
  loss's linear arms), and rows there creep along a valley, each step lowering the
  objective by a few ulps; a window longer than one iteration tells that creep from
  progress;
- the line search cannot decrease it (``"linesearch"``);
- with ``keep_best=k``: even if it kept falling at four times its rate of the last 10
  iterations for all its remaining iterations, it would stay above the
  k-th lowest objective of any row so far, so it cannot change which rows are best
  (``"pruned"``). A grid search keeps only its best few starts, and its slowest rows
  are mostly such hopeless creepers;
- or after ``max_iter`` iterations (``"max_iter"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalelab.laws._objective import huber

#: iterations over which a row's recent rate of decrease is measured for ``keep_best``
PRUNE_WINDOW = 10
#: the recent rate is multiplied by this before extrapolating, as creeping rows can speed up
PRUNE_SAFETY = 4.0
#: a trial step whose predicted decrease is below this times |f| cannot show a decrease
_ROUNDING = 4 * np.finfo(float).eps


@dataclass
class BatchResult:
    """Per-row results of :func:`minimize_batched`."""

    x: np.ndarray  # (S, P) minimisers
    fun: np.ndarray  # (S,) objective values
    grad: np.ndarray  # (S, P) gradients at x
    n_iter: np.ndarray  # (S,) iterations used
    converged: np.ndarray  # (S,) True where a convergence test (gradient, ftol, line search) ended the row
    reason: np.ndarray  # (S,) which test ended the row: gradient, ftol, linesearch, pruned, max_iter



def _cannot_reach(f: np.ndarray, fa: np.ndarray, f_before: np.ndarray, window: int,
                  keep_best: int, iters_left: int) -> np.ndarray:
    """Rows that cannot reach the ``keep_best``-th best objective ``f`` holds (over every
    row, stopped ones included) in the iterations left, at ``PRUNE_SAFETY`` times the
    rate at which they fell over the last ``window`` iterations (``f_before`` → ``fa``)."""
    k = min(keep_best, f.size) - 1
    kth = np.partition(f, k)[k]
    rate = (f_before - fa) / window
    return fa - PRUNE_SAFETY * rate * iters_left > kth

def minimize_batched(fun_grad, x0, lower=None, upper=None, *, max_iter: int = 2000,
                     memory: int = 10, pgtol: float = 1e-9, ftol: float = 1e-13,
                     fscale: float = 0.0, window: int = 1, keep_best: int | None = None,
                     max_linesearch: int = 40) -> BatchResult:
    """Minimise ``S`` independent problems with L-BFGS, all rows at once.

    ``fun_grad(x, rows)`` takes an ``(k, P)`` array of points and the indices ``rows``
    (into the ``S`` starts) they belong to, and returns the objectives ``(k,)`` and
    gradients ``(k, P)``; ``rows`` lets a row have its own data (bootstrap weights).
    ``lower``/``upper`` are ``(P,)`` bounds (``-inf``/``inf`` for none; equal bounds fix a
    variable). The relative-decrease test is ``f_{k−w} − f_k <= ftol·max(|f_{k−w}|,
    |f_k|, fscale)`` with ``w = window``; ``window=1, fscale=1, ftol=2.2e-9`` is scipy's
    L-BFGS-B default test. ``keep_best=k`` stops rows that cannot reach the k best (see
    the module docstring); their ``fun`` is where they stood.
    """
    x = np.array(x0, dtype=float, copy=True)
    S, P = x.shape
    lo = np.full(P, -np.inf) if lower is None else np.asarray(lower, dtype=float)
    hi = np.full(P, np.inf) if upper is None else np.asarray(upper, dtype=float)
    x = np.clip(x, lo, hi)
    f, g = fun_grad(x, np.arange(S))
    f = np.where(np.isfinite(f), f, np.inf)
    n_iter = np.zeros(S, dtype=int)
    reason = np.full(S, "max_iter", dtype=object)
    finite = np.isfinite(f) & np.all(np.isfinite(g), axis=1)
    reason[~finite] = "non-finite start"

    # work arrays hold the running rows only (ids: their row numbers), compacted as rows stop
    ids = np.flatnonzero(finite)
    xa, fa, ga = x[ids], f[ids], g[ids]
    s_hist = np.zeros((memory, ids.size, P))
    y_hist = np.zeros((memory, ids.size, P))
    rho = np.zeros((memory, ids.size))
    gamma = 1.0 / np.maximum(np.sqrt(np.sum(ga**2, axis=1)), 1.0)  # first step: length <= 1
    span = max(int(window), PRUNE_WINDOW if keep_best else 1) + 1
    f_hist = np.full((span, ids.size), np.inf)  # f_hist[k % span]: objective after iteration k
    f_hist[0] = fa
    slot = 0
    n_stored = 0
    for it in range(1, max_iter + 1):
        if ids.size == 0:
            break
        at_bound = ((xa <= lo) & (ga > 0)) | ((xa >= hi) & (ga < 0)) | (lo == hi)
        gf = np.where(at_bound, 0.0, ga)
        done = np.max(np.abs(gf), axis=1) <= pgtol
        # two-loop recursion, most recent pair first
        q = gf.copy()
        order = [(slot - 1 - j) % memory for j in range(min(n_stored, memory))]
        alphas = []
        for j in order:
            a_j = rho[j] * np.sum(s_hist[j] * q, axis=1)
            q -= a_j[:, None] * y_hist[j]
            alphas.append(a_j)
        r = gamma[:, None] * q
        for j, a_j in zip(reversed(order), reversed(alphas)):
            b_j = rho[j] * np.sum(y_hist[j] * r, axis=1)
            r += s_hist[j] * (a_j - b_j)[:, None]
        d = np.where(at_bound, 0.0, -r)
        slope = np.sum(gf * d, axis=1)
        bad = ~(slope < 0) | ~np.all(np.isfinite(d), axis=1)
        if bad.any():  # restart: forget the pairs, step along the scaled gradient
            d[bad] = -gamma[bad, None] * gf[bad]
            s_hist[:, bad] = 0.0
            y_hist[:, bad] = 0.0
            rho[:, bad] = 0.0
        # backtracking (Armijo) line search on the projected path, rows in parallel
        step = np.ones(ids.size)
        x_new, f_new, g_new = xa.copy(), fa.copy(), ga.copy()
        pending = np.flatnonzero(~done)
        for _ls in range(max_linesearch):
            if pending.size == 0:
                break
            trial = np.clip(xa[pending] + step[pending, None] * d[pending], lo, hi)
            ft, gt = fun_grad(trial, ids[pending])
            decrease = np.sum(ga[pending] * (trial - xa[pending]), axis=1)
            ok = (np.isfinite(ft) & np.all(np.isfinite(gt), axis=1)
                  & (ft <= fa[pending] + 1e-4 * decrease))
            acc = pending[ok]
            x_new[acc], f_new[acc], g_new[acc] = trial[ok], ft[ok], gt[ok]
            # a step whose first-order decrease is below f's rounding cannot pass the test
            hopeless = np.abs(decrease) <= _ROUNDING * np.abs(fa[pending])
            retry = ~ok & ~hopeless
            # next trial at the minimiser of the quadratic through f(0), f'(0) and f(trial),
            # kept within [0.1, 0.5] of this one (Nocedal & Wright 2006, §3.5)
            curve = ft[retry] - fa[pending[retry]] - decrease[retry]
            with np.errstate(divide="ignore", invalid="ignore"):
                shrink = np.where(curve > 0, -decrease[retry] / (2 * curve), 0.5)
            shrink = np.clip(np.nan_to_num(shrink, nan=0.1), 0.1, 0.5)
            pending = pending[retry]
            step[pending] *= shrink
        stuck = np.zeros(ids.size, dtype=bool)
        stuck[pending] = True
        moved = ~stuck & ~done
        # curvature pair; a row whose pair fails s·y > 0 stores nothing this time
        s = x_new - xa
        yv = g_new - ga
        sy = np.sum(s * yv, axis=1)
        yy = np.sum(yv * yv, axis=1)
        valid = (sy > 1e-12 * np.sqrt(np.sum(s * s, axis=1) * yy)) & (yy > 0) & moved
        s_hist[slot] = np.where(valid[:, None], s, 0.0)
        y_hist[slot] = np.where(valid[:, None], yv, 0.0)
        rho[slot] = np.where(valid, 1.0 / np.where(valid, sy, 1.0), 0.0)
        gamma = np.where(valid, sy / np.where(valid, yy, 1.0), gamma)
        slot = (slot + 1) % memory
        n_stored += 1
        xa = np.where(moved[:, None], x_new, xa)
        fa = np.where(moved, f_new, fa)
        ga = np.where(moved[:, None], g_new, ga)
        n_iter[ids] += 1
        f_hist[it % span] = fa
        # stopping tests
        stop = np.full(ids.size, "", dtype=object)
        if it >= window:
            before = f_hist[(it - window) % span]
            small = (before - fa) <= ftol * np.maximum(np.maximum(np.abs(before), np.abs(fa)),
                                                        max(fscale, 1e-300))
            stop[small & moved] = "ftol"
        if keep_best and it >= PRUNE_WINDOW:
            x[ids], f[ids] = xa, fa  # the k-th best over every row, stopped ones included
            hopeless_rows = _cannot_reach(f, fa, f_hist[(it - PRUNE_WINDOW) % span],
                                          PRUNE_WINDOW, keep_best, max_iter - it)
            stop[hopeless_rows & (stop == "")] = "pruned"
        stop[stuck] = "linesearch"
        stop[done] = "gradient"
        ended = stop != ""
        if it == max_iter:
            ended[:] = True
            stop[stop == ""] = "max_iter"
        if ended.any():
            out = ids[ended]
            x[out], f[out], g[out], reason[out] = xa[ended], fa[ended], ga[ended], stop[ended]
            keep = ~ended
            ids, xa, fa, ga, gamma = ids[keep], xa[keep], fa[keep], ga[keep], gamma[keep]
            s_hist, y_hist, rho = s_hist[:, keep], y_hist[:, keep], rho[:, keep]
            f_hist = f_hist[:, keep]
    x[ids], f[ids], g[ids] = xa, fa, ga  # rows cut off by max_iter == 0
    converged = np.isin(reason, ("gradient", "ftol", "linesearch"))
    return BatchResult(x=x, fun=f, grad=g, n_iter=n_iter, converged=converged,
                       reason=reason)


# ---- Gauss–Newton (Levenberg–Marquardt) for the Huber loss of log residuals -------------
#: Marquardt damping of a fresh row, relative to the diagonal of the IRLS curvature
_MU_START = 1e-3
#: a row that cannot lower its objective however short its step stops at this damping
_MU_MAX = 1e16
#: damping at or below which a step counts as a Gauss–Newton step for the stopping tests
_MU_GN = 1e-2
#: up to this many points a row's points are ranked by a full sort (as always), beyond by
#: a partial one (the same points but where two keys tie exactly)
_FULL_SORT_POINTS = 4096


def minimize_gauss_newton(objective, x0, lower=None, upper=None, *, max_iter: int = 200,
                          pgtol: float = 1e-10, ftol: float = 1e-13, fscale: float = 0.0,
                          window: int = 2, damping: float = _MU_START,
                          keep_best: int | None = None,
                          prune_window: int = PRUNE_WINDOW) -> BatchResult:
    """Minimise ``S`` robust least-squares problems by damped Gauss–Newton, all rows at once.

    ``objective`` is a ``fun_grad`` of :func:`scalelab.laws._objective.robust_objective`;
    its ``residuals(theta, rows)`` gives the log residuals r (k, n), the Jacobian J of the
    log prediction (laid out k, P, n) and the point weights w, and ``delta`` the Huber δ. The
    objective is f = Σ w·ρ_δ(r) with gradient g = −Jᵀ(w·ψ_δ(r)). Each step solves

        (Jᵀ C J + μ·diag(Jᵀ C₁ J))·d = −g

    on the free variables (Levenberg 1944; Marquardt 1963), with curvature weights
    C = w on the points inside ±δ (Huber's own second derivative there) and κ·C₁ on the
    points beyond, where C₁ = w·min(1, δ/|r|) are the weights of iteratively reweighted
    least squares (Holland & Welsch 1977). κ = 1 is IRLS, whose quadratic majorises the
    Huber loss of the linearised residuals: safe far from the optimum, where most points
    lie on Huber's linear arms. κ → 0 is Gauss–Newton on Huber's exact curvature, which
    converges in a few steps once the points inside ±δ are the final ones. κ starts at 1
    and is quartered after every accepted step that the model predicted fairly (ρ > 1/4)
    and doubled, up to 1, after a rejected one. Where fewer (weighted) points lie inside
    ±δ than there are free variables, the exact curvature is singular: the points beyond
    nearest to ±δ, as many as are missing, keep κ = 1 (at an optimum such points sit on
    the kink, as an L1 fit interpolates points). μ (``damping``
    at the start) follows the ratio ρ of the actual to the predicted decrease (Nielsen
    1999: μ·max(1/3, 1 − (2ρ − 1)³) after an accepted step, μ·2, ·4, … after rejected
    ones).

    Bounds: variables at a bound whose gradient points outward, fixed variables
    (lower == upper) and variables the data do not inform are left out of the step, which
    is then projected onto the box. A row stops when its projected gradient is below
    ``pgtol`` (``"gradient"``); when ``window`` successive accepted steps each lowered f
    by less than ``ftol·max(|f|, fscale)``, or a step with μ ≤ 1e-2, rejected, predicted
    a decrease below f's rounding (``"ftol"``); when no step, however damped,
    lowers f (``"linesearch"``); with ``keep_best`` as in :func:`minimize_batched`
    (``"pruned"``); or after ``max_iter`` iterations. Each iteration costs one evaluation
    of the residuals and their Jacobian.
    """
    residuals, delta = objective.residuals, float(objective.delta)
    x = np.array(x0, dtype=float, copy=True)
    S, P = x.shape
    lo = np.full(P, -np.inf) if lower is None else np.asarray(lower, dtype=float)
    hi = np.full(P, np.inf) if upper is None else np.asarray(upper, dtype=float)
    fixed = lo == hi
    x = np.clip(x, lo, hi)

    def evaluate(theta, rows):
        r, J, w = residuals(theta, rows)
        w = np.broadcast_to(w, r.shape)
        with np.errstate(invalid="ignore", over="ignore"):
            f = np.sum(w * huber(r, delta), axis=1)
            g = -np.einsum("kn,kpn->kp", w * np.clip(r, -delta, delta), J)
        ok = (np.isfinite(f) & np.all(np.isfinite(g), axis=1)
              & np.all(np.isfinite(J), axis=(1, 2)))
        return np.where(ok, f, np.inf), g, r, J, w

    f, g, r, J, w = evaluate(x, np.arange(S))
    n_iter = np.zeros(S, dtype=int)
    reason = np.full(S, "max_iter", dtype=object)
    finite = np.isfinite(f)
    reason[~finite] = "non-finite start"
    ids = np.flatnonzero(finite)
    xa, fa, ga, ra, Ja, wa = x[ids], f[ids], g[ids], r[ids], J[ids], np.array(w[ids])
    kappa = np.ones(ids.size)
    mu = np.full(ids.size, float(damping))
    nu = np.full(ids.size, 2.0)
    small_steps = np.zeros(ids.size, dtype=int)
    f_hist = np.full((prune_window + 1, ids.size), np.inf)
    f_hist[0] = fa
    eye = np.eye(P)
    for it in range(1, max_iter + 1):
        if ids.size == 0:
            break
        abs_r = np.abs(ra)
        inside = abs_r <= delta
        exact = wa * inside
        with np.errstate(divide="ignore"):
            beyond = np.where(inside, 0.0, wa * delta / np.maximum(abs_r, 1e-300))
        scale = np.einsum("kn,kpn->kp", exact + beyond, Ja * Ja)  # diag of IRLS curvature
        # variables left out of this step: fixed, at a bound and pushed out, uninformed
        at_bound = ((xa <= lo) & (ga > 0)) | ((xa >= hi) & (ga < 0)) | fixed
        frozen = at_bound | (scale <= 1e-14 * np.max(scale, axis=1, keepdims=True))
        done = np.max(np.abs(np.where(at_bound, 0.0, ga)), axis=1) <= pgtol
        # while fewer points lie inside ±δ than there are free variables, Huber's exact
        # curvature is singular; the points nearest the kink (those that will sit on it at
        # the optimum, as an L1 fit interpolates points) keep their full IRLS weight
        deficit = np.sum(~frozen, axis=1) - np.sum(inside & (wa > 0), axis=1)
        kink = _nearest_kink(np.where(inside | (wa <= 0), np.inf, abs_r), deficit)
        curv = exact + np.where(kink, 1.0, kappa[:, None]) * beyond
        H = (curv[:, None, :] * Ja) @ np.swapaxes(Ja, 1, 2)
        free2 = ~frozen[:, :, None] & ~frozen[:, None, :]
        diag = np.where(frozen, 1.0, (mu[:, None] + 1e-12) * scale)
        A = np.where(free2, H, 0.0) + diag[:, :, None] * eye
        d = np.where(frozen, 0.0, _solve(A, -np.where(frozen, 0.0, ga)))
        trial = np.clip(xa + d, lo, hi)
        s = trial - xa
        Js = np.einsum("kpn,kp->kn", Ja, s)
        pred = -(np.sum(ga * s, axis=1) + 0.5 * np.sum(exact * Js**2, axis=1))
        run = ~done
        ft, gt, rt, Jt, wt = evaluate(trial, ids)
        accept = run & (ft < fa)
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = np.nan_to_num((fa - ft) / pred, nan=0.0, posinf=0.0, neginf=0.0)
        near_gn = mu <= _MU_GN
        tiny = (fa - ft) <= ftol * np.maximum(np.maximum(np.abs(fa), np.abs(ft)),
                                              max(fscale, 1e-300))
        small_steps = np.where(accept, np.where(tiny, small_steps + 1, 0), small_steps)
        hopeless = ~accept & near_gn & (pred <= _ROUNDING * np.abs(fa))
        mu = np.where(accept, mu * np.maximum(1 / 3, 1 - (2 * np.clip(rho, 0, 1) - 1) ** 3),
                      np.where(run, np.maximum(mu, 1e-9) * nu, mu))
        nu = np.where(accept, 2.0, np.where(run, nu * 2.0, nu))
        kappa = np.where(accept & (rho > 0.25), kappa / 4,
                         np.where(run & ~accept, np.minimum(1.0, kappa * 2), kappa))
        xa[accept], fa[accept], ga[accept] = trial[accept], ft[accept], gt[accept]
        ra[accept], Ja[accept], wa[accept] = rt[accept], Jt[accept], wt[accept]
        n_iter[ids] += run
        f_hist[it % (prune_window + 1)] = fa
        stop = np.full(ids.size, "", dtype=object)
        if keep_best and it >= prune_window:  # as in minimize_batched
            f[ids] = fa
            stop[_cannot_reach(f, fa, f_hist[(it - prune_window) % (prune_window + 1)],
                               prune_window, keep_best, max_iter - it)] = "pruned"
        stop[run & ((small_steps >= window) | hopeless)] = "ftol"
        stop[run & ~accept & (mu >= _MU_MAX)] = "linesearch"
        stop[done] = "gradient"
        ended = stop != ""
        if it == max_iter:
            ended[:] = True
            stop[stop == ""] = "max_iter"
        if ended.any():
            out = ids[ended]
            x[out], f[out], g[out], reason[out] = xa[ended], fa[ended], ga[ended], stop[ended]
            keep = ~ended
            ids, xa, fa, ga, ra, Ja, wa = (a[keep] for a in (ids, xa, fa, ga, ra, Ja, wa))
            kappa, mu, nu, small_steps = kappa[keep], mu[keep], nu[keep], small_steps[keep]
            f_hist = f_hist[:, keep]
    x[ids], f[ids], g[ids] = xa, fa, ga
    converged = np.isin(reason, ("gradient", "ftol", "linesearch"))
    return BatchResult(x=x, fun=f, grad=g, n_iter=n_iter, converged=converged, reason=reason)


def _nearest_kink(key: np.ndarray, deficit: np.ndarray) -> np.ndarray:
    """Per row of ``key`` (k, n), the ``deficit`` points of smallest finite key (mask).

    Only rows with a deficit are ranked; with many points a partial sort finds the few
    smallest (O(n) per row instead of a full sort's O(n log n) twice).
    """
    kink = np.zeros(key.shape, dtype=bool)
    need = np.flatnonzero(deficit > 0)
    if need.size == 0:
        return kink
    rows, want = key[need], deficit[need]
    if rows.shape[1] <= _FULL_SORT_POINTS:
        rank = np.argsort(np.argsort(rows, axis=1), axis=1)
        kink[need] = (rank < want[:, None]) & np.isfinite(rows)
        return kink
    most = int(min(want.max(), rows.shape[1]))
    nearest = np.argpartition(rows, most - 1, axis=1)[:, :most]
    order = np.argsort(np.take_along_axis(rows, nearest, axis=1), axis=1)
    nearest = np.take_along_axis(nearest, order, axis=1)
    mark = (np.arange(most) < want[:, None]) & np.isfinite(
        np.take_along_axis(rows, nearest, axis=1))
    picked = np.zeros(rows.shape, dtype=bool)
    np.put_along_axis(picked, nearest, mark, axis=1)
    kink[need] = picked
    return kink


def _solve(A, b):
    """Solve the batch of symmetric systems A·d = b (pseudo-inverse if one is singular)."""
    try:
        return np.linalg.solve(A, b[..., None])[..., 0]
    except np.linalg.LinAlgError:
        return np.einsum("kpq,kq->kp", np.linalg.pinv(A, hermitian=True), b)


# ---- the stages of a law's fit, by method -----------------------------------------------
#: the minimisers a law can fit with (``Law(method=...)``)
METHODS = ("gauss-newton", "lbfgs")
#: per method and stage: the iteration budget as a fraction of the law's ``max_iter`` and
#: the stopping tests. Grid: every start, loose tests (scipy L-BFGS-B's defaults), rows
#: that cannot reach the best few pruned; polish: the best few, to float resolution;
#: bootstrap: resamples warm-started at the optimum.
STAGES = {
    "lbfgs": {
        # a start still crawling after max_iter // 4 steps (all residuals on Huber's linear
        # arms, where the objective is nearly piecewise linear) stops and competes as it is
        "grid": dict(budget=0.25, ftol=2.2e-9, fscale=1.0, pgtol=1e-5),
        # 10 iterations lowering f by < 1e-13 relative: creep at float resolution (a
        # per-iteration ftol below float64 resolution never fires); no pruning here
        "polish": dict(budget=1.0, pgtol=1e-12, ftol=1e-13, window=10),
        "bootstrap": dict(budget=1.0, pgtol=1e-10, ftol=1e-10, window=10),
    },
    "gauss-newton": {
        # a Gauss–Newton row converges in tens of steps or never: a tenth of the budget,
        # and pruning judged on the last 5 iterations
        "grid": dict(budget=0.1, ftol=2.2e-9, fscale=1.0, pgtol=1e-5, damping=1e-2,
                     prune_window=5),
        "polish": dict(budget=1.0, pgtol=1e-12, ftol=1e-13, window=3, damping=1e-3),
        # as L-BFGS's: a resample whose law is barely identified (sizes left out) creeps
        # along a valley; steps lowering its objective by < 1e-10 relative end it
        "bootstrap": dict(budget=1.0, pgtol=1e-10, ftol=1e-10, window=3, damping=1e-3),
    },
}


def minimize_stage(fun_grad, x0, lower, upper, *, method: str, stage: str, max_iter: int,
                   keep_best: int | None = None) -> BatchResult:
    """Run one stage (``"grid"``, ``"polish"`` or ``"bootstrap"``) of a law's fit with
    ``method`` (one of :data:`METHODS`); ``keep_best`` prunes the grid stage."""
    options = dict(STAGES[method][stage])
    budget = max(int(max_iter * options.pop("budget")), 1)
    if stage == "grid":
        options["keep_best"] = keep_best
    if method == "lbfgs":
        return minimize_batched(fun_grad, x0, lower, upper, max_iter=budget, **options)
    return minimize_gauss_newton(fun_grad, x0, lower, upper, max_iter=budget, **options)
