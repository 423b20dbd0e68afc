"""The ``scalelab`` command: thin, it calls the parts.

    scalelab run SPEC [key=value ...]   run a sweep, fit laws, write the PDF report
    scalelab report STORE -o PDF write the report of a store (or CSV/Parquet table)
    scalelab predict STORE --target params=2e5   predict with the law that backtests best
    scalelab sweep plan SPEC     print the expanded runs (count, sizes, FLOPs), run nothing
    scalelab sweep run SPEC      run a sweep (no report); resumes a killed one
    scalelab sweep wandb SPEC -o F   the spec as a W&B sweep (wandb sweep F; wandb agent)
    scalelab agent-run SPEC key=value ...   one trial of a W&B sweep (what wandb agent runs)
    scalelab runs list|show|export STORE   inspect a store; export to CSV/Parquet
    scalelab sync STORE_OR_DIR   push offline W&B runs to the server
    scalelab example-data era5-like DIR   write an ERA5-like netCDF-4 file and zarr store
    scalelab fit-kernels -o FILE [--field precip --scale 4 --target gaussian]   fit the
                                 learned kernels of degradation learned_kernel (ADK-Net)

``key=value`` overrides change the spec before it is validated: ``width=64``,
``model.width=64``, ``lr=1e-3``, ``samples=[256,512]`` or ``samples=256,512`` (a list
sweeps it), ``options.path=a.nc`` (a key inside a mapping), ``scalelab.workers=4``,
``+key=value`` (add) and ``~key`` (delete), as Hydra's; the store records the spec with them.

A user mistake prints one sentence (``scalelab: error: ...``) and exits with 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
import warnings
from pathlib import Path

from scalelab._errors import ScalelabError, ScalelabWarning
from scalelab.result import RESULTS


def main(argv: list[str] | None = None) -> int:
    # a W&B service address inherited from a parent process (a notebook, a test runner)
    # belongs to that process: this command starts and tears down its own
    os.environ.pop("WANDB_SERVICE", None)
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # KEY=VALUE after an option (sweep run SPEC --quiet width=8) is an override too
        if hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args) or 0
    except ScalelabError as err:
        print(f"scalelab: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `scalelab runs list STORE | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:  # the machine refused a file (a name too long, a full disk, ...)
        where = f"{err.filename}: " if err.filename else ""
        reason = (err.strerror or type(err).__name__).lower()
        print(f"scalelab: error: {where}{reason} (the system refused a file operation); check "
              f"the path, its permissions and the free space, then run again.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("scalelab: interrupted; finished runs are safe in the store, run the same "
              "command again to resume.", file=sys.stderr)
        return 130


def _int_or_word(text: str):
    """An option's value as the spec would hold it: ``4`` → 4, ``auto`` → "auto"."""
    try:
        return int(text)
    except ValueError:
        return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scalelab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"scalelab {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a sweep, fit scaling laws and write the PDF report")
    _add_sweep_run_options(run)
    run.add_argument("--no-report", action="store_true", help="skip the PDF report")
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
    predict.add_argument("--result", choices=RESULTS, default="final",
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
    plan.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                      help="changes to the spec, e.g. lr=1e-3 samples=256,512 "
                           "options.path=a.nc +seed=1 ~warmup_steps")
    plan.set_defaults(func=_cmd_sweep_plan)
    to_wandb = sweep_sub.add_parser("wandb", help="write the spec as W&B's sweep controller "
                                                  "takes it (without the scalelab section)")
    to_wandb.add_argument("spec", help="sweep spec (YAML)")
    to_wandb.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                          help="changes to the spec, e.g. lr=1e-3 samples=256,512 "
                           "options.path=a.nc +seed=1 ~warmup_steps")
    to_wandb.add_argument("-o", "--output", help="YAML file to write (default: print it)")
    to_wandb.add_argument("--store", help="the run store each agent writes (default: the "
                                          "spec's); $VARS are expanded by each agent, e.g. "
                                          "'reports/x/agent-$SCALELAB_AGENT/runs.db'")
    to_wandb.set_defaults(func=_cmd_sweep_wandb)
    sweep_run = sweep_sub.add_parser("run", help="run a sweep (resumes where it stopped)")
    _add_sweep_run_options(sweep_run)
    sweep_run.set_defaults(func=_cmd_sweep_run)
    _add_agent_run(sub)

    runs = sub.add_parser("runs", help="inspect a run store")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    _add_runs_list(runs_sub)
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

    example = sub.add_parser("example-data", help="write example data to start from")
    example.add_argument("kind", choices=("era5-like",), help="which example")
    example.add_argument("directory", help="folder to write into (created if needed)")
    example.add_argument("--days", type=int, default=1096, help="daily steps (default 1096, "
                                                                "2018-2020)")
    example.add_argument("--resolution", type=float, default=2.5, help="grid spacing in "
                                                                       "degrees (default 2.5)")
    example.add_argument("--seed", type=int, default=0)
    example.set_defaults(func=_cmd_example_data)

    kernels = sub.add_parser("fit-kernels", help="fit learned per-pixel downscaling kernels "
                             "(ADK-Net) to a target LR, for degradation: learned_kernel")
    kernels.add_argument("-o", "--output", required=True, help="the kernels file to write (.pt)")
    kernels.add_argument("--field", default="precip", help="the field (default precip)")
    kernels.add_argument("--scale", type=int, default=4, help="downscaling factor (default 4)")
    kernels.add_argument("--target", default="gaussian",
                         help="the degradation that makes the target LR: gaussian (default) "
                              "or bicubic; a gridded field's options.lr_path supplies real "
                              "coarse data instead")
    kernels.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="the field's options, as a run's (blur_sigma=1.5, "
                              "lr_path=coarse.nc, path=fine.nc, variable=t2m, ...)")
    kernels.add_argument("--field-size", type=int, default=32, help="HR size (default 32)")
    kernels.add_argument("--samples", type=int, default=512, help="training fields (512)")
    kernels.add_argument("--test-samples", type=int, default=128,
                         help="held-out fields it is scored on (128)")
    kernels.add_argument("--steps", type=int, default=400, help="Adam steps (400)")
    kernels.add_argument("--kernel-size", type=int, default=None,
                         help="k of the k×k kernels (default 3 × scale)")
    kernels.add_argument("--width", type=int, default=8, help="hidden channels (8)")
    kernels.add_argument("--depth", type=int, default=2, help="3×3 convolutions at HR (2)")
    kernels.add_argument("--seed", type=int, default=0)
    kernels.set_defaults(func=_cmd_fit_kernels)
    return parser


def _cmd_fit_kernels(args) -> int:
    import yaml

    from scalelab._files import writable_folder
    from scalelab.config import RunConfig
    from scalelab.data.names import DEGRADATIONS

    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ScalelabError(f"--option {item!r} is not KEY=VALUE; write it like "
                                f"--option blur_sigma=1.5.")
        options[key] = yaml.safe_load(value)
    if args.target not in DEGRADATIONS or args.target == "learned_kernel":
        valid = ", ".join(d for d in DEGRADATIONS if d != "learned_kernel")
        raise ScalelabError(f"--target {args.target!r}: the target LR is made by a fixed "
                            f"degradation, one of {valid} (or read from --option lr_path=...).")
    # the field, its options and the sizes checked as a run's would be, before any work
    RunConfig(field=args.field, scale=args.scale, field_size=args.field_size,
              degradation=args.target, samples=args.samples, options=options,
              family="edsr").validate(source="fit-kernels")
    writable_folder(Path(args.output), "kernels")
    from scalelab.data.kernels import describe, fit_kernels, save_kernels

    fitted = fit_kernels(args.field, args.scale, args.target, options, args.field_size,
                         args.samples, args.test_samples, args.steps,
                         kernel_size=args.kernel_size, width=args.width, depth=args.depth,
                         seed=args.seed)
    path = save_kernels(fitted, args.output)
    print(f"kernels: {path} ({sum(p.numel() for p in fitted.network.parameters())} weights)")
    print(describe(fitted))
    print(f"use them in a spec: degradation: learned_kernel, options: {{kernel_path: {path}}}")
    return 0


def _cmd_example_data(args) -> int:
    from scalelab._files import writable_folder
    from scalelab.data.era5like import write_era5_like

    folder = Path(args.directory)
    if folder.exists() and not folder.is_dir():
        raise ScalelabError(f"{folder}: is a file, not a folder; give a folder to write the "
                            f"example data into (it is made if need be).")
    writable_folder(folder / "era5_like.nc", "example data")  # before any work

    paths = write_era5_like(args.directory, days=args.days, resolution=args.resolution,
                            seed=args.seed)
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    print("run the example sweep on it: scalelab run sweeps/gridded.yaml (it reads "
          "data/era5_like.nc; write the data there or edit options.path)")
    return 0


def _print_first_failure(outcome, store) -> None:
    """Why runs failed, in one line, so a user need not open the store to find out."""
    if outcome.first_failure is not None:
        run_id, reason = outcome.first_failure
        print(f"first failure (run {run_id}): {reason}  (full traceback: scalelab runs show "
              f"{store} {run_id})")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scalelab")
    except PackageNotFoundError:  # run from a source tree that is not installed
        from scalelab import __version__

        return __version__


def _add_sweep_run_options(parser) -> None:
    """The options of every command that runs a sweep (``run``, ``sweep run``)."""
    parser.add_argument("spec", help="sweep spec (YAML), e.g. sweeps/quickstart.yaml")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="changes to the spec before it is validated: width=64, "
                             "model.width=64, lr=1e-3, samples=256,512, options.path=a.nc, "
                             "scalelab.workers=4, +key=value (add), ~key (delete)")
    parser.add_argument("--store", help="run store path (default: from the spec)")
    parser.add_argument("--workers", type=_int_or_word, help="concurrent runs (default: CPU cores)")
    parser.add_argument("--executor", help="local or ray (overrides the spec)")
    parser.add_argument("--retry-failed", action="store_true",
                        help="run again the runs that used up their attempts")
    parser.add_argument("--no-wandb", action="store_true", help="do not track runs in W&B")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_agent_run(sub) -> None:
    agent = sub.add_parser("agent-run", help="run one trial of a W&B sweep (the command "
                                             "'scalelab sweep wandb' gives wandb agent)")
    agent.add_argument("spec", help="the sweep spec (YAML) the W&B sweep was exported from")
    agent.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="the trial's values, as wandb agent passes them (${args_no_hyphens})")
    agent.add_argument("--store", help="run store path (default: from the spec); $VARS are "
                                       "expanded from the environment")
    agent.add_argument("--quiet", action="store_true", help="no progress bar")
    agent.set_defaults(func=_cmd_agent_run)


def _add_runs_list(runs_sub) -> None:
    listing = runs_sub.add_parser("list", help="one line per run, with its latest step and "
                                               "metric (running runs too)")
    listing.add_argument("store")
    listing.add_argument("--status", help="only runs with this status: pending, running, "
                                          "finished, diverged or failed")
    listing.add_argument("--sweep", help="only the runs of this sweep")
    listing.add_argument("--metric", help="the metric column (default: the sweep's metric, "
                                          "else val_loss)")
    listing.add_argument("--sort", help="sort by this column (e.g. val_loss, step, params); "
                                        "--sort=-COLUMN sorts descending")
    listing.set_defaults(func=_cmd_runs_list)


def _load_spec_with_options(args):
    """The spec with the command line's changes applied before it is validated."""
    from scalelab.sweep import load_spec

    overrides = {}
    if args.store is not None:  # the report goes beside a store moved on the command line
        overrides["store"] = ("--store", args.store)
        overrides["report"] = ("--store", str(Path(args.store).parent / "report.pdf"))
    if args.workers is not None:
        overrides["workers"] = ("--workers", args.workers)
    if args.executor is not None:
        overrides["executor"] = ("--executor", args.executor)
    return load_spec(args.spec, overrides=overrides, assignments=args.overrides)


def _run_sweep_command(args):
    """What ``scalelab run`` and ``scalelab sweep run`` share: load, run, say what happened."""
    from scalelab.sweep import run_sweep
    from scalelab.sweep.guards import check_launch
    from scalelab.sweep.spec import refuse_early_terminate

    spec = _load_spec_with_options(args)  # validates everything before any run starts
    refuse_early_terminate(spec)
    check_launch(spec)  # the store can be written, the devices exist (run_sweep checks again)
    if getattr(args, "no_report", True) is False and spec.report is not None:
        from scalelab._files import writable_folder  # the report's place, before training

        writable_folder(spec.report, "report", "scalelab.report")
    t0 = time.perf_counter()
    print(f"scalelab: sweep {spec.name!r}: {len(spec)} runs → {spec.store}", file=sys.stderr)
    outcome = run_sweep(spec, progress=not args.quiet, tracking=not args.no_wandb,
                        retry_failed=args.retry_failed)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts.items())) or "none"
    print(f"runs: {counts}; {outcome.skipped} already in the store; {outcome.retries} retries "
          f"({time.perf_counter() - t0:.0f} s)")
    _print_first_failure(outcome, spec.store)
    print(f"run store: {spec.store}")
    if outcome.wandb_dirs:
        where = Path(outcome.wandb_dirs[0]).parent
        print(f"W&B ({outcome.wandb_mode}): {len(outcome.wandb_dirs)} runs in {where}"
              + (f"  (push later with: scalelab sync {spec.store})"
                 if outcome.wandb_mode == "offline" else ""))
    return spec, outcome


def _cmd_run(args) -> int:
    spec, outcome = _run_sweep_command(args)
    if not args.no_report and spec.report is not None and outcome.skipped == 0 and not (
            outcome.counts.get("finished") or outcome.counts.get("diverged")):
        print("report: none, as no run finished; mend the failure above and run again")
    elif not args.no_report and spec.report is not None:
        from scalelab.report import write_report
        from scalelab.runs import load_runs

        runs = load_runs(spec.store, sweep=spec.name)
        path = write_report(runs, spec.report, title=f"scalelab sweep '{spec.name}'",
                            spec=spec, source=str(spec.store),
                            progress=not args.quiet)
        print(f"report: {path}")
    return 0 if not outcome.counts.get("failed") else 1


def _cmd_report(args) -> int:
    from scalelab.report import parse_target, write_report
    from scalelab.runs import load_runs

    source = Path(args.source)
    if not source.exists():
        raise ScalelabError(f"{source}: no such run store or table; give the path of a "
                            f"runs.db, CSV or Parquet file.")
    targets = [parse_target(t) for t in args.target]  # bad targets fail before any work
    output = Path(args.output) if args.output else source.with_name("report.pdf")
    if output.suffix.lower() != ".pdf":
        raise ScalelabError(f"{output}: a report is a PDF; give an output path ending in .pdf.")
    from scalelab._files import writable_folder

    writable_folder(output, "report", "-o" if args.output else "")  # before any work
    spec = None
    if args.spec:
        from scalelab.sweep import load_spec

        spec = load_spec(args.spec)
    elif source.suffix.lower() not in (".csv", ".parquet", ".pq"):
        spec = _spec_in_store(source, args.sweep)
    runs = load_runs(source, sweep=args.sweep)
    if args.y is not None:
        _check_y(args.y, runs, str(source))
    if args.y is not None and len(runs):
        from scalelab.runs.columns import RUN_COLUMNS

        numeric = runs.select_dtypes("number").columns
        _check_metric(args.y, [c for c in runs.columns if c in numeric and c not in RUN_COLUMNS
                               or c == args.y], str(source), "--y")
    with warnings.catch_warnings(record=True) as caught:  # rows left out: told on stdout
        warnings.simplefilter("always", ScalelabWarning)
        path = write_report(runs, output, title=f"scalelab report: {source.name}", spec=spec,
                            targets=targets or None, source=str(source), y=args.y,
                            progress=True)
    for warning in caught:
        if issubclass(warning.category, ScalelabWarning):
            print(f"report: {warning.message}")
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename,
                                 warning.lineno)
    print(f"report: {path}")
    return 0


def _cmd_predict(args) -> int:
    import json

    from scalelab.laws.prediction import parse_target, predict_many
    from scalelab.runs import load_runs

    targets = [parse_target(t) for t in args.target]  # bad targets fail before any work
    source = Path(args.source)
    if not source.exists():
        raise ScalelabError(f"{source}: no such run store or table; give the path of a "
                            f"runs.db, CSV or Parquet file.")
    runs = load_runs(source, sweep=args.sweep)
    _check_y(args.y, runs, str(source))
    from scalelab.runs.table import check_query, require_numeric

    # words where sizes belong are named before any fit
    require_numeric(runs, ("params", "samples", "samples_seen", "epochs", "flops", args.y),
                    str(source))
    if args.where:  # one selection, checked once, before the variants are split
        from scalelab.laws.prediction import select_runs

        check_query(args.where, runs.columns)  # column comparisons only: nothing evaluated
        runs = select_runs(runs, args.where)
    from scalelab.runs.table import with_objective_variants

    runs = with_objective_variants(runs)  # an adversarial weight is its own variant
    variants = (sorted(runs["loss_variant"].dropna().unique())
                if "loss_variant" in runs.columns else [])
    parts = [(v, runs[runs["loss_variant"] == v]) for v in variants] if len(variants) > 1 \
        else [(variants[0] if variants else None, runs)]
    from scalelab.runs.baselines import bicubic_value, improvement, versus_bicubic

    objects, texts = [], []
    for variant, part in parts:  # one law per loss variant
        # the reference downscaling of the same validation set, where the runs recorded it
        bicubic = bicubic_value(part, args.y)
        for p in predict_many(part, targets, y=args.y, result=args.result, level=args.level,
                              choose=args.choose):
            versus = versus_bicubic(p.prediction, bicubic, args.y)
            objects.append({"variant": variant, **p.to_dict(),
                            **({"bicubic": bicubic,
                                "better_than_bicubic": improvement(p.prediction, bicubic, args.y)}
                               if versus else {})})
            texts.append((f"[{variant}] " if len(parts) > 1 else "") + p.summary()
                         + (f"\n  predicted {versus}" if versus else ""))
    print(json.dumps(objects, indent=2) if args.json else "\n\n".join(texts))
    return 0


def _spec_in_store(store: Path, sweep: str | None):
    """The spec a store saved with its sweep (the named one, or the only one)."""
    from scalelab.runs import StoreReader

    try:
        with StoreReader(store) as db:
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

    from scalelab._files import atomic_write_text, writable_folder

    if args.output:
        writable_folder(args.output, "W&B sweep config", "-o")  # before the spec is read
    spec = load_spec(args.spec, assignments=args.overrides)
    text = yaml.safe_dump(wandb_config(spec, store=args.store), sort_keys=False)
    if args.output:
        atomic_write_text(args.output, text, "W&B sweep config")
        where = "" if Path(args.spec).is_absolute() else " in this folder"
        print(f"W&B sweep config: {args.output}  (create the sweep with: wandb sweep "
              f"{args.output}; then run trials{where} with: wandb agent SWEEP_ID; a run "
              f"store has one writer, so give agents on one machine their own with --store)")
    else:
        print(text, end="")
    return 0


def _cmd_sweep_plan(args) -> int:
    from scalelab.sweep import load_spec, plan_sweep
    from scalelab.sweep.plan import varying_columns

    from scalelab.sweep.branches import budget_compute

    spec = load_spec(args.spec, assignments=args.overrides)
    table = plan_sweep(spec)
    swept = varying_columns(table, spec)
    savings = budget_compute(table)
    if savings is not None:  # the parent's first digits say which trunk a branch grows from
        table["parent"] = table["parent"].str[:6].replace("", "-")
        swept = [c for c in swept if c not in ("role", "branch_step")]
        cols = ["run_id", "role", "parent", "branch_step", *swept, "params", "flops_spent",
                "flops"]
    else:
        cols = ["run_id", *swept, "params", "flops"]
    print(f"sweep {spec.name!r}: {len(table)} runs, executor {spec.settings.executor}, "
          f"store {spec.store}")
    print(table[cols].to_string(index=False, formatters={"flops": "{:.3g}".format,
                                                         "flops_spent": "{:.3g}".format}))
    print(f"params: {table['params'].min():,} to {table['params'].max():,}; "
          f"total training compute: {table['flops_spent'].sum():.3g} FLOPs")
    if savings is not None:
        print(f"data budgets from trunks: {savings['branches']} branches of "
              f"{savings['trunks']} trunks cost {savings['spent']:.3g} FLOPs against "
              f"{savings['independent']:.3g} for independent runs of the same budgets "
              f"(saves {savings['saved']:.3g}, {savings['saved_fraction']:.0%})")
    return 0


def _cmd_sweep_run(args) -> int:
    _, outcome = _run_sweep_command(args)
    return 0 if not outcome.counts.get("failed") else 1


def _cmd_agent_run(args) -> int:
    """One trial of a W&B sweep: the spec with W&B's values for it, run and stored as
    ``scalelab run`` would, its W&B run being the one W&B's agent created."""
    from scalelab.sweep import load_spec, run_sweep

    store = _expand_variables(args.store, "--store") if args.store else None
    overrides = {"store": ("--store", store)} if store else {}
    spec = load_spec(_expand_variables(args.spec, "the spec path"), overrides=overrides,
                     assignments=args.overrides)
    spec.raw.pop("early_terminate", None)  # W&B's controller applies it to this run
    wandb = dict(spec.settings.wandb)
    if len(spec) != 1:
        raise ScalelabError(f"{args.spec}: with {' '.join(args.overrides) or 'no values'} the "
                            f"spec still has {len(spec)} runs; scalelab agent-run runs one "
                            f"trial, so give every swept parameter (wandb agent does).")
    wandb_id = os.environ.get("WANDB_RUN_ID")
    if os.environ.get("WANDB_PROJECT"):  # the sweep's project, as wandb agent sets it
        wandb["project"] = os.environ["WANDB_PROJECT"]
    if os.environ.get("WANDB_ENTITY"):
        wandb["entity"] = os.environ["WANDB_ENTITY"]
    if os.environ.get("WANDB_SWEEP_ID") and wandb.get("mode", "auto") == "auto" \
            and not os.environ.get("WANDB_MODE"):
        wandb["mode"] = "online"  # wandb agent runs logged in
    spec.settings = dataclasses.replace(spec.settings, workers=1, executor="local", wandb=wandb)
    run_id = spec.runs[0].run_id
    print(f"scalelab: trial {run_id} of sweep {spec.name!r} → {spec.store}", file=sys.stderr)
    outcome = run_sweep(spec, progress=not args.quiet, tracking=True,
                        wandb_ids={run_id: wandb_id} if wandb_id else None)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(outcome.counts.items()))
    print(f"trial {run_id}: {counts or 'already in the store'}; run store: {spec.store}")
    _print_first_failure(outcome, spec.store)
    return 0 if not outcome.counts.get("failed") else 1


def _expand_variables(text: str, what: str) -> str:
    """``$NAME``/``${NAME}`` in a path of the agent's command, from its environment."""
    import re

    for name in re.findall(r"\$\{?(\w+)\}?", text):
        if name not in os.environ:
            raise ScalelabError(f"{what} {text!r} names ${name}, which is not set here; set it "
                                f"for each agent (e.g. {name}=1 wandb agent SWEEP_ID) or give "
                                f"a path without it.")
    return os.path.expandvars(text)


def _cmd_runs_list(args) -> int:
    from scalelab.runs import STATUSES, StoreReader

    if args.status is not None and args.status not in STATUSES:
        raise ScalelabError(f"--status {args.status!r} is not a run status; valid statuses "
                            f"are {', '.join(STATUSES)}.")
    with StoreReader(args.store) as store:
        if args.sweep is not None and args.sweep not in dict(store.sweeps()):
            names = ", ".join(name for name, _ in store.sweeps()) or "none"
            raise ScalelabError(f"{args.store}: no sweep named {args.sweep!r}; the store's "
                                f"sweeps are {names}.")
        metric = args.metric or _store_metric(store, args.sweep)
        if args.metric is not None:
            _check_metric(args.metric, store.metrics(), f"{args.store}", "--metric")
        table = store.runs(args.sweep)
        latest = store.latest(metric)
    if args.status and not table.empty:
        table = table[table["status"] == args.status]
    if table.empty:
        print("no runs" + (f" with status {args.status}" if args.status else ""))
        return 0
    table = table.merge(latest, on="run_id", how="left")
    cols = [c for c in ("run_id", "family", "width", "depth", "samples", "loss_variant",
                        "params", "status", "attempts", "step", metric, "host") if c in table]
    table = _sorted(table[cols], args.sort)
    print(table.to_string(index=False, na_rep="-"))
    return 0


def _check_metric(metric: str, recorded, where: str, option: str) -> None:
    """One sentence when no run records ``metric`` (an empty store passes: nothing to name)."""
    recorded = [m for m in recorded if m not in ("run_id", "step")]
    if recorded and metric not in recorded:
        import difflib

        close = difflib.get_close_matches(metric, recorded, n=1)
        raise ScalelabError(f"{where}: {option} {metric!r} is recorded by no run"
                            + (f" (did you mean {close[0]!r}?)" if close else "")
                            + f"; the runs record {', '.join(recorded)}.")


def _check_y(y: str, runs, where: str) -> None:
    """``--y`` is a metric, not a scaling axis or a run's setting (``--y step`` would fit
    the step column against the sizes)."""
    from scalelab.runs.columns import CURVE_COLUMNS, RUN_COLUMNS, curve_name

    axes = {*RUN_COLUMNS, *CURVE_COLUMNS, *map(curve_name, CURVE_COLUMNS)} - {"train_loss"}
    if y in axes:
        numeric = runs.select_dtypes("number").columns if len(runs) else []
        metrics = [c for c in numeric if c not in axes]
        raise ScalelabError(f"{where}: --y {y!r} is a scaling axis or a run's setting, not a "
                            f"metric to predict; choose a metric the runs record"
                            + (f" ({', '.join(metrics)})." if metrics else ", e.g. val_loss."))


def _store_metric(store, sweep: str | None) -> str:
    """The metric the store's sweep names (``metric.name``), else val_loss."""
    specs = dict(store.sweeps())
    chosen = [specs[sweep]] if sweep in specs else list(specs.values())
    names = {((spec or {}).get("metric") or {}).get("name") for spec in chosen} - {None}
    return names.pop() if len(names) == 1 else "val_loss"


def _sorted(table, sort: str | None):
    if not sort:
        return table
    column, descending = sort.lstrip("-"), sort.startswith("-")
    if column not in table:
        raise ScalelabError(f"--sort {column!r} is not a column of the listing; choose one of "
                            f"{', '.join(table.columns)}.")
    return table.sort_values(column, ascending=not descending, na_position="last")


def _cmd_runs_show(args) -> int:
    import json

    from scalelab.runs import StoreReader

    with StoreReader(args.store) as store:
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
    from scalelab.runs import StoreReader

    with StoreReader(args.store) as store:
        print(f"exported: {store.export(args.output)}")
    return 0


def _cmd_sync(args) -> int:
    from scalelab.runs.tracking import sync_offline

    dirs = sync_offline(args.path, timeout=args.timeout)
    print(f"synced {len(dirs)} offline W&B runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
