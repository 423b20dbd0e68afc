"""Speed and agreement of scalelab.calibration against the reference libraries.

Times, in one process on the same data:
- top-label ECE (15 equal-width bins) and the debiased L2 calibration error
  (Kumar et al. 2019; 15 equal-mass bins, top-label) on 10^6 × 10 probabilities,
  against uncertainty-calibration (`calibration`) and netcal;
- ensemble CRPS (fair and standard) on a 50 × 64 × 128 × 128 float32 ensemble
  (members on axis 0), against scoringrules (numba backend, every exact estimator
  and the approximate `akr`) and properscoring.

Prints each value, time (best of the repeats) and the ratio reference / scalelab.
References far too slow at full size are timed on a leading subset and scaled
linearly; the output says so. Goals (issue 8): calibration errors ≥ 5× faster than
the fastest reference; CRPS at least as fast as scoringrules' fastest estimator.

    python benchmarks/bench_calibration.py            # the issue's sizes
    python benchmarks/bench_calibration.py --quick    # small sizes, a smoke test
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def best_time(func, repeats: int):
    best, value = np.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        value = func()
        best = min(best, time.perf_counter() - start)
    return best, value


def show(name: str, seconds: float, value, ours: float | None = None, note: str = "") -> None:
    ratio = "" if ours is None else f"{seconds / ours:8.1f}x"
    print(f"  {name:<44s} {seconds * 1e3:10.1f} ms {ratio:>9s}  value={value:.9g} {note}")


def make_probs(n: int, classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, classes)) * 2.0
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    labels = (probs.cumsum(1) > rng.random((n, 1)) ** 1.2).argmax(1)
    return probs, labels


def bench_classification(n: int, classes: int, repeats: int) -> None:
    import calibration as kumar
    from netcal.metrics import ECE as NetcalECE

    from scalelab.calibration import calibration_error, ece

    probs, labels = make_probs(n, classes)
    print(f"\nClassification: {n} x {classes} float64 probabilities")

    print(" top-label ECE, 15 equal-width bins")
    t_ours, v_ours = best_time(lambda: ece(probs, labels, bins=15), repeats)
    show("scalelab.ece", t_ours, v_ours)
    t, v = best_time(lambda: NetcalECE(bins=15).measure(probs, labels), repeats)
    show("netcal ECE.measure", t, v, t_ours)
    t_k, v = best_time(lambda: kumar.get_ece(probs, labels, num_bins=15), 1)
    show("uncertainty-calibration get_ece", t_k, v, t_ours)

    print(" debiased L2 calibration error, 15 equal-mass bins, top-label")
    t_ours, v_ours = best_time(lambda: calibration_error(probs, labels, kind="top_label"), repeats)
    show("scalelab.calibration_error", t_ours, v_ours)
    t, v = best_time(lambda: kumar.get_calibration_error(probs, labels, mode="top-label"), 1)
    show("uncertainty-calibration get_calibration_error", t, v, t_ours)
    print("  (netcal has no debiased estimator)")

    sub = n // 10
    print(f" debiased L2 calibration error, marginal over {classes} classes")
    t_ours, v_ours = best_time(lambda: calibration_error(probs, labels), repeats)
    show("scalelab.calibration_error", t_ours, v_ours)
    t, v = best_time(lambda: kumar.get_calibration_error(probs[:sub], labels[:sub]), 1)
    show("uncertainty-calibration (scaled)", t * n / sub, v, t_ours,
         f"[timed on first {sub} rows x{n // sub}; value is of the subset]")


def bench_crps(shape: tuple, repeats: int) -> None:
    import properscoring as ps
    import scoringrules as sr

    from scalelab.calibration import crps_ensemble

    rng = np.random.default_rng(1)
    ens = rng.standard_normal(shape, dtype=np.float32)
    obs = (0.3 + 1.2 * rng.standard_normal(shape[1:], dtype=np.float32)).astype(np.float32)
    print(f"\nEnsemble CRPS: {shape} float32, members on axis 0, mean over the field")

    try:
        import numba  # noqa: F401

        backend = "numba"
    except ImportError:
        backend = "numpy"
        print("  numba is not installed: scoringrules runs on its numpy backend "
              "(pip install numba for the issue's comparison)")
    # compile the numba gufuncs before timing
    for est in ("fair", "nrg", "qd", "pwm", "int", "akr", "akr_circperm"):
        sr.crps_ensemble(obs[:1, :1, :4], ens[:, :1, :1, :4], m_axis=0, estimator=est,
                         backend=backend)
    ps.crps_ensemble(obs[:1, :1, :4].astype(np.float64),
                     np.moveaxis(ens[:, :1, :1, :4], 0, -1).astype(np.float64))

    ours = {}
    for est in ("fair", "nrg"):
        t, v = best_time(lambda: crps_ensemble(obs, ens, axis=0, estimator=est), repeats)
        ours[est] = (t, v)
        show(f"scalelab.crps_ensemble {est}", t, float(v.mean(dtype=np.float64)))
    t_fair = ours["fair"][0]

    fastest = (np.inf, "")
    for est in ("fair", "nrg", "pwm", "qd", "int", "akr", "akr_circperm"):
        def run(est=est):
            return sr.crps_ensemble(obs, ens, m_axis=0, estimator=est, backend=backend)
        t, v = best_time(run, repeats if est not in ("fair", "nrg") else 1)
        exact = est not in ("akr", "akr_circperm")
        if exact and t < fastest[0]:
            fastest = (t, est)
        mine = ours["nrg" if est in ("nrg", "qd", "int", "akr", "akr_circperm") else "fair"][0]
        note = "" if exact else "[approximate estimator, not the same quantity]"
        show(f"scoringrules {backend} {est}", t, float(np.mean(v, dtype=np.float64)), mine, note)

    slices = max(1, shape[1] // 16)
    sub_obs = obs[:slices].astype(np.float64)
    sub_ens = np.moveaxis(ens[:, :slices], 0, -1).astype(np.float64)
    t, v = best_time(lambda: ps.crps_ensemble(sub_obs, sub_ens), 1)
    scale = shape[1] / slices
    show("properscoring crps_ensemble (scaled)", t * scale, float(v.mean()), ours["nrg"][0],
         f"[timed on {slices} of {shape[1]} slices, x{scale:g}; float64 as it needs]")

    print(f"  fastest exact scoringrules estimator: {fastest[1]} {fastest[0] * 1e3:.1f} ms; "
          f"scalelab fair is {fastest[0] / t_fair:.2f}x its speed, "
          f"nrg {fastest[0] / ours['nrg'][0]:.2f}x")

    try:
        import torch
    except ImportError:
        return
    threads = torch.get_num_threads()
    e_t, o_t = torch.from_numpy(ens), torch.from_numpy(obs)
    t, v = best_time(lambda: crps_ensemble(o_t, e_t, axis=0, estimator="fair"), repeats)
    show(f"scalelab torch path, CPU ({threads} threads), fair", t, float(v.double().mean()),
         None, f"[{t_fair / t:.2f}x numpy path's speed]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        bench_classification(20_000, 10, 1)
        bench_crps((10, 4, 32, 32), 1)
    else:
        bench_classification(1_000_000, 10, args.repeats)
        bench_crps((50, 64, 128, 128), args.repeats)


if __name__ == "__main__":
    main()
