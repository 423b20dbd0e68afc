"""Sweep throughput: runs per hour with one run at a time vs with the executor's packing.

The same sweep of small runs (``--runs`` seeds of a small EDSR-style network) is run
through ``scalelab.sweep.run_sweep`` into fresh stores, in this process, in
interleaved rounds (the best round of each counts, so other load on the machine
does not favour one of them):

- **one at a time**: the local executor with one worker slot, which gets every
  core as torch threads (what a plain loop over runs does);
- **one at a time, 1 thread**: the same with one torch thread (on a CPU this
  separates packing from torch's intra-op threading, which is poor for small
  convolutions and collapses when other processes load the cores);
- **packed**: the local executor's default slots — one per CPU core, or, with CUDA,
  every visible GPU × ``--runs-per-gpu`` (several small runs share one GPU).

It prints the wall time and runs per hour of each and their ratio. Both include
the executor's real costs (spawning workers, moving curves back to the driver,
writing the store); W&B tracking is off. Small runs underuse a GPU, which is what
packing recovers; on a CPU the ceiling is the number of cores, less what the
cores' shared memory bandwidth and any other load on the machine take.

    python benchmarks/bench_sweep.py                       # 8 runs of 150 steps
    python benchmarks/bench_sweep.py --runs 32 --runs-per-gpu 8 --steps 400   # a GPU
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from scalelab.sweep import parse_spec, run_sweep
from scalelab.sweep.executors import LocalExecutor


def sweep_spec(args, store: Path, workers: int | None, runs_per_gpu: int) -> dict:
    return {
        "name": "bench", "method": "grid",
        "parameters": {
            "width": {"value": args.width}, "depth": {"value": args.depth},
            "field_size": {"value": args.field_size}, "samples": {"value": 256},
            "val_samples": {"value": 64}, "batch_size": {"value": 32},
            "steps": {"value": args.steps}, "eval_every": {"value": args.steps},
            "seed": {"values": list(range(args.runs))},
        },
        "scalelab": {"store": str(store), "runs_per_gpu": runs_per_gpu,
                     **({"workers": workers} if workers else {})},
    }


def timed(args, root: Path, label: str, workers: int | None, runs_per_gpu: int,
          threads: int | None = None) -> float:
    spec = parse_spec(sweep_spec(args, root / label / "runs.db", workers, runs_per_gpu))
    executor = LocalExecutor(workers, runs_per_gpu=runs_per_gpu, threads=threads,
                             checkpoint_root=spec.store.parent / "checkpoints")
    t0 = time.perf_counter()
    outcome = run_sweep(spec, progress=False, tracking=False, executor=executor)
    seconds = time.perf_counter() - t0
    if outcome.counts.get("finished") != args.runs:
        import sqlite3

        with sqlite3.connect(spec.store) as db:
            errors = [e for (e,) in db.execute(
                "SELECT DISTINCT error FROM runs WHERE error IS NOT NULL LIMIT 3")]
        raise SystemExit(f"{label}: {outcome.counts} of {args.runs} runs; errors: "
                         + " | ".join(str(e)[-1500:] for e in errors))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--field-size", type=int, default=32)
    parser.add_argument("--runs-per-gpu", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2,
                        help="interleaved rounds; the best round of each counts")
    args = parser.parse_args()

    packed = LocalExecutor(runs_per_gpu=args.runs_per_gpu)
    where = (f"{len(set(packed.slots))} GPU(s) × {args.runs_per_gpu} runs"
             if packed.slots[0].startswith("cuda") else f"{packed.cores} CPU cores")
    print(f"sweep of {args.runs} runs (width {args.width}, depth {args.depth}, "
          f"{args.field_size}² fields, {args.steps} steps); packing: {packed.workers} slots "
          f"on {where}; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        best = {"one at a time": float("inf"), "one at a time, 1 thread": float("inf"),
                "packed": float("inf")}
        for round_ in range(args.repeats):
            for label, workers, rpg, threads in (
                    ("one at a time", 1, 1, None),
                    ("one at a time, 1 thread", 1, 1, 1),
                    ("packed", None, args.runs_per_gpu, None)):
                seconds = timed(args, root, f"{label}{round_}".replace(" ", "_"), workers,
                                rpg, threads)
                best[label] = min(best[label], seconds)
    for label, seconds in best.items():
        print(f"{label:>24}: {seconds:7.1f} s  {args.runs / seconds * 3600:8.0f} runs/hour")
    for label in ("one at a time", "one at a time, 1 thread"):
        print(f"{'ratio vs ' + label:>34}: {best[label] / best['packed']:.2f}×")


if __name__ == "__main__":
    main()
