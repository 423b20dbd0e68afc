"""Accuracy and coverage of scalelab.laws.predict on the grids scaling studies run.

For each layout of :mod:`scalelab.laws.synthetic` (over-training multiples of N, IsoFLOP
budgets, many epochs of a fixed set; drawn from known laws with 0.7% noise), over
``--seeds`` draws: ``predict_many`` is given the small runs and asked for the larger ones
at about 3×, 10× and 30× the largest model (or budget). Printed per layout and distance:
the median and worst ARE of predict, of the true law form fitted directly (the
reference), of persistence (the largest run nearest in the other sizes) and of the
log–log line, and the share of truths inside predict's and the direct fit's 90%
intervals. With run stores (or CSV tables) as arguments it also backtests them: the
largest model held out, predict given the runs of at most 1/``--ratio`` of its size.

    python benchmarks/bench_predict.py --seeds 3
    python benchmarks/bench_predict.py reports/quickstart/runs.db --ratio 3
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

LAYOUTS = {"over-training": ("overtraining_grid", "ChinchillaLaw"),
           "IsoFLOP": ("isoflop_grid", "ChinchillaLaw"),
           "multi-epoch": ("multi_epoch_grid", "DataConstrainedLaw")}


def direct_fit(law_name: str, fitted: pd.DataFrame, held: pd.DataFrame, n_bootstrap: int):
    from scalelab.laws import ChinchillaLaw, DataConstrainedLaw
    from scalelab.laws.chinchilla import data_starts

    if law_name == "ChinchillaLaw":
        starts = data_starts(fitted, {"N": "params", "D": "samples"}, "val_loss")
        law = ChinchillaLaw(starts=starts, n_bootstrap=n_bootstrap).fit(
            fitted, params="params", samples="samples", y="val_loss")
        band = law.predict_interval(N=held["params"].to_numpy(), D=held["samples"].to_numpy(),
                                    level=0.9, kind="observation")
    else:
        law = DataConstrainedLaw(n_bootstrap=n_bootstrap).fit(fitted)
        band = law.predict_interval(N=held["params"].to_numpy(),
                                    D=held["samples_seen"].to_numpy(),
                                    U=held["samples"].to_numpy(), level=0.9,
                                    kind="observation")
    return band


def run_layout(name: str, seeds: int, n_bootstrap: int, choose: str = "best") -> pd.DataFrame:
    from scalelab.laws import predict_many, synthetic

    maker, law_name = LAYOUTS[name]
    frames = []
    for seed in range(seeds):
        fitted, held = getattr(synthetic, maker)(seed=seed)
        cols = [c for c in ("params", "samples", "samples_seen") if c in held]
        targets = [{c: float(r[c]) for c in cols} for _, r in held.iterrows()]
        preds = predict_many(fitted, targets, n_bootstrap=n_bootstrap, seed=seed, choose=choose)
        band = direct_fit(law_name, fitted, held, n_bootstrap)
        truth = held["val_loss"].to_numpy()
        out = held[["distance"]].copy()
        out["seed"] = seed
        pred = np.array([p.prediction for p in preds])
        out["predict"] = np.abs(pred - truth) / truth
        out["predict_cov"] = [p.lower <= t <= p.upper for p, t in zip(preds, truth)]
        out["law"] = [p.law for p in preds]
        out["direct"] = np.abs(band["prediction"].to_numpy() - truth) / truth
        out["direct_cov"] = (band["lower"].to_numpy() <= truth) & (truth <= band["upper"].to_numpy())
        for base in ("persistence", "log–log line"):
            values = np.array([p.baselines.set_index("law").loc[base, "prediction"]
                               for p in preds])
            out[base] = np.abs(values - truth) / truth
        out["persistence_used"] = [p.law == "persistence" for p in preds]
        frames.append(out)
    return pd.concat(frames, ignore_index=True)


def backtest_largest(runs: pd.DataFrame, ratio: float, y: str = "val_loss",
                     n_bootstrap: int = 50, seed: int = 0) -> dict:
    """Hold out the largest model and predict it from the runs of at most 1/``ratio`` of
    its size.

    The truth is the held-out model's ``y`` (mean over seeds) at its largest data sizes
    (samples U, samples seen D: a data-budget sweep's longest branch), and the target
    names those sizes. Unannealed trunks of data budgets are left out (their branches
    are the results). Returns the distance (held-out N ÷ largest N kept), the
    prediction, its 90% interval and whether it covered the truth, its ARE, the law
    used, and persistence's prediction and ARE (the largest run kept, nearest in the
    other sizes).
    """
    from scalelab.laws import predict, result_rows
    from scalelab.runs.table import run_roles

    runs = runs[run_roles(runs) != "trunk"]
    results = result_rows(runs, y)
    top = float(results["params"].max())
    held = results[results["params"] == top]
    target = {"params": top}
    for col in ("samples", "samples_seen"):
        if col in results and results[col].nunique() > 1:
            target[col] = float(held[col].max())
            held = held[held[col] == held[col].max()]
    truth = float(held[y].mean())
    limit = top / ratio * 1.0001
    kept = results[results["params"] <= limit]
    if kept.empty:
        raise ValueError(f"no run has params <= {limit:.4g} (N_max / {ratio:g})")
    p = predict(runs, target, y=y, where=f"params <= {limit}", n_bootstrap=n_bootstrap,
                seed=seed)
    persistence = float(p.baselines.set_index("law").loc["persistence", "prediction"])
    return {"target": target, "params_kept_max": float(kept["params"].max()),
            "distance": top / float(kept["params"].max()),
            "sizes_kept": int(kept["params"].nunique()), "runs_kept": int(len(kept)),
            "truth": truth, "prediction": float(p.prediction), "lower": float(p.lower),
            "upper": float(p.upper), "covered": bool(p.lower <= truth <= p.upper),
            "are": abs(p.prediction - truth) / truth, "law": p.law,
            "persistence": persistence, "persistence_are": abs(persistence - truth) / truth,
            "beats_persistence": abs(p.prediction - truth) < abs(persistence - truth),
            "backtest_are": float(p.backtest_are),
            "backtest_persistence_are": float(abs(p.persistence_are)),
            "sentence": p.sentence or ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="*", help="run stores (runs.db) or CSV tables")
    parser.add_argument("--seeds", type=int, default=3, help="draws of each layout (3)")
    parser.add_argument("--n-bootstrap", type=int, default=50)
    parser.add_argument("--ratio", type=float, default=3.0,
                        help="for stores: held-out model's size over the largest fitted")
    parser.add_argument("--layouts", nargs="*", default=list(LAYOUTS))
    parser.add_argument("--choose", default="best", choices=("best", "weighted"))
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    print(f"{'layout':<14}{'dist':>6}{'predict':>9}{'worst':>8}{'direct':>8}{'persist':>9}"
          f"{'log-log':>9}{'cov':>6}{'dcov':>6}{'pers%':>7}   laws used")
    for name in args.layouts:
        table = run_layout(name, args.seeds, args.n_bootstrap, args.choose)
        for d, part in table.groupby("distance"):
            laws = part["law"].value_counts()
            used = ", ".join(f"{k} {v}" for k, v in laws.items())
            print(f"{name:<14}{d:>5.0f}×{part['predict'].median():>9.2%}"
                  f"{part['predict'].max():>8.1%}{part['direct'].median():>8.2%}"
                  f"{part['persistence'].median():>9.2%}{part['log–log line'].median():>9.2%}"
                  f"{part['predict_cov'].mean():>6.2f}{part['direct_cov'].mean():>6.2f}"
                  f"{part['persistence_used'].mean():>7.0%}   {used}")
    for source in args.sources:
        import scalelab

        runs = pd.read_csv(source) if source.endswith(".csv") else scalelab.load_runs(source)
        variants = runs["loss_variant"].unique() if "loss_variant" in runs else [None]
        for variant in variants:
            part = runs if variant is None else runs[runs["loss_variant"] == variant]
            b = backtest_largest(part, args.ratio, n_bootstrap=args.n_bootstrap)
            print(f"{source} [{variant}] {b['distance']:.1f}×: predict ARE {b['are']:.2%} "
                  f"({b['law']}), persistence ARE {b['persistence_are']:.2%}, "
                  f"covered {b['covered']}, backtest persistence ARE "
                  f"{b['backtest_persistence_are']:.2%}")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
