"""Run a sweep: register its runs in the store, execute those not done, record each.

The driver owns the store. A run that already finished (or diverged) in an earlier
start of the same sweep is skipped — its ``run_id`` is the hash of its config — so
a killed sweep resumes where it stopped. A failed run is recorded with its
traceback and the sweep goes on.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from scalelab.sweep.executors import make_executor
from scalelab.sweep.spec import SweepSpec
from scalelab.sweep.store import DONE, RunStore
from scalelab.sweep.tracking import WandbTracker


@dataclass
class SweepOutcome:
    name: str
    store: str
    total: int
    skipped: int
    counts: dict = field(default_factory=dict)
    wandb_dirs: list = field(default_factory=list)
    wandb_mode: str = "disabled"


def run_sweep(spec: SweepSpec, progress: bool = True, tracking: bool = True) -> SweepOutcome:
    """Execute every run of ``spec`` not already in its store; return what happened."""
    store = RunStore(spec.store)
    try:
        store.add_sweep(spec.name, spec.raw, spec.runs)
        todo = [cfg for cfg in spec.runs if store.status(cfg.run_id) not in DONE]
        wandb_cfg = spec.wandb
        tracker = WandbTracker(
            project=wandb_cfg.get("project", f"scalelab-{spec.name}"),
            group=wandb_cfg.get("group", spec.name), entity=wandb_cfg.get("entity"),
            tags=wandb_cfg.get("tags"), mode=wandb_cfg.get("mode", "auto") if tracking else "disabled",
            dir=wandb_cfg.get("dir", spec.store.parent),
        )
        outcome = SweepOutcome(spec.name, str(spec.store), len(spec.runs),
                               len(spec.runs) - len(todo), wandb_mode=tracker.mode)
        executor = make_executor(spec.executor, spec.workers)
        best = math.inf
        bar = tqdm(total=len(spec.runs), initial=outcome.skipped, unit="run",
                   desc=f"sweep {spec.name}", disable=not progress, file=sys.stderr)
        for cfg in todo:
            store.mark_running(cfg.run_id)
        for cfg, result in executor.map(todo):
            if result.status == "failed":
                store.record_failure(cfg.run_id, result.error or "unknown error")
            else:
                store.record_result(cfg.run_id, result.status, result.rows, result.info)
                tracker.log_run(cfg.to_dict(), cfg.run_id, result.status, result.rows,
                                result.info)
                if result.rows and result.status == "finished":
                    best = min(best, result.rows[-1].get("val_loss", math.inf))
            outcome.counts[result.status] = outcome.counts.get(result.status, 0) + 1
            bar.set_postfix({**outcome.counts, "best val_loss": f"{best:.4g}"}, refresh=False)
            bar.update(1)
        bar.close()
        outcome.wandb_dirs = [str(d) for d in tracker.run_dirs]
        return outcome
    finally:
        store.close()
