"""Sweep throughput: runs per hour one at a time, packed, and stacked by 4, 8 and 16.

The same sweep of small runs (``--runs`` seeds of the quickstart's network: EDSR of
``--width`` (3–16 in the quickstart), depth 2, ×4 downscaling of 32² precipitation
fields, 4096 samples, batch 32, a 4-member stochastic network, ``--loss`` mse or
crps_fair, an evaluation every tenth of the steps as in the quickstart) is run through
``scalelab.sweep.run_sweep`` into fresh stores, in this process, in interleaved rounds (the
best round of each counts, so other load on the machine hits them alike):

- **one at a time**: the local executor with one worker slot and ``--threads`` torch
  threads (default 1: torch's intra-op threads do not pay on convolutions this small and
  collapse when other processes load the cores; ``--every-core`` adds the mode with
  every core as threads, what a plain loop over runs does);
- **packed**: the local executor's default slots — one per CPU core, or every visible GPU
  × ``--runs-per-gpu`` — one run each at a time;
- **stacked by k** (``--stack 4 8 16``): one worker slot, as one at a time, which trains k
  runs at once as one stacked model (``scalelab.stack: auto``, ``stack_max: k``;
  :mod:`scalelab.train.stacked`);
- **stacked, default slots**: ``stack: auto`` with the executor's default slots (what a
  spec gets by default): the runs are shared out evenly, one stack per slot.

It prints the wall time and runs per hour of each, their ratio to one at a time, and the
share of peak: the runs' training FLOPs (what the store records; evaluation not counted)
per second over the device's measured float32 matrix-multiply rate (a 2048² ``torch.mm``
with every core, or on the GPU). Every mode includes the executor's real costs (spawning
workers, moving curves back to the driver, writing the store); W&B tracking is off.

    python benchmarks/bench_sweep.py                               # 16 runs of 100 steps
    python benchmarks/bench_sweep.py --device cuda --runs 32 --stack 4 8 16 32 --cuda-graphs
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import scalelab
from scalelab.sweep import parse_spec, run_sweep
from scalelab.sweep.executors import LocalExecutor


def sweep_spec(args, store: Path, workers: int | None, runs_per_gpu: int) -> dict:
    return {
        "name": "bench", "method": "grid",
        "parameters": {
            "family": {"value": "edsr"}, "width": {"value": args.width},
            "depth": {"value": args.depth}, "field": {"value": "precip"},
            "field_size": {"value": args.field_size}, "samples": {"value": 4096},
            "val_samples": {"value": 256}, "batch_size": {"value": 32},
            "ensemble_members": {"value": 4}, "loss_variant": {"value": args.loss},
            "lr": {"value": 3e-3}, "steps": {"value": args.steps},
            "eval_every": {"value": max(1, args.steps // 10)},
            "seed": {"values": list(range(args.runs))},
        },
        "scalelab": {"store": str(store), "runs_per_gpu": runs_per_gpu,
                     **({"workers": workers} if workers else {})},
    }


def timed(args, root: Path, label: str, workers: int | None, runs_per_gpu: int,
          threads: int | None = None, stack_max: int | None = None) -> tuple[float, float]:
    """Wall seconds of the sweep in this mode, and the training FLOPs its runs record."""
    spec = parse_spec(sweep_spec(args, root / label / "runs.db", workers, runs_per_gpu))
    executor = LocalExecutor(workers, devices=args.devices, runs_per_gpu=runs_per_gpu,
                             threads=threads, checkpoint_root=spec.store.parent / "checkpoints",
                             stack="off" if stack_max is None else "auto",
                             stack_max=stack_max or 1, cuda_graphs=args.cuda_graphs)
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
    from scalelab.runs import final_rows

    flops = float(final_rows(scalelab.load_runs(spec.store))["flops"].sum())
    return seconds, flops


def matmul_rate(device: str) -> float:
    """The device's measured float32 matrix-multiply rate, FLOP/s (best of 5)."""
    import torch

    n = 2048
    a = torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(6):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ a
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--field-size", type=int, default=32)
    parser.add_argument("--loss", default="mse", help="mse or crps_fair (the quickstart's)")
    parser.add_argument("--stack", type=int, nargs="*", default=[4, 8, 16],
                        help="stack sizes (those above --runs are left out)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--cuda-graphs", action="store_true",
                        help="capture the stacked step in a CUDA graph (cuda only)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of the one-slot modes (0: every core)")
    parser.add_argument("--every-core", action="store_true",
                        help="also one at a time with every core as torch threads")
    parser.add_argument("--runs-per-gpu", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2,
                        help="interleaved rounds; the best round of each counts")
    args = parser.parse_args()
    args.devices = "auto" if args.device == "cuda" else "cpu"
    stacks = [k for k in args.stack if k <= args.runs] or [args.runs]

    packed = LocalExecutor(devices=args.devices, runs_per_gpu=args.runs_per_gpu)
    where = (f"{len(set(packed.slots))} GPU(s) × {args.runs_per_gpu} runs"
             if packed.slots[0].startswith("cuda") else f"{packed.cores} CPU cores")
    device = "cuda" if packed.slots[0].startswith("cuda") else "cpu"
    peak = matmul_rate(device)
    print(f"sweep of {args.runs} runs (edsr width {args.width}, depth {args.depth}, "
          f"{args.field_size}² precip, {args.loss}, {args.steps} steps); packing: "
          f"{packed.workers} slots on {where}; measured fp32 matmul {peak / 1e9:.1f} GFLOP/s; "
          f"load average {os.getloadavg()[0]:.1f}")
    threads = args.threads or None  # None: every core
    modes = [("one at a time", 1, 1, threads, None),
             *([("one at a time, every core", 1, 1, None, None)] if args.every_core else []),
             ("packed", None, args.runs_per_gpu, None, None),
             *[(f"stacked by {k}", 1, 1, threads, k) for k in stacks],
             ("stacked, default slots", None, args.runs_per_gpu, None, max(stacks))]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        best = {label: (float("inf"), 0.0) for label, *_ in modes}
        for round_ in range(args.repeats):
            for label, workers, rpg, threads, stack_max in modes:
                seconds, flops = timed(args, root, f"{label}{round_}".replace(" ", "_")
                                       .replace(",", ""), workers, rpg, threads, stack_max)
                if seconds < best[label][0]:
                    best[label] = (seconds, flops)
            print(f"  round {round_ + 1}: load average {os.getloadavg()[0]:.1f}")
    base = best["one at a time"][0]
    print(f"{'':>26}  {'wall':>7}  {'runs/hour':>9}  {'vs one at a time':>16}  "
          f"{'share of peak':>13}")
    for label, (seconds, flops) in best.items():
        print(f"{label:>26}: {seconds:6.1f} s  {args.runs / seconds * 3600:9.0f}  "
              f"{base / seconds:15.2f}×  {100 * flops / seconds / peak:12.3f}%")


if __name__ == "__main__":
    main()
