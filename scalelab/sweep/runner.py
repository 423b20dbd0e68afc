"""Run a sweep: register its runs in the store, execute those not done, record each.

The driver owns the store (and its writer lock). On every start it skips what is
done — runs are keyed by the hash of their config, so a run that finished or
diverged in an earlier start is never run again — and queues the rest: pending
runs, runs left ``running`` by a killed driver (they resume from their
checkpoints), and failed runs that have attempts left. A run is marked running
(one more attempt) at the moment a worker takes it. A failing run is recorded with
its traceback and re-queued until ``max_attempts``; a diverged run is recorded and
not retried; the sweep goes on either way.

While a run trains, its curve rows reach the driver over the executor's channel and
are written to the store as they come (the driver stays the store's only writer), so
``scalelab runs list`` shows a running run's latest step and metric. The worker logs
the same run to W&B as it trains, with the settings of the driver's
:class:`~scalelab.runs.tracking.WandbTracker`.

Branches of data budgets (:mod:`scalelab.sweep.branches`) wait for their trunk: a
branch whose trunk is still to run is queued when the trunk's result is recorded
(finished or diverged, or failed for good), so it starts from the trunk's checkpoint
at its branch step; one whose trunk is done, or will not run in this start, is
queued at once (without the trunk's checkpoint it trains the trunk's part itself).
"""

from __future__ import annotations

import math
import sqlite3
import sys
from collections import deque
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from scalelab._errors import ScalelabError
from scalelab.runs.store import store_error
from scalelab.runs.tracking import WandbTracker
from scalelab.sweep.executors import make_executor
from scalelab.sweep.guards import check_launch
from scalelab.sweep.spec import SweepSpec
from scalelab.sweep.store import DONE, RunStore


@dataclass
class SweepOutcome:
    name: str
    store: str
    total: int
    skipped: int
    counts: dict = field(default_factory=dict)  # final status -> runs, this start
    retries: int = 0
    wandb_dirs: list = field(default_factory=list)
    wandb_mode: str = "disabled"
    first_failure: tuple | None = None  # (run_id, the error's last line) of the first failed attempt


def failure_reason(error: str) -> str:
    """The last line of a traceback: the exception and its message."""
    lines = [line for line in (error or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "unknown error"


def runs_to_do(store: RunStore, spec: SweepSpec, retry_failed: bool = False) -> list:
    """The runs of ``spec`` this start must execute, in spec order."""
    todo = []
    for cfg in spec.runs:
        status = store.status(cfg.run_id)
        if status in DONE:
            continue
        if status == "failed" and store.attempts(cfg.run_id) >= spec.settings.max_attempts \
                and not retry_failed:
            continue
        todo.append(cfg)
    return todo


def _hold_branches(todo: list) -> tuple[deque, dict]:
    """The queue to start with, and the branches held until their trunk (by trunk id)."""
    to_run = {cfg.run_id for cfg in todo}
    queue, waiting = deque(), {}
    for cfg in todo:
        if cfg.role == "branch" and cfg.parent in to_run:
            waiting.setdefault(cfg.parent, []).append(cfg)
        else:
            queue.append(cfg)
    return queue, waiting


def run_sweep(spec: SweepSpec, progress: bool = True, tracking: bool = True,
              retry_failed: bool = False, executor=None, wandb_ids: dict | None = None
              ) -> SweepOutcome:
    """Execute every run of ``spec`` not already done in its store; return what happened.

    ``executor``: an executor object to use instead of the one the spec names.
    ``wandb_ids``: the W&B run id of a run, where W&B chose it (``wandb agent``).
    """
    check_launch(spec)  # the store can be written, the devices exist: before any file
    if executor is None:  # before the store opens: a cluster that is not there stops here
        executor = make_executor(
            spec, checkpoint_root=spec.store.parent.absolute() / "checkpoints")
    store = RunStore(spec.store)
    try:
        try:
            store.add_sweep(spec.name, spec.raw, spec.runs)
        except ScalelabError as err:  # a full disk before anything was recorded
            if store.created and isinstance(err.__context__, sqlite3.Error):
                store.remove()  # a store this start made and could not fill is not left
                raise store_error(spec.store, err.__context__, "created") from None
            raise
        todo = runs_to_do(store, spec, retry_failed)
        wandb_cfg = spec.settings.wandb
        tracker = WandbTracker(
            project=wandb_cfg.get("project", f"scalelab-{spec.name}"),
            group=wandb_cfg.get("group", spec.name), entity=wandb_cfg.get("entity"),
            tags=wandb_cfg.get("tags"),
            mode=wandb_cfg.get("mode", "auto") if tracking else "disabled",
            dir=wandb_cfg.get("dir", spec.store.parent),
            init_timeout=wandb_cfg.get("init_timeout", 30), run_ids=wandb_ids,
        )
        outcome = SweepOutcome(spec.name, str(spec.store), len(spec.runs),
                               len(spec.runs) - len(todo), wandb_mode=tracker.mode)
        metric, sign = spec.metric.name, spec.metric.sign
        best = math.inf  # sign × the best value of the spec's metric so far
        running = 0
        bar = tqdm(total=len(spec.runs), initial=outcome.skipped, unit="run",
                   desc=f"sweep {spec.name}", disable=not progress, file=sys.stderr,
                   dynamic_ncols=True)

        def show() -> None:
            bar.set_postfix({"finished": outcome.counts.get("finished", 0), "running": running,
                             "failed": outcome.counts.get("failed", 0),
                             **({"diverged": outcome.counts["diverged"]}
                                if outcome.counts.get("diverged") else {}),
                             f"best {metric}": f"{sign * best:.4g}"}, refresh=True)

        def on_start(cfg, device: str) -> None:
            nonlocal running
            store.mark_running(cfg.run_id, device=device)
            running += 1
            show()

        def on_event(cfg, kind: str, payload) -> None:
            if kind == "row":  # a running run's curve, row by row
                store.add_rows(cfg.run_id, [payload])
            elif kind == "wandb_offline":
                tracker.fall_back(payload)

        queue, waiting = _hold_branches(todo)
        for cfg, result in executor.run(queue, on_start, on_event, tracker.settings):
            running -= 1
            tracker.tracked(result.info.get("wandb_dir"))
            if result.status == "failed":
                store.record_failure(cfg.run_id, result.error or "unknown error", result.host)
                if outcome.first_failure is None:
                    outcome.first_failure = (cfg.run_id, failure_reason(result.error))
                if store.attempts(cfg.run_id) < spec.settings.max_attempts:
                    outcome.retries += 1
                    queue.append(cfg)  # retried after the runs already queued
                    show()
                    continue
                queue.extend(waiting.pop(cfg.run_id, []))  # they train the trunk part themselves
            else:
                store.record_result(cfg.run_id, result.status, result.rows, result.info)
                queue.extend(waiting.pop(cfg.run_id, []))  # the trunk's checkpoints are there
                value = result.rows[-1].get(metric) if result.rows else None
                if result.status == "finished" and isinstance(value, (int, float)) \
                        and math.isfinite(value):
                    best = min(best, sign * value)
            outcome.counts[result.status] = outcome.counts.get(result.status, 0) + 1
            bar.update(1)
            show()
        bar.close()
        outcome.wandb_dirs = [str(d) for d in tracker.run_dirs]
        outcome.wandb_mode = tracker.mode
        return outcome
    finally:
        store.close()
