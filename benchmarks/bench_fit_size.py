"""Benchmark: time and peak memory of a law fit against the number of points.

``PowerLaw(n_bootstrap=0).fit(x, y)`` on n points of L = 1.5 + 300·x^(−0.3) with 2% log-
normal noise (x log-uniform on [1e5, 1e9]), each fit in a fresh process (so its peak
resident memory is its own), by two procedures:

- new: the fit as it is (:mod:`scalelab.laws.base`): past ``GRID_BUDGET`` start × point ×
  parameter values the grid of starts is screened on a seeded subsample, the best starts
  polished there and the best two on every point, in batches of ``BATCH_BUDGET``;
- old: every start on every point at once (``GRID_BUDGET``, ``BATCH_BUDGET`` and the
  Gauss–Newton full-sort limit set to 1e18), the procedure before: arrays of
  starts × points, 11 s and 0.9 GB at 1e4 points when the issue measured it.

Prints per size the wall time, the peak resident memory above the process's memory after
imports (``ru_maxrss``), the fitted E, A, alpha and the ratios old/new; the old procedure
runs only up to ``--old-max`` points (1e5 took 161 s and 7.1 GB, 1e6 did not fit in 23 GB).
Usage: python benchmarks/bench_fit_size.py [--sizes 1e3 1e4 1e5 1e6] [--old-max 1e4]
       [--bootstrap 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
import scalelab.laws._optim as optim
from scalelab.laws import PowerLaw, base
n, procedure, bootstrap = int(float(sys.argv[1])), sys.argv[2], int(sys.argv[3])
if procedure == "old":
    base.GRID_BUDGET = base.BATCH_BUDGET = optim._FULL_SORT_POINTS = 10**18
rng = np.random.default_rng(0)
x = np.exp(rng.uniform(np.log(1e5), np.log(1e9), n))
y = (1.5 + 300 * x ** -0.3) * np.exp(rng.normal(0, 0.02, n))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
law = PowerLaw(n_bootstrap=bootstrap).fit(x=x, y=y)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": (peak - before) / 1024,
                  "params": law.params_.round(4).tolist(), "objective": law.objective_}))
"""


def measure(n: float, procedure: str, bootstrap: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(n), procedure, str(bootstrap)],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e3, 1e4, 1e5, 1e6])
    parser.add_argument("--old-max", type=float, default=1e4)
    parser.add_argument("--bootstrap", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"PowerLaw(n_bootstrap={args.bootstrap}).fit of n points, each in a fresh process; "
          f"peak memory above the process after imports")
    print(f"{'points':>9} {'procedure':>9} {'time s':>8} {'peak MB':>8}   E, A, alpha")
    for n in args.sizes:
        rows = {"new": measure(n, "new", args.bootstrap)}
        if n <= args.old_max:
            rows["old"] = measure(n, "old", args.bootstrap)
        for procedure, row in rows.items():
            if "error" in row:
                print(f"{n:>9.0f} {procedure:>9}   failed: {row['error']}")
                continue
            print(f"{n:>9.0f} {procedure:>9} {row['seconds']:>8.2f} {row['peak_mb']:>8.0f}   "
                  f"{row['params']}")
        if "old" in rows and "error" not in rows["old"] and "error" not in rows["new"]:
            new, old = rows["new"], rows["old"]
            print(f"{'':>9} {'old/new':>9} {old['seconds'] / new['seconds']:>7.1f}x "
                  f"{old['peak_mb'] / max(new['peak_mb'], 1.0):>7.1f}x   objective relative "
                  f"difference {abs(new['objective'] - old['objective']) / old['objective']:.1e}")


if __name__ == "__main__":
    main()
