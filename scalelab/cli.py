"""The ``scalelab`` command: thin, it calls the parts.

    scalelab run SPEC            run a sweep, fit laws, write the PDF report
    scalelab report STORE -o PDF write the report of a store (or CSV/Parquet table)
    scalelab predict STORE --target params=2e5   predict with the law that backtests best
    scalelab sweep plan SPEC     print the expanded runs (count, sizes, FLOPs), run nothing
    scalelab sweep run SPEC      run a sweep (no report); resumes a killed one
    scalelab runs list|show|export STORE   inspect a store; export to CSV/Parquet
    scalelab sync STORE_OR_DIR   push offline W&B runs to the server

A user mistake prints one sentence (``scalelab: error: ...``) and exits with 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from scalelab._errors import ScalelabError


def main(argv: list[str] | None = None) -> int:
    # a W&B service address inherited from a parent process (a notebook, a test runner)
    # belongs to that process: this command starts and tears down its own
    os.environ.pop("WANDB_SERVICE", None)
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except ScalelabError as err:
        print(f"scalelab: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `scalelab runs list STORE | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("scalelab: interrupted; finished runs are safe in the store, run the same "
              "command again to resume.", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scalelab", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a sweep, fit scaling laws and write the PDF report")
    run.add_argument("spec", help="sweep spec (YAML), e.g. sweeps/quickstart.yaml")
    run.add_argument("--store", help="run store path (default: from the spec)")
    run.add_argument("--workers", type=int, help="worker processes (default: CPU cores)")
    run.add_argument("--no-report", action="store_true", help="skip the PDF report")
    run.add_argument("--no-wandb", action="store_true", help="do not track runs in W&B")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=_cmd_run)

    report = sub.add_parser("report", help="write the PDF report of a run store or table")
    report.add_argument("source", help="run store (runs.db) or CSV/Parquet runs table")
    report.add_argument("-o", "--output", help="PDF path (default: report.pdf beside the store)")
    report.add_argument("--spec", help="the sweep spec (YAML): its targets and text go in the "
                                       "report (default: the spec saved in the store)")
    report.add_argument("--target", action="append", default=[], metavar="KEY=VALUE",
                        help="a headline prediction, e.g. --target params=1e8 --target "
                             "compute=1e18 (repeatable; 'params=1e8,samples=1e6' for a point)")
    report.add_argument("--y", help="the metric to fit (default: the spec's metric, else val_loss)")
    report.add_argument("--sweep", help="only this sweep of the store")
    report.set_defaults(func=_cmd_report)

    predict = sub.add_parser("predict", help="predict a metric at a target size with the law "
                                             "that backtests best, next to persistence")
    predict.add_argument("source", help="run store (runs.db) or CSV/Parquet runs table")
    predict.add_argument("--target", action="append", required=True, metavar="KEY=VALUE",
                         help="params=2e5, samples=1e6, params=2e5,samples=1e6 or compute=1e15 "
                              "(repeatable)")
    predict.add_argument("--y", default="val_loss", help="the metric (default val_loss)")
    predict.add_argument("--where", help="a pandas query selecting runs, e.g. \"params < 1e5\"")
    predict.add_argument("--result", choices=("final", "best"), default="final",
                         help="each run's value: its last (final) or its lowest over the curve "
                              "(best, as early stopping keeps); default final")
    predict.add_argument("--choose", choices=("best", "weighted"), default="best",
                         help="the law of lowest backtest error, or a blend weighted by it")
    predict.add_argument("--level", type=float, default=0.9, help="interval level (0.9)")
    predict.add_argument("--sweep", help="only this sweep of the store")
    predict.add_argument("--json", action="store_true", help="print a JSON list of objects")
    predict.set_defaults(func=_cmd_predict)

    sweep = sub.add_parser("sweep", help="plan or run a sweep")
    sweep_sub = sweep.add_subparsers(dest="sweep_command", required=True)
    plan = sweep_sub.add_parser("plan", help="print the expanded runs without running them")
    plan.add_argument("spec", help="sweep spec (YAML)")
    plan.set_defaults(func=_cmd_sweep_plan)
    to_wandb = sweep_sub.add_parser("wandb", help="write the spec as W&B's sweep controller "
                                                  "takes it (without the scalelab section)")
    to_wandb.add_argument("spec", help="sweep spec (YAML)")
    to_wandb.add_argument("-o", "--output", help="YAML file to write (default: print it)")
    to_wandb.set_defaults(func=_cmd_sweep_wandb)
    sweep_run = sweep_sub.add_parser("run", help="run a sweep (resumes where it stopped)")
    sweep_run.add_argument("spec", help="sweep spec (YAML)")
    sweep_run.add_argument("--store", help="run store path (default: from the spec)")
    sweep_run.add_argument("--workers", type=int, help="concurrent runs (default: CPU cores)")
    sweep_run.add_argument("--executor", choices=("local", "ray"), help="override the spec")
    sweep_run.add_argument("--retry-failed", action="store_true",
                           help="run again the runs that used up their attempts")
    sweep_run.add_argument("--no-wandb", action="store_true", help="do not track runs in W&B")
    sweep_run.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep_run.set_defaults(func=_cmd_sweep_run)

    runs = sub.add_parser("runs", help="inspect a run store")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    listing = runs_sub.add_parser("list", help="one line per run")
    listing.add_argument("store")
    listing.add_argument("--status", help="only runs with this status (e.g. failed)")
    listing.set_defaults(func=_cmd_runs_list)
    show = runs_sub.add_parser("show", help="one run: config, facts, curve, last error")
    show.add_argument("store")
    show.add_argument("run_id", help="run id (a unique prefix is enough)")
    show.set_defaults(func=_cmd_runs_show)
    export = runs_sub.add_parser("export", help="write the runs table to CSV or Parquet")
    export.add_argument("store")
    export.add_argument("-o", "--output", required=True, help="file.csv or file.parquet")
    export.set_defaults(func=_cmd_runs_export)

    sync = sub.add_parser("sync", help="push offline W&B runs to the server")
    sync.add_argument("path", help="run store (runs.db), its folder, or a wandb folder")
    sync.add_argument("--timeout", type=float, default=300, help="seconds (default 300)")
    sync.set_defaults(func=_cmd_sync)
    return parser


def _cmd_run(args) -> int:
    from scalelab.sweep import load_spec, load_runs, run_sweep

    spec = load_spec(args.spec)  # validates everything before any run starts
    if args.store:
        spec.store = Path(args.store)
        spec.report = spec.store.parent / "report.pdf"
    if args.workers:
        spec.workers = args.workers
    t0 = time.perf_counter()
    print(f"scalelab: sweep {spec.name!r}: {len(spec)} runs → {spec.store}", file=sys.stderr)
    outcome = run_sweep(spec, progress=not args.quiet, tracking=not args.no_wandb)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts.items())) or "none"
    print(f"runs: {counts}; {outcome.skipped} already in the store "
          f"({time.perf_counter() - t0:.0f} s)")
    print(f"run store: {spec.store}")
    if outcome.wandb_dirs:
        where = Path(outcome.wandb_dirs[0]).parent
        print(f"W&B ({outcome.wandb_mode}): {len(outcome.wandb_dirs)} runs in {where}"
              + (f"  (push later with: scalelab sync {spec.store})"
                 if outcome.wandb_mode == "offline" else ""))
    if not args.no_report and spec.report is not None:
        from scalelab.report import write_report

        runs = load_runs(spec.store, sweep=spec.name)
        path = write_report(runs, spec.report, title=f"scalelab sweep '{spec.name}'",
                            spec=spec.raw, targets=spec.targets, source=str(spec.store),
                            progress=not args.quiet)
        print(f"report: {path}")
    return 0 if not outcome.counts.get("failed") else 1


def _cmd_report(args) -> int:
    from scalelab.report import parse_target, write_report
    from scalelab.sweep import load_runs

    source = Path(args.source)
    if not source.exists():
        raise ScalelabError(f"{source}: no such run store or table; give the path of a "
                            f"runs.db, CSV or Parquet file.")
    targets = [parse_target(t) for t in args.target]  # bad targets fail before any work
    output = Path(args.output) if args.output else source.with_name("report.pdf")
    if output.suffix.lower() != ".pdf":
        raise ScalelabError(f"{output}: a report is a PDF; give an output path ending in .pdf.")
    spec = None
    if args.spec:
        from scalelab.sweep import load_spec

        spec = load_spec(args.spec).raw
    elif source.suffix.lower() not in (".csv", ".parquet", ".pq"):
        spec = _spec_in_store(source, args.sweep)
    runs = load_runs(source, sweep=args.sweep)
    path = write_report(runs, output, title=f"scalelab report: {source.name}", spec=spec,
                        targets=targets or None, source=str(source), y=args.y, progress=True)
    print(f"report: {path}")
    return 0


def _cmd_predict(args) -> int:
    import json

    from scalelab.laws.prediction import parse_target, predict_many
    from scalelab.sweep import load_runs

    targets = [parse_target(t) for t in args.target]  # bad targets fail before any work
    source = Path(args.source)
    if not source.exists():
        raise ScalelabError(f"{source}: no such run store or table; give the path of a "
                            f"runs.db, CSV or Parquet file.")
    runs = load_runs(source, sweep=args.sweep)
    if args.where:  # one selection, checked once, before the variants are split
        from scalelab.laws.prediction import select_runs

        runs = select_runs(runs, args.where)
    variants = (sorted(runs["loss_variant"].dropna().unique())
                if "loss_variant" in runs.columns else [])
    parts = [(v, runs[runs["loss_variant"] == v]) for v in variants] if len(variants) > 1 \
        else [(variants[0] if variants else None, runs)]
    objects, texts = [], []
    for variant, part in parts:  # one law per loss variant
        for p in predict_many(part, targets, y=args.y, result=args.result, level=args.level,
                              choose=args.choose):
            objects.append({"variant": variant, **p.to_dict()})
            texts.append((f"[{variant}] " if len(parts) > 1 else "") + p.summary())
    print(json.dumps(objects, indent=2) if args.json else "\n\n".join(texts))
    return 0


def _spec_in_store(store: Path, sweep: str | None):
    """The spec a store saved with its sweep (the named one, or the only one)."""
    from scalelab.sweep import RunStore

    try:
        with RunStore(store, readonly=True) as db:
            sweeps = dict(db.sweeps())
    except ScalelabError:
        return None
    if sweep is not None:
        return sweeps.get(sweep)
    return next(iter(sweeps.values())) if len(sweeps) == 1 else None


def _cmd_sweep_wandb(args) -> int:
    import yaml

    from scalelab.sweep import load_spec
    from scalelab.sweep.spec import wandb_config

    text = yaml.safe_dump(wandb_config(load_spec(args.spec)), sort_keys=False)
    if args.output:
        Path(args.output).write_text(text)
        print(f"W&B sweep config: {args.output}  (create the sweep with: wandb sweep "
              f"{args.output})")
    else:
        print(text, end="")
    return 0


def _cmd_sweep_plan(args) -> int:
    from scalelab.sweep import load_spec, plan_sweep
    from scalelab.sweep.plan import varying_columns

    spec = load_spec(args.spec)
    table = plan_sweep(spec)
    swept = varying_columns(table, spec)
    cols = ["run_id", *swept, "params", "flops"]
    print(f"sweep {spec.name!r}: {len(table)} runs, executor {spec.executor}, "
          f"store {spec.store}")
    print(table[cols].to_string(index=False, formatters={"flops": "{:.3g}".format}))
    print(f"params: {table['params'].min():,} to {table['params'].max():,}; "
          f"total training compute: {table['flops'].sum():.3g} FLOPs")
    return 0


def _cmd_sweep_run(args) -> int:
    from scalelab.sweep import load_spec, run_sweep

    spec = load_spec(args.spec)
    if args.store:
        spec.store = Path(args.store)
    if args.workers:
        spec.workers = args.workers
    if args.executor:
        spec.executor = args.executor
    print(f"scalelab: sweep {spec.name!r}: {len(spec)} runs → {spec.store}", file=sys.stderr)
    outcome = run_sweep(spec, progress=not args.quiet, tracking=not args.no_wandb,
                        retry_failed=args.retry_failed)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts.items())) or "none"
    print(f"runs: {counts}; {outcome.skipped} already in the store; "
          f"{outcome.retries} retries")
    print(f"run store: {spec.store}")
    return 0 if not outcome.counts.get("failed") else 1


def _cmd_runs_list(args) -> int:
    from scalelab.sweep import RunStore

    with RunStore(args.store, readonly=True) as store:
        table = store.runs()
    if args.status and not table.empty:
        table = table[table["status"] == args.status]
    if table.empty:
        print("no runs")
        return 0
    cols = [c for c in ("run_id", "family", "width", "depth", "samples", "loss_variant",
                        "params", "status", "attempts", "host") if c in table]
    print(table[cols].to_string(index=False))
    return 0


def _cmd_runs_show(args) -> int:
    import json

    from scalelab.sweep import RunStore

    with RunStore(args.store, readonly=True) as store:
        table = store.runs()
        match = table[table["run_id"].str.startswith(args.run_id)] if not table.empty else table
        if len(match) != 1:
            raise ScalelabError(f"{args.store}: {len(match)} runs have an id starting with "
                                f"{args.run_id!r}; give a longer prefix (scalelab runs list "
                                f"shows the ids).")
        run = match.iloc[0].to_dict()
        curve = store.curves(run["run_id"])
    error = run.pop("error", None)
    for key, value in run.items():
        print(f"{key:>18}: {json.dumps(value, default=str) if isinstance(value, dict) else value}")
    if not curve.empty:
        print()
        print(curve.drop(columns=["run_id"]).to_string(index=False))
    if isinstance(error, str) and error:
        print("\nlast error:\n" + error)
    return 0


def _cmd_runs_export(args) -> int:
    from scalelab.sweep import RunStore

    with RunStore(args.store, readonly=True) as store:
        print(f"exported: {store.export(args.output)}")
    return 0


def _cmd_sync(args) -> int:
    from scalelab.sweep.tracking import sync_offline

    dirs = sync_offline(args.path, timeout=args.timeout)
    print(f"synced {len(dirs)} offline W&B runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
