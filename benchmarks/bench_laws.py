"""Benchmark: Epoch AI's reference Chinchilla fit against scalelab's vectorised fit.

Both run in this process on the same data (Chinchilla, Hoffmann et al. 2022 Fig. 4 as
digitised by Epoch AI; the 5 highest-loss points dropped; D = C/(6N)):

- reference: Besiroglu et al. 2024's "replicate exactly" procedure (analyzing-chinchilla,
  data_analysis.ipynb cell 18): a Python loop of ``scipy.optimize.minimize(...,
  method="L-BFGS-B")`` (default options, finite-difference gradient) from each of the
  4,500 grid points alpha, beta ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5,
  …, 25}, on the summed Huber(δ = 1e-3) loss of log L − LSE(a − alpha·log N,
  b − beta·log D, e), keeping the best successful run;
- scalelab: ``ChinchillaLaw(drop_highest=5, n_bootstrap=0)``, the same grid minimised
  all at once (``scalelab.laws._optim``), best few polished.

Prints both wall times, their ratio, both optima and the relative difference of the
objectives. The reference loop takes minutes; ``--stride k`` runs every k-th start of
the reference grid and scales its time up by k (an estimate, printed as such).
Usage: python benchmarks/bench_laws.py [--stride 1] [--repeats 3]
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import logsumexp

from scalelab.laws import ChinchillaLaw

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "chinchilla" / "svg_extracted_data.csv"


def load():
    table = pd.read_csv(DATA)
    table["Training Tokens"] = table["Training FLOP"] / (6 * table["Model Size"])
    return table


def epoch_reference(table: pd.DataFrame, stride: int = 1):
    """Epoch AI's grid-search fit, as a Python loop of scipy L-BFGS-B calls."""
    kept = table.sort_values("loss").iloc[:-5]  # nr_of_models_excluded = 5
    N = kept["Model Size"].to_numpy()
    D = kept["Training Tokens"].to_numpy()
    losses = kept["loss"].to_numpy()

    def log_sum_exp(a, b, e, alpha, beta):
        return logsumexp([a - alpha * np.log(N), b - beta * np.log(D), e * np.ones(N.shape)],
                         axis=0)

    def huber_loss(r, delta=1e-3):
        return np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))

    def objective(params):
        a, b, e, alpha, beta = params
        return np.sum(huber_loss(np.log(losses) - log_sum_exp(a, b, e, alpha, beta)))

    grid = list(itertools.product(np.arange(0, 2.5, 0.5), np.arange(0, 2.5, 0.5),
                                  np.arange(-1, 1.5, 0.5), np.arange(0, 30, 5),
                                  np.arange(0, 30, 5)))[::stride]
    best, best_loss = None, np.inf
    for alpha, beta, e, a, b in grid:
        result = minimize(objective, [a, b, e, alpha, beta], method="L-BFGS-B")
        if result.success and result.fun < best_loss:
            best, best_loss = result, result.fun
    return best.x, float(best.fun), len(grid), objective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stride", type=int, default=1,
                        help="run every k-th reference start and scale its time by k")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of scalelab's fit")
    args = parser.parse_args()
    table = load()

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        law = ChinchillaLaw(drop_highest=5, n_bootstrap=0).fit(
            table, params="Model Size", samples="Training Tokens", y="loss")
        times.append(time.perf_counter() - start)
    ours = min(times)

    start = time.perf_counter()
    ref_x, ref_fun, n_ref, objective = epoch_reference(table, args.stride)
    ref_time = (time.perf_counter() - start) * args.stride

    ours_x = law.theta_epoch_order()
    ours_fun_ref_code = objective(ours_x)  # our optimum, scored by the reference objective
    names = ["a", "b", "e", "alpha", "beta"]
    print(f"data: {law.n_points_} points (5 highest-loss dropped), grid of {law.n_starts_} starts")
    print(f"reference (scipy L-BFGS-B loop, {n_ref} starts run"
          f"{', time scaled ×%d' % args.stride if args.stride > 1 else ''}): {ref_time:9.2f} s")
    print(f"scalelab vectorised fit (best of {args.repeats}; all: "
          f"{', '.join(f'{t:.2f}' for t in times)} s): {ours:9.2f} s")
    print(f"speed-up: {ref_time / ours:.1f}x")
    print("optimum      " + "  ".join(f"{n:>10s}" for n in names) + "     objective")
    print("reference    " + "  ".join(f"{v:10.5f}" for v in ref_x) + f"  {ref_fun:.10g}")
    print("scalelab     " + "  ".join(f"{v:10.5f}" for v in ours_x) + f"  {ours_fun_ref_code:.10g}")
    print(f"natural: A={np.exp(ours_x[0]):.2f} B={np.exp(ours_x[1]):.2f} E={np.exp(ours_x[2]):.4f} "
          f"alpha={ours_x[3]:.4f} beta={ours_x[4]:.4f} (Epoch: 477.84, 2143.86, 1.8172, 0.3473, 0.3672)")
    rel = (ours_fun_ref_code - ref_fun) / abs(ref_fun)
    print(f"objective relative difference (scalelab − reference)/reference: {rel:.3e} "
          f"({'equal to 1e-6' if abs(rel) <= 1e-6 else 'scalelab lower' if rel < 0 else 'DIFFERENT'})")


if __name__ == "__main__":
    main()
