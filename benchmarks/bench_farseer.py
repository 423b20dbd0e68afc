"""Farseer's surface against Chinchilla's law: backtest error when the largest models are
left out, on synthetic layouts and on published runs, and whether predict chooses it.

For each table: FarseerLaw and ChinchillaLaw fitted to every run below the largest (k = 1)
or two largest (k = 2) model sizes predict the runs at those sizes; printed is each law's
mean absolute relative error (ARE) there. Then ``predict`` is asked for the largest size's
runs from the smaller ones, and its candidates' own backtest AREs (leaving out the largest
one, two, three sizes of what it was given) and the law it chose are printed. Tables:

- synthetic (:mod:`scalelab.laws.synthetic`, 0.7% noise, ``--seeds`` draws): the
  over-training grid (Chinchilla's law the truth), the same layout with Farseer's surface
  the truth, IsoFLOP budgets and many epochs (where Farseer should refuse or not help);
- the published over-training runs of Gadre et al. 2024 (``--gadre`` CSV: 3 training sets,
  6 sizes from 11M to 6.9B, M = D/N from 5 to 640; val_loss is the C4 eval loss);
- run stores or CSV tables given as arguments (final rows of each loss variant).

    python benchmarks/bench_farseer.py --seeds 3
    python benchmarks/bench_farseer.py --gadre /path/overtraining_gadre.csv reports/x/runs.db
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

LAWS = ("FarseerLaw", "ChinchillaLaw")


def leave_out_are(table: pd.DataFrame, data: str, k: int) -> dict:
    """ARE of each law fitted below the k largest model sizes, at those sizes' runs."""
    from scalelab.laws import ChinchillaLaw, FarseerLaw
    from scalelab.laws.chinchilla import data_starts

    sizes = np.sort(table["params"].unique())
    held = table[table["params"] >= sizes[-k]]
    fitted = table[table["params"] < sizes[-k]]
    out = {}
    for name in LAWS:
        try:
            if name == "ChinchillaLaw":
                law = ChinchillaLaw(n_bootstrap=0, starts=data_starts(
                    fitted, {"N": "params", "D": data}, "val_loss"))
            else:
                law = FarseerLaw(n_bootstrap=0)
            law.fit(fitted, params="params", samples=data, y="val_loss")
            pred = law.predict(N=held["params"].to_numpy(float), D=held[data].to_numpy(float))
            truth = held["val_loss"].to_numpy(float)
            out[name] = float(np.mean(np.abs(pred - truth) / truth))
        except Exception as err:  # noqa: BLE001 - a benchmark reports, it does not stop
            out[name] = f"refused: {str(err)[:60]}"
    return out


def predict_row(table: pd.DataFrame, data: str, n_bootstrap: int) -> dict:
    """predict's backtest AREs of both laws and its choice, for the largest size's runs
    predicted from the smaller ones (ARE of the prediction against their mean)."""
    from scalelab.laws import predict

    top = table["params"].max()
    held = table[table["params"] == top]
    target_d = float(held[data].iloc[0])
    truth = float(held.loc[held[data] == target_d, "val_loss"].mean())
    p = predict(table[table["params"] < top], {"params": float(top), data: target_d},
                n_bootstrap=n_bootstrap)
    cands = p.candidates.set_index("law")
    row = {"chosen": p.law, "predict_are": abs(p.prediction - truth) / truth}
    for name in LAWS:
        if name in cands.index:
            are = cands.loc[name, "backtest_are"]
            row[name] = are if np.isfinite(are) else cands.loc[name, "note"][:60]
        else:
            row[name] = "not a candidate"
    return row


def fmt(value) -> str:
    return f"{value:8.2%}" if isinstance(value, float) else f"  {value}"


def report(name: str, table: pd.DataFrame, data: str, n_bootstrap: int) -> None:
    for k in (1, 2):
        are = leave_out_are(table, data, k)
        print(f"{name:<28} leave out {k} largest N: " +
              "  ".join(f"{law} {fmt(are[law])}" for law in LAWS))
    row = predict_row(table, data, n_bootstrap)
    print(f"{name:<28} predict backtests:       " +
          "  ".join(f"{law} {fmt(row[law])}" for law in LAWS) +
          f"  -> chose {row['chosen']} (ARE at the largest N {row['predict_are']:.2%})")


#: layout: (generator of scalelab.laws.synthetic, the truth, the data column)
LAYOUTS = {"over-training": ("overtraining_grid", "Chinchilla", "samples"),
           "farseer": ("farseer_grid", "Farseer", "samples"),
           "IsoFLOP": ("isoflop_grid", "Chinchilla", "samples"),
           "multi-epoch": ("multi_epoch_grid", "Muennighoff", "samples_seen")}


def synthetic_tables(layouts, seeds: int):
    from scalelab.laws import synthetic

    for seed in range(seeds):
        for layout in layouts:
            maker, truth, data = LAYOUTS[layout]
            fitted, _ = getattr(synthetic, maker)(seed=seed)
            yield f"{layout}/{truth} s{seed}", fitted, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="*", help="run stores (runs.db) or CSV tables")
    parser.add_argument("--seeds", type=int, default=2, help="draws of each layout (2)")
    parser.add_argument("--n-bootstrap", type=int, default=30)
    parser.add_argument("--gadre", default=None,
                        help="the CSV of Gadre et al. 2024's runs (dataset, params, samples, "
                             "val_loss)")
    parser.add_argument("--layouts", nargs="*", default=list(LAYOUTS), choices=list(LAYOUTS),
                        help="synthetic layouts (all; none with --layouts and no name)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    if args.layouts:
        for name, table, data in synthetic_tables(args.layouts, args.seeds):
            report(name, table, data, args.n_bootstrap)
    if args.gadre:
        runs = pd.read_csv(args.gadre)
        for dataset, part in runs.groupby("dataset"):
            report(f"Gadre 2024 {dataset}", part.reset_index(drop=True), "samples",
                   args.n_bootstrap)
    for source in args.sources:
        import scalelab
        from scalelab.laws import result_rows

        runs = pd.read_csv(source) if source.endswith(".csv") else scalelab.load_runs(source)
        variants = runs["loss_variant"].unique() if "loss_variant" in runs else [None]
        for variant in variants:
            part = runs if variant is None else runs[runs["loss_variant"] == variant]
            results = result_rows(part).reset_index(drop=True)
            report(f"{source} [{variant}]", results, "samples", args.n_bootstrap)
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
