"""Accuracy of scalelab.laws.predict on held-out runs: does the chosen law beat the naive
guesses when the answer is known?

For each run store (or CSV table), each loss variant and each data size D swept, the
runs of the largest model are held out, ``predict`` is given only the runs with at most
1/RATIO of its parameters (``--ratio 4``: a 4× extrapolation), and its prediction is
compared with the held-out truth (the mean over seeds). Printed per case: the AREs of the
law chosen by ``choose="best"`` and by ``choose="weighted"``, of persistence and of the
log–log line, and whether the 90% interval covered the truth; then the mean AREs.

    python benchmarks/bench_predict.py reports/quickstart/runs.db [more stores] --ratio 4
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd


def synthetic_table(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = 1e3 * 2.0 ** np.arange(7)
    rows = [{"run_id": f"n{n:g}s{s}", "params": n, "samples": 4096, "loss_variant": "mse",
             "val_loss": (0.04 + 0.9 * n**-0.45) * (1 + 0.01 * rng.standard_normal())}
            for n in sizes for s in (0, 1)]
    return pd.DataFrame(rows)


def cases(runs: pd.DataFrame):
    variants = runs["loss_variant"].unique() if "loss_variant" in runs else [None]
    for variant in variants:
        part = runs if variant is None else runs[runs["loss_variant"] == variant]
        for d in sorted(part["samples"].unique()) if "samples" in part else [None]:
            yield variant, d, part


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="*", help="run stores (runs.db) or CSV tables")
    parser.add_argument("--synthetic", action="store_true",
                        help="also a table drawn from L = 0.04 + 0.9·N^−0.45 with 1% noise "
                             "(7 sizes × 2 seeds), whose answer is known")
    parser.add_argument("--ratio", type=float, default=4.0,
                        help="parameters of the held-out model over the largest fitted (4)")
    parser.add_argument("--y", default="val_loss")
    parser.add_argument("--result", default="final", choices=("final", "best"))
    args = parser.parse_args()

    import scalelab
    from scalelab.laws import predict, result_rows

    if not args.sources and not args.synthetic:
        parser.error("give run stores or tables, or --synthetic")
    tables = [(s, None) for s in args.sources]
    if args.synthetic:
        tables.append(("synthetic", synthetic_table()))
    rows = []
    t0 = time.perf_counter()
    for source, table in tables:
        runs = table if table is not None else (
            pd.read_csv(source) if source.endswith(".csv") else scalelab.load_runs(source))
        for variant, d, part in cases(runs):
            results = result_rows(part, args.y, args.result)
            if d is not None:
                results = results[results["samples"] == d]
            top = float(results["params"].max())
            truth = float(results.loc[results["params"] == top, args.y].mean())
            limit = top / args.ratio * 1.0001
            target = f"params={top:g}" + (f",samples={d:g}" if d is not None else "")
            found = {}
            for choose in ("best", "weighted"):
                p = predict(part, target, y=args.y, result=args.result, choose=choose,
                            where=f"params <= {limit}")
                found[choose] = p
            p = found["best"]
            fitted = float(part.loc[part["params"] <= limit, "params"].max())
            rows.append({
                "source": (Path(source).parent.name if Path(source).name == "runs.db"
                           else Path(source).stem),
                "variant": variant, "D": d, "fit up to N": fitted, "target N": top,
                "ratio": top / fitted, "truth": truth,
                "law (best)": p.law[:24],
                "ARE best": abs(p.prediction - truth) / truth,
                "ARE weighted": abs(found["weighted"].prediction - truth) / truth,
                "ARE persistence": abs(p.baselines.set_index("law").loc[
                    "persistence", "prediction"] - truth) / truth,
                "ARE log–log": abs(p.baselines.set_index("law").loc[
                    "log–log line", "prediction"] - truth) / truth,
                "covered": bool(p.lower <= truth <= p.upper),
                "backtest said beats persistence": p.beats_persistence,
            })
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    fmt = {c: "{:.2%}".format for c in table.columns if c.startswith("ARE")}
    print(table.to_string(index=False, formatters={**fmt, "truth": "{:.4g}".format,
                                                   "ratio": "{:.1f}".format}))
    means = table[[c for c in table.columns if c.startswith("ARE")]].mean()
    print("\nmean ARE: " + ", ".join(f"{k[4:]} {v:.2%}" for k, v in means.items()))
    print(f"interval covered the truth in {table['covered'].mean():.0%} of {len(table)} cases; "
          f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
