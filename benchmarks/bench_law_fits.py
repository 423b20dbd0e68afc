"""Benchmark: small scaling-law fits (grid of starts + bootstrap), before/after timing.

Times, in one process, the fits that reports and notebooks run by the dozen:

- ``PowerLaw`` on 5 points with ``n_bootstrap=200``;
- ``ChinchillaLaw`` on 25 points (5 sizes × 5 data sizes) with ``n_bootstrap=100``;

each ``--repeats`` times (median), with three procedures on the same data:

- scalelab (``Law.fit``): the batched L-BFGS of :mod:`scalelab.laws._optim` with the grid
  phase's pruning, the windowed stopping tests and interpolating line search;
- "before": the same fit with the optimiser's earlier settings (no pruning, per-iteration
  ftol 1e-15 polish / 1e-12 bootstrap, halving line search), kept here as a reference
  through ``minimize_batched``'s options;
- scipy: ``scipy.optimize.minimize(method="L-BFGS-B")`` with the analytic gradient in a
  Python loop over the same grid of starts (best kept, then polished to ftol 1e-15),
  and over the same bootstrap resamples started at the optimum: the sanity reference
  for the optimum's objective.

Prints the times, their ratios and the relative differences of the optimum's objective.
Usage: python benchmarks/bench_law_fits.py [--repeats 5] [--scipy-stride 1]
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import numpy as np
from scipy.optimize import minimize

import scalelab.laws._optim as optim
import scalelab.laws.base as base
from scalelab.laws import ChinchillaLaw, PowerLaw


def problems():
    rng = np.random.default_rng(0)
    x = np.logspace(6, 9, 5)
    power = (PowerLaw, dict(n_bootstrap=200),
             dict(x=x, y=1.7 + 400 * x**-0.3 * np.exp(rng.normal(0, 0.01, 5))))
    N = np.repeat(np.logspace(7, 9, 5), 5)
    D = np.tile(np.logspace(9, 11, 5), 5)
    y = (1.8 + 400 / N**0.34 + 2000 / D**0.37) * np.exp(rng.normal(0, 0.01, 25))
    chinchilla = (ChinchillaLaw, dict(n_bootstrap=100), dict(params=N, samples=D, y=y))
    return {"PowerLaw, 5 points, 200 resamples": power,
            "ChinchillaLaw, 25 points, 100 resamples": chinchilla}


def _line_search_by_halving():
    """The earlier line search: halve the step (no interpolation, no rounding stop)."""
    import inspect
    import re
    import types

    source = inspect.getsource(optim)
    source = re.sub(r"hopeless = .*\n", "hopeless = np.zeros(pending.size, dtype=bool)\n", source)
    source = source.replace("step[pending] *= shrink", "step[pending] *= 0.5")
    module = types.ModuleType("_optim_before")
    exec(compile(source, "_optim_before", "exec"), module.__dict__)
    return module.minimize_batched


def fit_before(cls, hyper, data):
    """The fit with the earlier optimiser settings."""
    halving = _line_search_by_halving()

    def earlier(fun_grad, x0, lower, upper, **options):
        options.pop("keep_best", None)
        if options.get("window") == 10:  # polish / bootstrap: the earlier per-iteration tests
            options["ftol"] = 1e-15 if options["pgtol"] == 1e-12 else 1e-12
            options["window"] = 1
        return halving(fun_grad, x0, lower, upper, **options)

    with mock.patch.object(base, "minimize_batched", earlier):
        return cls(**hyper).fit(**data)


def fit_scipy(law, n_bootstrap, stride=1):
    """Reference: scipy L-BFGS-B in a loop over the starts and resamples of a fitted ``law``
    (its data, bounds and grid of starts are reused; its optimum is not)."""
    X, log_y = law.fitted_inputs_, np.log(law.y_)
    fun_grad = law._objective(X, log_y, None)
    bounds = list(zip(np.where(np.isfinite(law._lower), law._lower, None),
                      np.where(np.isfinite(law._upper), law._upper, None)))

    def one(fg, row=0):
        return lambda t: (lambda f, g: (float(f[0]), g[0]))(*fg(t[None], np.array([row])))

    best = None
    for start in law._starts(X, np.exp(log_y))[::stride]:
        res = minimize(one(fun_grad), start, jac=True, method="L-BFGS-B", bounds=bounds)
        if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
            best = res
    best = minimize(one(fun_grad), best.x, jac=True, method="L-BFGS-B", bounds=bounds,
                    options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 1000})
    rng = np.random.default_rng(0)
    n = log_y.size
    weights = rng.multinomial(n, np.full(n, 1 / n), size=n_bootstrap)
    boot = law._objective(X, log_y, weights)
    for row in range(weights.shape[0]):
        minimize(one(boot, row), best.x, jac=True, method="L-BFGS-B", bounds=bounds,
                 options={"ftol": 1e-12, "gtol": 1e-10, "maxiter": 1000})
    return float(best.fun)


def timed(function, repeats):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median kept)")
    parser.add_argument("--scipy-stride", type=int, default=1,
                        help="scipy loop over every k-th start only (Chinchilla's 4,500 take "
                             "minutes); its optimum is then that of the subset")
    args = parser.parse_args()
    for name, (cls, hyper, data) in problems().items():
        t_now, law = timed(lambda: cls(**hyper).fit(**data), args.repeats)
        t_before, before = timed(lambda: fit_before(cls, hyper, data), args.repeats)
        setup = cls(**{**hyper, "n_bootstrap": 0}).fit(**data)  # data, bounds, grid
        t_scipy, scipy_fun = timed(lambda: fit_scipy(setup, hyper["n_bootstrap"], args.scipy_stride), 1)
        print(name)
        print(f"  scalelab now     {t_now:8.3f} s   objective {law.objective_:.12e}")
        print(f"  scalelab before  {t_before:8.3f} s   objective {before.objective_:.12e}   "
              f"before/now {t_before / t_now:5.1f}x")
        print(f"  scipy loop       {t_scipy:8.3f} s   objective {scipy_fun:.12e}   "
              f"scipy/now {t_scipy / t_now:5.1f}x")
        print(f"  relative objective difference: now vs before "
              f"{(law.objective_ - before.objective_) / before.objective_:+.2e}, "
              f"now vs scipy {(law.objective_ - scipy_fun) / scipy_fun:+.2e}")


if __name__ == "__main__":
    main()
