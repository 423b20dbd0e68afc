"""Executors: where the runs of a sweep execute.

Both executors take runs from a queue the driver owns, hand each to a worker, and
yield ``(config, RunResult)`` as runs finish. The result carries the whole curve of
the run, so results flow back to the driver process that owns the run store: a
cluster needs no shared file system, and an executor never touches the store.

- ``LocalExecutor``: one spawned worker process per *slot*, one run per slot at a
  time. Slots are the CPU cores (or ``workers``), or the visible CUDA devices ×
  ``runs_per_gpu`` (several small runs share one GPU). Each worker is pinned to
  its device (``CUDA_VISIBLE_DEVICES``) and gets ``cores // slots`` torch threads
  so workers do not fight over cores. A worker watches its parent and exits when
  the driver dies, so a killed sweep leaves no orphan training in the background.
- ``RayExecutor``: the same runs as Ray tasks on an existing Ray cluster
  (``address``) or on a local one started for the sweep, with a GPU fraction
  ``1 / runs_per_gpu`` per run for packing and ``max_retries`` for lost workers.

Workers pass ``checkpoint_dir=<store folder>/checkpoints/<run_id>`` to
``scalelab.train.train`` (when it accepts one) so an interrupted run resumes from
its last checkpoint instead of starting over, and a branch of data budgets gets its
trunk's folder (``trunk_dir``) to start from the trunk's checkpoint at its branch
step. The driver queues a branch only once its trunk has ended; on a cluster without a
shared file system a branch that runs on another node than its trunk does not find
that checkpoint and trains the trunk's part itself (the same curve, at full cost).
"""

from __future__ import annotations

import inspect
import multiprocessing as mp
import os
import threading
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from scalelab._errors import SpecError
from scalelab.config import RunConfig
from scalelab.result import RunResult


def checkpoint_dir_for(root: str | Path | None, run_id: str) -> str | None:
    return None if root is None else str(Path(root) / run_id)


def trunk_dir_for(root: str | Path | None, cfg: RunConfig) -> str | None:
    """A branch's trunk checkpoint folder (None for other runs)."""
    return checkpoint_dir_for(root, cfg.parent) if cfg.parent else None


def execute_run(config: dict, checkpoint_dir: str | None = None, threads: int | None = None,
                device: str | None = None, trunk_dir: str | None = None) -> RunResult:
    """Train one run in this process; never raises (a failure comes back as a RunResult).

    ``device`` replaces the config's ``device: auto`` with the worker's own device
    (``device`` does not enter the run id).
    """
    cfg = RunConfig(**config)
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)
        if device and cfg.device == "auto":
            cfg = RunConfig(**{**config, "device": device})
        from scalelab.train import train

        kwargs = {}
        if checkpoint_dir is not None and "checkpoint_dir" in inspect.signature(train).parameters:
            kwargs["checkpoint_dir"] = checkpoint_dir  # train creates it when it saves
        if trunk_dir is not None and "trunk_dir" in inspect.signature(train).parameters:
            kwargs["trunk_dir"] = trunk_dir
        return train(cfg, **kwargs)
    except Exception:  # noqa: BLE001 - a failing run must not end the sweep
        return RunResult(cfg.run_id, "failed", [], {}, traceback.format_exc())


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:  # the driver died: stop, its successor re-runs us
            os._exit(1)
        time.sleep(0.5)


def _init_worker(threads: int, cuda_index: int | None, parent_pid: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if cuda_index is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(cuda_index)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()


def visible_cuda_devices() -> list[int]:
    """Indices of the CUDA devices this process can see (none without torch/CUDA)."""
    try:
        import torch

        return list(range(torch.cuda.device_count()))
    except Exception:  # noqa: BLE001 - no torch/CUDA: CPU only
        return []


@dataclass
class _Slot:
    device: str  # "cpu" or "cuda:<index>" (the index as the driver sees it)
    pool: ProcessPoolExecutor | None = None


class LocalExecutor:
    """Worker processes on this machine, one run per slot at a time.

    ``devices``: ``"auto"`` (the visible CUDA devices, else CPU), ``"cpu"``, or a list
    of CUDA indices. ``workers`` caps the number of slots (CPU default: the cores;
    GPU default: devices × ``runs_per_gpu``).
    """

    name = "local"

    def __init__(self, workers: int | None = None, devices="auto", runs_per_gpu: int = 1,
                 checkpoint_root: str | Path | None = None, threads: int | None = None):
        self.cores = _cores()
        self.checkpoint_root = checkpoint_root
        gpus = visible_cuda_devices() if devices == "auto" else (
            [] if devices == "cpu" else list(devices))
        if gpus:
            slots = [f"cuda:{g}" for _ in range(runs_per_gpu) for g in gpus]
            self.slots = slots[:workers] if workers else slots
        else:
            self.slots = ["cpu"] * (workers or self.cores)
        self.workers = len(self.slots)
        self.threads = threads or max(1, self.cores // self.workers)

    def _pool(self, device: str) -> ProcessPoolExecutor:
        cuda_index = int(device.split(":")[1]) if device.startswith("cuda") else None
        return ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"),
                                   initializer=_init_worker,
                                   initargs=(self.threads, cuda_index, os.getpid()))

    def run(self, queue: deque, on_start: Callable[[RunConfig, str], None] | None = None
            ) -> Iterator[tuple[RunConfig, RunResult]]:
        """Run the configs of ``queue`` (which may grow while running); yield as each ends."""
        slots = [_Slot(device) for device in self.slots]
        pending: dict = {}  # future -> (cfg, slot)
        try:
            while queue or pending:
                for slot in slots:
                    if not queue:
                        break
                    if any(s is slot for _, s in pending.values()):
                        continue
                    cfg = queue.popleft()
                    if slot.pool is None:
                        slot.pool = self._pool(slot.device)
                    # inside the pinned worker, its one GPU is cuda:0
                    worker_device = "cuda:0" if slot.device.startswith("cuda") else "cpu"
                    if on_start is not None:
                        on_start(cfg, slot.device)
                    future = slot.pool.submit(
                        execute_run, cfg.to_dict(),
                        checkpoint_dir_for(self.checkpoint_root, cfg.run_id), self.threads,
                        worker_device, trunk_dir_for(self.checkpoint_root, cfg))
                    pending[future] = (cfg, slot)
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in done:
                    cfg, slot = pending.pop(future)
                    try:
                        outcome = future.result()
                    except BrokenProcessPool:  # the worker died (killed, out of memory)
                        slot.pool.shutdown(wait=False, cancel_futures=True)
                        slot.pool = None
                        outcome = RunResult(cfg.run_id, "failed", [], {},
                                          "the worker process died while running this run "
                                          "(killed or out of memory)\n" + traceback.format_exc())
                    except Exception:  # noqa: BLE001 - e.g. an unpicklable result
                        outcome = RunResult(cfg.run_id, "failed", [], {}, traceback.format_exc())
                    yield cfg, outcome
        finally:
            for slot in slots:
                if slot.pool is not None:
                    slot.pool.shutdown(wait=not pending, cancel_futures=True)


class RayExecutor:
    """Runs as Ray tasks on a Ray cluster: ``address`` (``"auto"``, ``"ray://host:10001"``)
    or, without one, the cluster this process is already connected to, or a local
    one started for the sweep (``workers`` CPUs) and stopped after it."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 runs_per_gpu: int = 1, max_retries: int = 3,
                 checkpoint_root: str | Path | None = None):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise SpecError("scalelab.executor is ray but Ray is not installed; install it "
                            "with: pip install 'scalelab[ray]'.") from None
        self.address, self.workers = address, workers
        self.runs_per_gpu, self.max_retries = runs_per_gpu, max_retries
        self.checkpoint_root = checkpoint_root

    def run(self, queue: deque, on_start: Callable[[RunConfig, str], None] | None = None
            ) -> Iterator[tuple[RunConfig, RunResult]]:
        import ray

        started_here = False
        if not ray.is_initialized():
            kwargs = {"address": self.address} if self.address else {
                "num_cpus": self.workers or _cores()}
            ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
            started_here = True
        try:
            resources = ray.cluster_resources()
            gpus = resources.get("GPU", 0)
            if gpus:
                num_gpus = 1.0 / self.runs_per_gpu
                capacity = int(gpus * self.runs_per_gpu)
                device = "cuda"
            else:
                num_gpus, device = 0, "cpu"
                capacity = int(resources.get("CPU", 1))
            if self.workers:
                capacity = min(capacity, self.workers)
            task = ray.remote(execute_run).options(
                num_cpus=1, num_gpus=num_gpus, max_retries=self.max_retries,
                retry_exceptions=False)
            pending: dict = {}  # object ref -> cfg
            while queue or pending:
                while queue and len(pending) < max(1, capacity):
                    cfg = queue.popleft()
                    if on_start is not None:
                        on_start(cfg, f"ray:{device}")
                    ref = task.remote(cfg.to_dict(),
                                      checkpoint_dir_for(self.checkpoint_root, cfg.run_id),
                                      1, device, trunk_dir_for(self.checkpoint_root, cfg))
                    pending[ref] = cfg
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    cfg = pending.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except Exception:  # noqa: BLE001 - worker lost beyond its retries
                        outcome = RunResult(cfg.run_id, "failed", [], {}, traceback.format_exc())
                    yield cfg, outcome
        finally:
            if started_here:
                ray.shutdown()


def make_executor(spec, checkpoint_root: str | Path | None = None):
    """The executor a spec names, configured from its ``scalelab`` section."""
    if spec.executor == "local":
        return LocalExecutor(spec.workers, spec.devices, spec.runs_per_gpu, checkpoint_root)
    if spec.executor == "ray":
        return RayExecutor(spec.address, spec.workers, spec.runs_per_gpu, spec.ray_max_retries,
                           checkpoint_root)
    raise SpecError(f"scalelab.executor {spec.executor!r} is unknown; valid choices are "
                    f"local, ray.")
