"""Benchmark: scaling-law fits (grid of starts + bootstrap), Gauss–Newton against L-BFGS.

Times, in one process, the fits that reports and notebooks run by the dozen:

- ``PowerLaw`` on 5 points with ``n_bootstrap=200`` (a report's per-D fit);
- ``ChinchillaLaw`` on 25 points (5 sizes × 5 data sizes) with ``n_bootstrap=100``;
- ``ChinchillaLaw`` on Epoch AI's Chinchilla data (240 points, 4,500 starts) with
  ``n_bootstrap=100``;
- ``DataConstrainedLaw`` on 168 points (972 starts) with ``n_bootstrap=100``;
- with ``--store``: every law fit of the report of a runs table (``scalelab.report.
  analyse``), e.g. the quickstart's (``scalelab run sweeps/quickstart.yaml`` writes it);

each ``--repeats`` times (median of wall and of CPU time), by three procedures on the same
data:

- gauss-newton: ``Law(method="gauss-newton")``, the default: damped Gauss–Newton on
  Huber's curvature (:func:`scalelab.laws._optim.minimize_gauss_newton`);
- lbfgs: ``Law(method="lbfgs")``, the earlier default: the batched L-BFGS of
  :func:`scalelab.laws._optim.minimize_batched`;
- scipy: ``scipy.optimize.minimize(method="L-BFGS-B")`` with the analytic gradient in a
  Python loop over the same grid of starts (best kept, then polished to ftol 1e-15) and
  over the same number of bootstrap resamples started at the optimum: the sanity
  reference for the optimum's objective.

Prints the times, their ratios (lbfgs/gauss-newton, scipy/gauss-newton) and the relative
differences of the optimum's objective.
Usage: python benchmarks/bench_law_fits.py [--repeats 3] [--scipy-stride 1]
       [--store reports/quickstart/runs.db] [--skip-large]
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from scalelab.laws import ChinchillaLaw, DataConstrainedLaw, Law, PowerLaw

ROOT = Path(__file__).resolve().parents[1]
CHINCHILLA = ROOT / "tests" / "data" / "chinchilla" / "svg_extracted_data.csv"
METHODS = ("gauss-newton", "lbfgs")


def problems(large: bool = True):
    rng = np.random.default_rng(0)
    x = np.logspace(6, 9, 5)
    out = {"PowerLaw, 5 points, 200 resamples": (
        PowerLaw, dict(n_bootstrap=200),
        dict(x=x, y=1.7 + 400 * x**-0.3 * np.exp(rng.normal(0, 0.01, 5))))}
    N = np.repeat(np.logspace(7, 9, 5), 5)
    D = np.tile(np.logspace(9, 11, 5), 5)
    y = (1.8 + 400 / N**0.34 + 2000 / D**0.37) * np.exp(rng.normal(0, 0.01, 25))
    out["ChinchillaLaw, 25 points, 100 resamples"] = (
        ChinchillaLaw, dict(n_bootstrap=100), dict(params=N, samples=D, y=y))
    if large:
        table = pd.read_csv(CHINCHILLA)
        table["tokens"] = table["Training FLOP"] / (6 * table["Model Size"])
        out["ChinchillaLaw, Epoch's 240 points, 4500 starts, 100 resamples"] = (
            ChinchillaLaw, dict(n_bootstrap=100, drop_highest=5),
            dict(data=table, params="Model Size", samples="tokens", y="loss"))
        out["DataConstrainedLaw, 168 points, 972 starts, 100 resamples"] = (
            DataConstrainedLaw, dict(n_bootstrap=100), dict(data=_data_constrained_sweep()))
    return out


def _data_constrained_sweep():
    """Losses of Muennighoff et al. 2023's fitted law (datablations README), 0.2% noise."""
    a, b, e, alpha, beta, rd, rn = 6.255414, 7.3049974, 0.6254804, 0.3526596, 0.3526596, \
        15.387756, 5.309743
    N, U, epochs = (g.ravel() for g in np.meshgrid(np.logspace(7, 9.5, 6),
                                                  [1e8, 4e8, 1.6e9, 6.4e9],
                                                  [1, 2, 4, 8, 16, 32, 64], indexing="ij"))
    D = U * epochs
    G = (alpha * np.exp(a) / (beta * np.exp(b))) ** (1 / (alpha + beta))
    UN = np.minimum(N, (U * G) ** (beta / alpha) * G)
    loss = (np.exp(e) + np.exp(a) / (UN * (1 + rn * (1 - np.exp(-(N / UN - 1) / rn)))) ** alpha
            + np.exp(b) / (U * (1 + rd * (1 - np.exp(-(D / U - 1) / rd)))) ** beta)
    noise = np.exp(np.random.default_rng(0).normal(0, 0.002, N.size))
    return pd.DataFrame({"params": N, "samples": U, "samples_seen": D, "val_loss": loss * noise})


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
    """Median wall and CPU seconds of ``repeats`` calls, and the last call's result."""
    walls, cpus, out = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        out = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return float(np.median(walls)), float(np.median(cpus)), out


def forced(method):
    """Every law constructed inside the block fits with ``method``."""
    original = Law.__init__

    @functools.wraps(original)  # get_params (and so clone) read the signature
    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.method = method

    return mock.patch.object(Law, "__init__", init)


def report_fits(store: Path, repeats: int) -> None:
    """Time the law fits of a report (``scalelab.report.analyse``) by method."""
    from scalelab.report import ReportContext, analyse
    from scalelab import load_runs

    ctx = ReportContext.build(load_runs(store))
    print(f"report fits of {store} ({len(ctx.final)} finished runs)")
    results = {}
    for method in METHODS:
        with forced(method):
            results[method] = timed(lambda: analyse(ctx), repeats)
    (w_new, c_new, new), (w_old, c_old, old) = results["gauss-newton"], results["lbfgs"]
    print(f"  gauss-newton  {w_new:8.3f} s wall {c_new:8.3f} s cpu")
    print(f"  lbfgs         {w_old:8.3f} s wall {c_old:8.3f} s cpu   lbfgs/gauss-newton "
          f"{w_old / w_new:5.1f}x wall, {c_old / c_new:5.1f}x cpu")
    worst = 0.0
    for variant, va in new.variants.items():
        fits_new = {**va.fits_by_samples, **{("N", k): v for k, v in va.fits_by_params.items()}}
        fits_old = {**old.variants[variant].fits_by_samples,
                    **{("N", k): v for k, v in old.variants[variant].fits_by_params.items()}}
        for key, law in fits_new.items():
            other = fits_old.get(key)
            if isinstance(law, Law) and isinstance(other, Law):
                worst = max(worst, (law.objective_ - other.objective_) / other.objective_)
    print(f"  relative objective difference, gauss-newton vs lbfgs, worst of the report's "
          f"fits: {worst:+.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (median kept)")
    parser.add_argument("--scipy-stride", type=int, default=1,
                        help="scipy loop over every k-th start only (Chinchilla's 4,500 take "
                             "minutes); its optimum is then that of the subset")
    parser.add_argument("--store", type=Path, default=None,
                        help="a run store or table whose report fits to time as well "
                             "(default: reports/quickstart/runs.db where it exists)")
    parser.add_argument("--skip-large", action="store_true",
                        help="only the two small problems (a smoke run)")
    args = parser.parse_args()
    for name, (cls, hyper, data) in problems(large=not args.skip_large).items():
        runs = {m: timed(lambda: cls(**hyper, method=m).fit(**data), args.repeats)
                for m in METHODS}
        (w_new, c_new, new), (w_old, c_old, old) = runs["gauss-newton"], runs["lbfgs"]
        setup = cls(**{**hyper, "n_bootstrap": 0}).fit(**data)  # data, bounds, grid
        w_scipy, _, scipy_fun = timed(
            lambda: fit_scipy(setup, hyper["n_bootstrap"], args.scipy_stride), 1)
        print(name)
        print(f"  gauss-newton  {w_new:8.3f} s wall {c_new:8.3f} s cpu   objective "
              f"{new.objective_:.12e}")
        print(f"  lbfgs         {w_old:8.3f} s wall {c_old:8.3f} s cpu   objective "
              f"{old.objective_:.12e}   lbfgs/gauss-newton {w_old / w_new:5.1f}x wall, "
              f"{c_old / c_new:5.1f}x cpu")
        print(f"  scipy loop    {w_scipy:8.3f} s wall" + " " * 17 + f"objective "
              f"{scipy_fun:.12e}   scipy/gauss-newton {w_scipy / w_new:5.1f}x wall"
              + (f" (every {args.scipy_stride}th start)" if args.scipy_stride > 1 else ""))
        print(f"  relative objective difference: gauss-newton vs lbfgs "
              f"{(new.objective_ - old.objective_) / old.objective_:+.2e}, "
              f"gauss-newton vs scipy {(new.objective_ - scipy_fun) / scipy_fun:+.2e}")
    store = args.store
    if store is None and (ROOT / "reports" / "quickstart" / "runs.db").exists():
        store = ROOT / "reports" / "quickstart" / "runs.db"
    if store is not None and not args.skip_large:
        report_fits(store, args.repeats)


if __name__ == "__main__":
    main()
