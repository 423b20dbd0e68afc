"""Executors: where the runs of a sweep execute.

``LocalExecutor`` runs them in a pool of spawned worker processes on this machine,
one run per worker at a time, concurrency capped by the CPU cores (torch threads
split so workers do not fight over cores). Results — the whole curve of a run —
flow back to the driver process that owns the run store, so an executor never
touches the store.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Iterable, Iterator

from scalelab.config import RunConfig


@dataclass
class Outcome:
    """The result of one run as the executor hands it back."""

    run_id: str
    status: str  # finished | diverged | failed
    rows: list
    info: dict
    error: str | None = None


def execute_run(config: dict, threads: int | None = None) -> Outcome:
    """Train one run in this process; never raises (a failure comes back as an Outcome)."""
    cfg = RunConfig(**config)
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)
        from scalelab.train import train

        result = train(cfg)
        return Outcome(cfg.run_id, result.status, result.rows, result.info)
    except Exception:  # noqa: BLE001 - a failing run must not end the sweep
        return Outcome(cfg.run_id, "failed", [], {}, traceback.format_exc())


def _init_worker(threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))


class LocalExecutor:
    """A pool of ``workers`` spawned processes (default: one per CPU core)."""

    def __init__(self, workers: int | None = None):
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.cores = cores or 1
        self.workers = workers or self.cores

    def map(self, configs: Iterable[RunConfig]) -> Iterator[tuple[RunConfig, Outcome]]:
        """Run every config; yield (config, outcome) as each finishes."""
        configs = list(configs)
        if not configs:
            return
        workers = min(self.workers, len(configs))
        threads = max(1, self.cores // workers)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(threads,)) as pool:
            pending = {pool.submit(execute_run, cfg.to_dict(), threads): cfg for cfg in configs}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    cfg = pending.pop(future)
                    try:
                        outcome = future.result()
                    except Exception:  # noqa: BLE001 - a worker died (e.g. out of memory)
                        outcome = Outcome(cfg.run_id, "failed", [], {}, traceback.format_exc())
                    yield cfg, outcome


def make_executor(name: str, workers: int | None = None):
    if name == "local":
        return LocalExecutor(workers)
    raise ValueError(f"unknown executor {name!r}")
