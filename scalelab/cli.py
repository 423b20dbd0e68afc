"""The ``scalelab`` command: thin, it calls the parts.

    scalelab run SPEC            run a sweep, fit laws, write the PDF report
    scalelab report STORE -o PDF write the report of a store (or CSV/Parquet table)
    scalelab runs list STORE     list the runs of a store

A user mistake prints one sentence (``scalelab: error: ...``) and exits with 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from scalelab._errors import ScalelabError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except ScalelabError as err:
        print(f"scalelab: error: {err}", file=sys.stderr)
        return 2
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
    report.set_defaults(func=_cmd_report)

    runs = sub.add_parser("runs", help="inspect a run store")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    listing = runs_sub.add_parser("list", help="one line per run")
    listing.add_argument("store")
    listing.set_defaults(func=_cmd_runs_list)
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
              + ("  (push later with: wandb sync " + str(where) + "/offline-run-*)"
                 if outcome.wandb_mode == "offline" else ""))
    if not args.no_report and spec.report is not None:
        from scalelab.report import write_report

        runs = load_runs(spec.store, sweep=spec.name)
        path = write_report(runs, spec.report, title=f"scalelab sweep '{spec.name}'")
        print(f"report: {path}")
    return 0 if not outcome.counts.get("failed") else 1


def _cmd_report(args) -> int:
    from scalelab.report import write_report
    from scalelab.sweep import load_runs

    source = Path(args.source)
    if not source.exists():
        raise ScalelabError(f"{source}: no such run store or table; give the path of a "
                            f"runs.db, CSV or Parquet file.")
    runs = load_runs(source)
    output = Path(args.output) if args.output else source.with_name("report.pdf")
    print(f"report: {write_report(runs, output, title=f'scalelab report: {source}')}")
    return 0


def _cmd_runs_list(args) -> int:
    from scalelab.sweep import RunStore

    with RunStore(args.store, create=False) as store:
        table = store.runs()
    if table.empty:
        print("no runs")
        return 0
    cols = [c for c in ("run_id", "family", "width", "depth", "samples", "loss_variant",
                        "params", "status", "attempts") if c in table]
    print(table[cols].to_string(index=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
