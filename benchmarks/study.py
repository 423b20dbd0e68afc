"""The real-scale study: a scaling sweep wide enough to backtest ``predict`` at 10× and 30×.

No public scaling dataset of downscaling networks exists (the scaling papers of weather
and image reconstruction publish code, not losses), so this script makes one: EDSR (and
SwinIR) on precipitation-like fields and on the ERA5-like example (2 m temperature with
precipitation and orography as inputs), over two decades and more of parameters N, each
width trained as one constant-rate trunk with cooldown branches at 1/4, 1/2 and all of
it (data budgets D, Hägele et al. 2024). Then:

1. the runs table (one row per run × evaluation) is written as CSV, and as Parquet where
   pyarrow is installed, to ``benchmarks/results/study_<profile>.csv``;
2. ``predict`` is backtested on it, per sweep (field × family), at 10× and 30×: the
   largest model (at its longest budget) held out, the runs above N_max/10 (N_max/30)
   left out too, ``predict`` asked for the held-out model from the rest; its ARE next to
   persistence's (the largest run kept), and whether its 90% interval covered the truth
   (``bench_predict.backtest_largest``). The JSON goes to
   ``benchmarks/results/study_<profile>_backtest.json`` (and to ``$OUT`` where set).

Profiles (the sweeps are ``benchmarks/study/precip.yaml`` and ``era5_like.yaml``, changed
by each profile's ``key=value`` overrides, the grammar of ``scalelab run SPEC k=v``):

- ``--cpu``: EDSR (11 widths, 0.9k–0.11M parameters) on 32² precipitation and on 32²
  ERA5-like patches (2.5°), SwinIR (8 small widths, 2k–71k: too narrow a range for the
  30× backtest) on 32² precipitation; trunks of 1,000 steps of 32; 120 runs. 43 minutes
  on 2 cores shared with 8 other jobs (load average about 15): sized down from a 64²,
  1,600-step design (about 25 minutes on idle cores by its timings there), whose first
  runs went 7× slower on the shared cores.
- ``--gpu``: EDSR (12 widths, depth 4, 6.5k–10M) on 128² precipitation and 128²
  ERA5-like patches (1.25°), 4.5 PFLOP a sweep; SwinIR (8 widths, depth 4, 36k–4.1M) on
  64² of both; 4 runs share the GPU; within 8 minutes on one H100
  (``benchmarks/gpu_study.sh``; not yet run on one).
- ``--smoke``: a minute on a CPU, the same steps end to end (tests).

Each sweep runs in a child process under the time left (``--max-seconds``, less what the
backtests need); a killed study resumes from its store (``reports/study/<profile>/runs.db``:
finished runs are not rerun, a killed run resumes from its checkpoint). A line is printed
for every run that ends; on a GPU the first failed run stops the study (``--fail-fast``,
the default there): device time is scarce. The exit status is 0 only when every sweep
finished and every backtest was computed.

    python benchmarks/study.py --smoke
    nice -n 5 python benchmarks/study.py --cpu          # resumable: run it again to go on
    bash benchmarks/gpu_study.sh                         # the GPU study, see its header
    python benchmarks/study.py --cpu --backtest-only     # table and backtests from the store
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPECS = HERE / "study"
RESULTS = HERE / "results"
DISTANCES = (10.0, 30.0)
MIN_SIZES = 3  # model sizes a backtest keeps, at least (a law in N needs three)


@dataclass(frozen=True)
class Sweep:
    """One sweep of a profile: a spec of ``benchmarks/study/`` and its overrides."""

    name: str
    spec: str
    overrides: tuple[str, ...] = ()
    resolution: float | None = None  # ERA5-like data: grid spacing in degrees


@dataclass(frozen=True)
class Profile:
    name: str
    sweeps: tuple[Sweep, ...]
    max_seconds: float
    fail_fast: bool = False
    device: str = "cpu"
    common: tuple[str, ...] = field(default_factory=tuple)


def _era5(resolution: float) -> str:
    return f"data/study/era5_like_{resolution:g}/era5_like.nc"


_SMOKE = ("width=[2,3,4,6,8,16,32]", "field_size=32", "samples=256", "val_samples=32",
          "steps=40", "warmup_steps=5", "eval_every=10", "checkpoint_every=20")
_GPU_EDSR = ("width=[8,12,16,24,32,48,64,96,128,192,256,352]", "depth=4", "field_size=128",
             "samples=4096", "batch_size=32", "steps=800", "warmup_steps=40", "lr=1e-3",
             "eval_every=80", "checkpoint_every=400")
_GPU_SWINIR = ("family=swinir", "width=[16,24,32,48,64,96,128,192]", "depth=4",
               "field_size=64", "samples=4096", "batch_size=32", "steps=800",
               "warmup_steps=40", "lr=1e-3", "eval_every=80", "checkpoint_every=400")

PROFILES = {
    "smoke": Profile("smoke", (
        Sweep("precip-edsr", "precip.yaml", _SMOKE),
        Sweep("era5-like-edsr", "era5_like.yaml",
              _SMOKE + (f"options.path={_era5(2.5)}",), 2.5),
    ), max_seconds=600, common=("scalelab.devices=cpu",)),
    "cpu": Profile("cpu", (
        Sweep("precip-edsr", "precip.yaml"),
        Sweep("era5-like-edsr", "era5_like.yaml", (f"options.path={_era5(2.5)}",), 2.5),
        Sweep("precip-swinir", "precip.yaml",
              ("family=swinir", "width=[3,4,6,8,12,16,24,32]")),
    ), max_seconds=4 * 3600, common=("scalelab.devices=cpu",)),
    "gpu": Profile("gpu", (
        Sweep("precip-edsr", "precip.yaml", _GPU_EDSR),
        Sweep("era5-like-edsr", "era5_like.yaml",
              _GPU_EDSR + (f"options.path={_era5(1.25)}",), 1.25),
        Sweep("precip-swinir", "precip.yaml", _GPU_SWINIR),
        Sweep("era5-like-swinir", "era5_like.yaml",
              _GPU_SWINIR + (f"options.path={_era5(1.25)}",), 1.25),
    ), max_seconds=450, fail_fast=True, device="cuda",
        common=("scalelab.devices=[0]", "scalelab.runs_per_gpu=4")),
}


def log(message: str, t0: float | None = None) -> None:
    stamp = f"[{time.perf_counter() - t0:6.0f} s] " if t0 is not None else ""
    print(stamp + message, flush=True)


# ---- specs and data ---------------------------------------------------------------------
def store_of(profile: Profile, store: Path | None = None) -> Path:
    return store or ROOT / "reports" / "study" / profile.name / "runs.db"


def load(profile: Profile, sweep: Sweep, store: Path):
    """The validated spec of one sweep of a profile (one sentence and no work if bad)."""
    from scalelab.sweep import load_spec

    return load_spec(SPECS / sweep.spec, assignments=[
        f"name=study-{sweep.name}", f"scalelab.store={store}",
        *profile.common, *sweep.overrides])


def ensure_data(profile: Profile, t0: float) -> None:
    """Write the ERA5-like example each sweep reads, at its resolution, where missing.

    Only the netCDF file the sweeps read is written: netCDF-4 through h5netcdf where it is
    installed, else netCDF-3 through scipy (a bare GPU image has no h5netcdf or zarr).
    """
    for resolution in sorted({s.resolution for s in profile.sweeps if s.resolution}):
        path = ROOT / _era5(resolution)
        if path.exists():
            continue
        from scalelab.data.era5like import era5_like_dataset

        ds = era5_like_dataset(resolution=resolution)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        try:
            import h5netcdf  # noqa: F401

            ds.to_netcdf(partial, engine="h5netcdf")
        except ImportError:
            ds.to_netcdf(partial, engine="scipy")
        partial.replace(path)  # a killed write leaves no file that looks whole
        log(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size / 1e6:.0f} MB, "
            f"{resolution:g}°)", t0)


def preflight(profile: Profile, t0: float) -> None:
    """Fail in seconds, not minutes: the device is there, the specs are valid."""
    import torch

    if profile.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("study: the gpu profile needs a CUDA device and torch sees none "
                         f"(torch {torch.__version__}); run --cpu on a machine without one.")
    where = torch.cuda.get_device_name(0) if profile.device == "cuda" else \
        f"{os.cpu_count()} CPU cores, load average {os.getloadavg()[0]:.1f}"
    log(f"study {profile.name}: torch {torch.__version__}, {where}", t0)


# ---- one sweep, in its own process ------------------------------------------------------
class _Reporting:
    """An executor that prints a line for every run that ends (and, with ``fail_fast``,
    stops the sweep at the first failure)."""

    def __init__(self, inner, name: str, total: int, fail_fast: bool, t0: float):
        self.inner, self.name, self.total, self.fail_fast, self.t0 = (
            inner, name, total, fail_fast, t0)
        self.done = 0

    def __getattr__(self, attr):
        return getattr(self.inner, attr)

    def run(self, queue, on_start=None, on_event=None, settings=None):
        for cfg, result in self.inner.run(queue, on_start, on_event, settings):
            self.done += 1
            last = result.rows[-1] if result.rows else {}
            role = cfg.role if hasattr(cfg, "role") else ""
            loss = last.get("val_loss")
            log(f"{self.name} {self.done}/{self.total}: {cfg.family} w={cfg.width} "
                f"d={cfg.depth} {role} D={last.get('samples_seen', 0):,.0f} {result.status}"
                + (f" val_loss={loss:.5g}" if isinstance(loss, float) else "")
                + (f" — {str(result.error).strip().splitlines()[-1]}" if result.error else ""),
                self.t0)
            yield cfg, result
            if result.status == "failed" and self.fail_fast:
                log(f"{self.name}: a run failed and --fail-fast is on; stopping.", self.t0)
                sys.stdout.flush()
                os._exit(3)  # the workers are this process group's: the parent ends them


def run_one(profile: Profile, name: str, store: Path, fail_fast: bool) -> int:
    from scalelab.sweep import run_sweep
    from scalelab.sweep.executors import make_executor

    t0 = time.perf_counter()
    sweep = next(s for s in profile.sweeps if s.name == name)
    spec = load(profile, sweep, store)
    executor = _Reporting(make_executor(spec, checkpoint_root=store.parent.absolute() /
                                        "checkpoints"), name, len(spec.runs), fail_fast, t0)
    outcome = run_sweep(spec, progress=False, tracking=False, executor=executor)
    log(f"{name}: {outcome.counts} ({outcome.skipped} already done)", t0)
    return 0 if outcome.counts.get("failed", 0) == 0 else 1


def run_child(profile: Profile, sweep: Sweep, store: Path, seconds: float, fail_fast: bool,
              t0: float) -> str:
    """Run one sweep in a child process of its own process group; ``"finished"``,
    ``"failed"`` or ``"timeout"`` (the group is then ended, the store keeps what ended)."""
    command = [sys.executable, str(Path(__file__).resolve()), f"--{profile.name}",
               "--store", str(store), "--run-sweep", sweep.name,
               *(["--fail-fast"] if fail_fast else [])]
    env = {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"]
                                                    if os.environ.get("PYTHONPATH") else ""),
           "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    try:
        rc = child.wait(timeout=max(1.0, seconds))
    except subprocess.TimeoutExpired:
        log(f"{sweep.name}: out of time ({seconds:.0f} s); stopping it", t0)
        _end_group(child)
        return "timeout"
    except KeyboardInterrupt:
        _end_group(child)
        raise
    _end_group(child)  # workers a failed child left behind
    return "finished" if rc == 0 else "failed"


def _end_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGTERM)
        time.sleep(1.0)
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()


# ---- the table and the backtests ---------------------------------------------------------
def export(store: Path, results: Path, profile: Profile) -> tuple:
    """The finished runs of every sweep of the profile as one table, written as CSV (and
    Parquet with pyarrow); returns (table, paths)."""
    import pandas as pd

    import scalelab

    frames = []
    for sweep in profile.sweeps:
        try:
            part = scalelab.load_runs(store, sweep=f"study-{sweep.name}")
        except Exception as err:  # noqa: BLE001 - a sweep with no finished run yet
            log(f"{sweep.name}: no table ({err})")
            continue
        part.insert(0, "study_sweep", sweep.name)
        frames.append(part)
    if not frames:
        raise SystemExit(f"study: {store} holds no finished run of the {profile.name} study.")
    table = pd.concat(frames, ignore_index=True)
    table = table.loc[:, table.notna().any()]  # columns no run of the study records
    table = table.drop(columns=[c for c in ("versions", "host") if c in table])  # the machine's
    for column in table.columns[table.dtypes == object]:  # options, cooldowns: JSON, as
        table[column] = table[column].map(  # RunStore.export writes them to Parquet
            lambda v: json.dumps(v, default=str) if isinstance(v, (dict, list)) else v)
    results.mkdir(parents=True, exist_ok=True)
    csv = results / f"study_{profile.name}.csv"
    table.to_csv(csv, index=False, float_format="%.6g")
    paths = [csv]
    try:
        import pyarrow  # noqa: F401

        parquet = csv.with_suffix(".parquet")
        table.to_parquet(parquet, index=False)
        paths.append(parquet)
    except ImportError:
        pass
    return table, paths


def _backtest(job) -> dict:
    """One backtest (a process of its own where several run at once)."""
    import warnings

    from scalelab.laws import result_rows

    sys.path.insert(0, str(HERE))
    from bench_predict import backtest_largest

    warnings.simplefilter("ignore")  # fits' overflow warnings on far-off starts, as bench_predict
    part, row, n_bootstrap = job
    ratio = row["ratio"]
    final = result_rows(part)
    top = float(final["params"].max())
    kept = final.loc[final["params"] <= top / ratio * 1.0001, "params"].nunique()
    if kept < MIN_SIZES:
        return {**row, "skipped": f"{kept} size(s) at or below N_max/{ratio:g}; the sweep's "
                                  f"range is too narrow for this distance"}
    try:
        return {**row, **backtest_largest(part, ratio, n_bootstrap=n_bootstrap)}
    except Exception as err:  # noqa: BLE001 - recorded, the other backtests go on
        return {**row, "error": f"{type(err).__name__}: {err}"}


def backtests(table, n_bootstrap: int, distances=DISTANCES) -> list[dict]:
    """``bench_predict.backtest_largest`` per sweep and distance, in parallel processes
    where the machine has the cores (a GPU machine: seconds, not a minute)."""
    jobs = [(part, {"sweep": name, "family": str(part["family"].iloc[0]),
                    "field": str(part["field"].iloc[0]), "ratio": ratio}, n_bootstrap)
            for name, part in table.groupby("study_sweep", sort=False) for ratio in distances]
    workers = min(len(jobs), (os.cpu_count() or 1) // 2)
    if workers < 2:
        return [_backtest(job) for job in jobs]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
        return list(pool.map(_backtest, jobs))


def training_span(store: Path, profile: Profile) -> float | None:
    """Seconds from the first run's registration (its sweep's first start) to the last
    run's end, read from the store (so ``--backtest-only`` reports the training's wall
    time; a study resumed later counts the pause too)."""
    from scalelab.runs.store import connect_readonly

    names = [f"study-{s.name}" for s in profile.sweeps]
    marks = ",".join("?" * len(names))
    db = connect_readonly(store)
    try:
        (first,), = db.execute(
            f"SELECT min(r.created) FROM runs r JOIN sweep_runs s ON s.run_id = r.run_id "
            f"WHERE s.sweep IN ({marks})", names)
        (last,), = db.execute(
            f"SELECT max(r.updated) FROM runs r JOIN sweep_runs s ON s.run_id = r.run_id "
            f"WHERE s.sweep IN ({marks}) AND r.status IN ('finished', 'diverged')", names)
    finally:
        db.close()
    return None if first is None or last is None else round(last - first, 1)


def sizes(table) -> dict:
    from scalelab.laws import result_rows

    per = {}
    for name, part in table.groupby("study_sweep", sort=False):
        final = result_rows(part)
        per[name] = {"runs": int(len(final)), "widths": sorted(map(int, final["width"].unique())),
                     "params_min": int(final["params"].min()),
                     "params_max": int(final["params"].max()),
                     "samples_seen": sorted(map(int, final["samples_seen"].unique()))}
    return per


def print_backtests(rows: list[dict]) -> None:
    print(f"{'sweep':<18}{'at':>5}{'dist':>7}{'ARE':>8}{'persist':>9}{'covered':>9}  law",
          flush=True)
    for r in rows:
        if "error" in r or "skipped" in r:
            print(f"{r['sweep']:<18}{r['ratio']:>4.0f}×  {r.get('error') or 'skipped: ' + r['skipped']}")
            continue
        print(f"{r['sweep']:<18}{r['ratio']:>4.0f}×{r['distance']:>6.1f}×{r['are']:>8.2%}"
              f"{r['persistence_are']:>9.2%}{str(r['covered']):>9}  {r['law']}", flush=True)


# ---- main -------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    for name in PROFILES:
        which.add_argument(f"--{name}", dest="profile", action="store_const", const=name,
                           help=f"the {name} study")
    parser.add_argument("--max-seconds", type=float,
                        help="the whole study's budget (default: the profile's)")
    parser.add_argument("--store", type=Path, help="run store (reports/study/PROFILE/runs.db)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder of the table and the JSON (benchmarks/results)")
    parser.add_argument("--n-bootstrap", type=int, default=100)
    parser.add_argument("--only", nargs="*", help="run only these sweeps")
    parser.add_argument("--backtest-only", action="store_true",
                        help="no training: the table and backtests from the store")
    parser.add_argument("--fail-fast", action="store_true", default=None,
                        help="stop at the first failed run (default on the GPU)")
    parser.add_argument("--run-sweep", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    store = store_of(profile, args.store.absolute() if args.store else None)
    fail_fast = profile.fail_fast if args.fail_fast is None else args.fail_fast
    if args.run_sweep:
        return run_one(profile, args.run_sweep, store, fail_fast)

    t0, started = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S")
    budget = args.max_seconds or profile.max_seconds
    reserve = min(60.0, 0.15 * budget)  # the export and the backtests
    known = [s.name for s in profile.sweeps]
    unknown = sorted(set(args.only or []) - set(known))
    if unknown:
        parser.error(f"unknown sweep {unknown[0]!r}; the {profile.name} study's sweeps are "
                     f"{', '.join(known)}")
    sweeps = [s for s in profile.sweeps if not args.only or s.name in args.only]
    status = {}
    if not args.backtest_only:
        preflight(profile, t0)
        ensure_data(profile, t0)
        for sweep in sweeps:  # every spec checked before the first run starts
            spec = load(profile, sweep, store)
            widths = sorted({cfg.width for cfg in spec.runs})
            log(f"{sweep.name}: {len(spec.runs)} runs, {spec.runs[0].family} widths {widths}",
                t0)
        for i, sweep in enumerate(sweeps):
            left = budget - reserve - (time.perf_counter() - t0)
            if left < 5:
                status[sweep.name] = "not started (out of time)"
                log(f"{sweep.name}: not started, out of time", t0)
                continue
            share = left / (len(sweeps) - i)  # what a sweep leaves unused goes to the next
            log(f"{sweep.name}: starting ({share:.0f} s of the {left:.0f} s left)", t0)
            status[sweep.name] = run_child(profile, sweep, store, share, fail_fast, t0)
            log(f"{sweep.name}: {status[sweep.name]}", t0)
            if status[sweep.name] == "failed" and fail_fast:
                break
    train_seconds = time.perf_counter() - t0
    table, paths = export(store, args.results, profile)
    log(f"table: {len(table)} rows, {table['run_id'].nunique()} runs -> "
        + ", ".join(str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p) for p in paths),
        t0)
    final = table.sort_values("step").groupby("run_id").tail(1)
    report = {"profile": profile.name, "host": platform.node(), "started": started,
              "budget_s": budget, "this_call_s": round(train_seconds, 1),
              "train_wall_s": training_span(store, profile),
              "sweeps": status, "sizes": sizes(table), "runs": int(len(final)),
              "table": [str(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
                        for p in paths],
              "backtests": "pending"}
    try:
        import torch

        report["torch"] = torch.__version__
        if torch.cuda.is_available():
            report["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    out = args.results / f"study_{profile.name}_backtest.json"
    write_report(report, out, paths)  # what trained is on record before the backtests
    rows = backtests(table, args.n_bootstrap)
    print_backtests(rows)
    report.update(backtests=rows, wall_s=round(time.perf_counter() - t0, 1))
    write_report(report, out, paths)
    log(f"backtests -> {out}", t0)
    ok = all(v in ("finished",) for v in status.values()) and \
        all("error" not in r for r in rows)
    return 0 if ok else 1


def _plain(value):
    """``value`` with numpy numbers as Python's and NaN as null (strict JSON)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value


def write_report(report: dict, out: Path, paths: list) -> None:
    """The JSON (and, where ``$OUT`` is set, a copy of it and of the table there)."""
    out.write_text(json.dumps(_plain(report), indent=1) + "\n")
    if os.environ.get("OUT"):
        extra = Path(os.environ["OUT"])
        extra.mkdir(parents=True, exist_ok=True)
        for path in (out, *paths):
            (extra / path.name).write_bytes(path.read_bytes())


if __name__ == "__main__":
    sys.exit(main())
