"""Data budgets from one trunk: branch final loss vs independent runs, and compute saved.

Hägele et al. 2024 ("Scaling Laws and Compute-Optimal Training Beyond Fixed Training
Durations", §3–4) show that a constant-rate trunk with a short linear cooldown matches
runs trained for that length from the start, so one trunk serves many budgets;
Subramanian et al. 2026 scale weather emulators this way. This script measures it on
the CPU for a small EDSR-style network (×4 downscaling of precipitation-like fields):

- per seed, one trunk with cooldown points at 1/4, 1/2, 3/4 and all of ``--steps`` S
  and a branch at each (decay ``--cooldown-fraction`` f of its branch point, total
  s(1 + f) steps), started from the trunk's checkpoint;
- per seed and budget, independent runs of the same length from scratch: WSD with the
  usual decay over the last 20% of the run (``wsd``), cosine to zero (``cosine``), and
  WSD with exactly the branch's schedule (``same schedule``: the branch mechanism's own
  error, zero if a branch is the run it stands for);
- the final validation loss of each, over ``--seeds`` seeds: the mean branch − run
  difference (paired by seed) against the seed-to-seed standard deviation of the runs;
- the FLOPs spent (trunks + decays) against the independent WSD runs of the same four
  budgets, from the curve rows, next to the plan's closed form: S + f·Σs vs (1 + f)·Σs.

    python benchmarks/bench_branches.py                      # 5 seeds, S = 400
    python benchmarks/bench_branches.py --seeds 2 --steps 40 # a smoke run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from scalelab.config import RunConfig
from scalelab.sweep.branches import branch_of, budget_compute, expand_budgets
from scalelab.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=400, help="the trunk's length S")
    parser.add_argument("--cooldown-fraction", type=float, default=0.2)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--samples", type=int, default=256, help="distinct samples U")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    fractions = [0.25, 0.5, 0.75, 1.0]
    base = RunConfig(family="edsr", width=args.width, depth=2, scale=4, field="precip",
                     field_size=16, samples=args.samples, val_samples=128, batch_size=16,
                     lr=3e-3, schedule="wsd", steps=args.steps, eval_every=args.steps,
                     cooldowns=fractions, cooldown_fraction=args.cooldown_fraction,
                     device="cpu")
    trunk_cfg = expand_budgets([base])[0]
    budgets = trunk_cfg.cooldown_steps()
    final = {kind: np.zeros((args.seeds, len(budgets)))
             for kind in ("branch", "same schedule", "wsd", "cosine")}
    flops = {"branched": 0.0, "independent": 0.0}
    seconds = {"branched": 0.0, "independent": 0.0}
    for seed in range(args.seeds):
        trunk = replace(trunk_cfg, seed=seed)
        with tempfile.TemporaryDirectory() as folder:
            t0 = time.perf_counter()
            trunk_run = train(trunk, checkpoint_dir=Path(folder) / "trunk")
            flops["branched"] += trunk_run.rows[-1]["flops"]
            for j, step in enumerate(budgets):
                branch = branch_of(trunk, step, args.cooldown_fraction)
                run = train(branch, trunk_dir=Path(folder) / "trunk")
                assert run.info["branched_from_step"] == step
                final["branch"][seed, j] = run.rows[-1]["val_loss"]
                trunk_part = 3.0 * run.info["flops_per_sample"] * step * branch.batch_size
                flops["branched"] += run.rows[-1]["flops"] - trunk_part  # the decay only
            seconds["branched"] += time.perf_counter() - t0
        for j, step in enumerate(budgets):
            length = branch_of(trunk, step, args.cooldown_fraction).steps
            plain = RunConfig(**{**trunk.to_dict(), "cooldowns": [], "cooldown_fraction": 0.2,
                                 "steps": length, "eval_every": length})
            t0 = time.perf_counter()
            wsd = train(plain)  # decay over the last 20% of the run
            seconds["independent"] += time.perf_counter() - t0
            flops["independent"] += wsd.rows[-1]["flops"]
            final["wsd"][seed, j] = wsd.rows[-1]["val_loss"]
            final["cosine"][seed, j] = train(replace(plain, schedule="cosine")).rows[-1]["val_loss"]
            same = replace(branch_of(trunk, step, args.cooldown_fraction), parent="")
            final["same schedule"][seed, j] = train(same).rows[-1]["val_loss"]

    print(f"EDSR width {args.width}, U = {args.samples} distinct samples, batch 16, trunk of "
          f"S = {args.steps} steps, cooldown fraction f = {args.cooldown_fraction}, "
          f"{args.seeds} seeds, CPU ({args.threads} thread)")
    print(f"{'budget (steps)':>15} {'branch':>16} {'run':>14} {'run mean':>10} {'seed sd':>9} "
          f"{'branch - run':>13} {'|diff|/sd':>9}  inside spread")
    for kind in ("same schedule", "wsd", "cosine"):
        for j, step in enumerate(budgets):
            length = branch_of(trunk_cfg, step, args.cooldown_fraction).steps
            diff = final["branch"][:, j] - final[kind][:, j]
            sd = final[kind][:, j].std(ddof=1) if args.seeds > 1 else float("nan")
            ratio = abs(diff.mean()) / sd if sd > 0 else float("nan")
            inside = "yes" if (sd > 0 and abs(diff.mean()) <= sd) or not diff.any() else "no"
            print(f"{length:>15} {final['branch'][:, j].mean():>16.5f} {kind:>14} "
                  f"{final[kind][:, j].mean():>10.5f} {sd:>9.5f} {diff.mean():>+13.2e} "
                  f"{ratio:>9.2f}  {inside}")
    plan = budget_compute(_plan_rows(trunk_cfg, args.cooldown_fraction))
    saved = 1 - flops["branched"] / flops["independent"]
    print(f"compute, four budgets, measured from the curve rows: branched "
          f"{flops['branched']:.3g} FLOPs vs independent WSD runs {flops['independent']:.3g} "
          f"(saved {saved:.1%}); plan's closed form S + f·Σs vs (1 + f)·Σs: saved "
          f"{plan['saved_fraction']:.1%}")
    print(f"wall time: branched {seconds['branched']:.1f} s vs independent WSD "
          f"{seconds['independent']:.1f} s ({seconds['independent'] / seconds['branched']:.2f}x)")


def _plan_rows(trunk: RunConfig, fraction: float):
    import pandas as pd

    rows = [{"role": "trunk", "flops": trunk.steps, "flops_spent": trunk.steps}]
    for step in trunk.cooldown_steps():
        branch = branch_of(trunk, step, fraction)
        rows.append({"role": "branch", "flops": branch.steps,
                     "flops_spent": branch.steps - step})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
