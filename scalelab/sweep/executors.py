"""Executors: where the runs of a sweep execute.

Both executors take runs from a queue the driver owns, hand each to a worker, and
yield ``(config, RunResult)`` as runs finish. While a run trains, its worker sends each
curve row back over the executor's channel as soon as it is computed — a
multiprocessing queue for the local executor, a Ray queue (an actor) for Ray — and
the executor hands it to the driver's ``on_event``; at the end the result carries
the whole curve. Results flow back to the driver process that owns the run store:
a cluster needs no shared file system, and an executor never touches the store.

Each worker also logs its run to W&B as it trains (:class:`scalelab.runs.tracking.
LiveRun`), with the settings the driver hands it (``tracking(run_id)``).

- ``LocalExecutor``: one spawned worker process per *slot*, one run per slot at a
  time. Slots are the CPU cores (or ``workers``), or the visible CUDA devices ×
  ``runs_per_gpu`` (several small runs share one GPU). Each worker trains on its
  slot's device, named explicitly (``cuda:<index>``; ``CUDA_VISIBLE_DEVICES`` is left as
  the driver has it, since re-pinning it in a worker left CUDA with no device on a
  virtualised H200 machine), and gets ``cores // slots`` torch threads
  so workers do not fight over cores. A worker watches its parent and exits when
  the driver dies, so a killed sweep leaves no orphan training in the background.
- ``RayExecutor``: the same runs as Ray tasks on an existing Ray cluster
  (``address``) or on a local one started for the sweep, each taking the spec's
  ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs (default ``1 / runs_per_gpu`` on a
  cluster with GPUs, for packing), with ``max_retries`` for lost workers. A cluster
  that is not there, a wrong address or a missing ``ray`` package is one sentence.

Runs that share a shape (:mod:`scalelab.sweep.stacking`; ``scalelab.stack: auto``) go to
one worker together and train as one stacked model, each still its own run.

Workers pass ``checkpoint_dir=<store folder>/checkpoints/<run_id>`` (an absolute
path) to ``scalelab.train.train`` so an interrupted run resumes from its last
checkpoint instead of starting over. A Ray worker on a node that does not see the
store's folder (no shared file system) trains without checkpoints; its result
travels to the driver all the same. A branch of data
budgets also gets its trunk's folder (``trunk_dir``) to start from the trunk's
checkpoint at its branch step. The driver queues a branch only once its trunk has
ended; on a cluster without a shared file system a branch that runs on another node
than its trunk does not find that checkpoint and trains the trunk's part itself (the
same curve, at full cost).
"""

from __future__ import annotations

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


_CHANNEL = None  # a local worker's queue to the driver, set when the worker starts


def execute_run(config: RunConfig | dict, checkpoint_dir: str | None = None, threads: int | None = None,
                device: str | None = None, tracking: dict | None = None,
                channel=None, trunk_dir: str | None = None) -> RunResult:
    """Train one run in this process; never raises (a failure comes back as a RunResult).

    ``config``: the run's RunConfig as the spec validated it (a dict of its fields is
    validated again by ``train``).

    ``device`` replaces the config's ``device: auto`` with the worker's own device
    (``device`` does not enter the run id); without one, ``auto`` is resolved here, so
    the config that W&B and the store see names the device the run used.
    ``channel``: where each curve row is sent as it comes (``put((kind, run_id,
    payload))``; default: the local worker's queue). ``tracking``: W&B settings
    (:meth:`scalelab.runs.tracking.WandbTracker.settings`), None for no W&B.
    """
    cfg = config if isinstance(config, RunConfig) else RunConfig(**config)
    channel = channel if channel is not None else _CHANNEL
    live = None

    def send(kind: str, payload) -> None:
        if channel is not None:
            try:
                channel.put((kind, cfg.run_id, payload))
            except Exception:  # noqa: BLE001 - the result still carries every row
                pass

    try:
        import torch

        if threads:
            torch.set_num_threads(max(1, int(threads)))
        if cfg.device == "auto":
            from scalelab.train import resolve_device

            cfg = cfg.on_device(device or str(resolve_device("auto")))
        if checkpoint_dir is not None and not Path(checkpoint_dir).parent.parent.is_dir():
            checkpoint_dir = None  # the store's folder is not on this node: no checkpoints
        from scalelab.runs.tracking import LiveRun
        from scalelab.train import train

        live = LiveRun.start(tracking, cfg.to_dict(), cfg.run_id, send)

        def on_row(row: dict) -> None:
            send("row", row)
            if live is not None:
                live.log(row)

        # train creates checkpoint_dir when it saves
        result = train(cfg, on_row=on_row, checkpoint_dir=checkpoint_dir, trunk_dir=trunk_dir)
        info = dict(result.info)
        if live is not None:
            live.finish(result.status, result.rows, info)
            info["wandb_dir"] = live.dir
        return RunResult(cfg.run_id, result.status, result.rows, info)
    except Exception:  # noqa: BLE001 - a failing run must not end the sweep
        error = traceback.format_exc()
        info = {"device": cfg.device}
        if live is not None:
            try:
                live.finish("failed", [], info, error)
                info["wandb_dir"] = live.dir
            except Exception:  # noqa: BLE001 - the store gets the failure all the same
                pass
        return RunResult(cfg.run_id, "failed", [], info, error)


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:  # the driver died: stop, its successor re-runs us
            os._exit(1)
        time.sleep(0.5)


def _init_worker(threads: int, cuda_index: int | None, parent_pid: int, channel=None) -> None:
    global _CHANNEL
    _CHANNEL = channel
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if cuda_index is not None:  # the worker's own default device is its slot's
        import torch

        torch.cuda.set_device(cuda_index)
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


Events = Callable[[RunConfig, str, object], None]  # on_event(cfg, kind, payload)
Tracking = Callable[[str], "dict | None"]  # tracking(run_id): W&B settings of a run
POLL_S = 0.2  # how often the driver looks for rows while runs train


def _drain(get, configs: dict, on_event: Events | None) -> None:
    """Hand every event waiting on a channel to ``on_event`` (``get()`` raises when empty)."""
    while True:
        try:
            kind, run_id, payload = get()
        except Exception:  # noqa: BLE001 - queue.Empty (multiprocessing or Ray): no more
            return
        cfg = configs.get(run_id)
        if cfg is not None and on_event is not None:
            on_event(cfg, kind, payload)


class LocalExecutor:
    """Worker processes on this machine, one run per slot at a time.

    ``devices``: ``"auto"`` (the visible CUDA devices, else CPU), ``"cpu"``, or a list
    of CUDA indices. ``workers`` caps the number of slots (CPU default: the cores;
    GPU default: devices × ``runs_per_gpu``).
    """

    name = "local"

    def __init__(self, workers: int | None = None, devices="auto", runs_per_gpu: int = 1,
                 checkpoint_root: str | Path | None = None, threads: int | None = None,
                 stack: str = "off", stack_max: int = 16, cuda_graphs: bool = False):
        self.cores = _cores()
        self.checkpoint_root = checkpoint_root
        self.stack, self.stack_max, self.cuda_graphs = stack, stack_max, cuda_graphs
        gpus = visible_cuda_devices() if devices == "auto" else (
            [] if devices == "cpu" else list(devices))
        if gpus:
            slots = [f"cuda:{g}" for _ in range(runs_per_gpu) for g in gpus]
            self.slots = slots[:workers] if workers else slots
        else:
            self.slots = ["cpu"] * (workers or self.cores)
        self.workers = len(self.slots)
        self.threads = threads or max(1, self.cores // self.workers)

    def _device_memory(self, device: str) -> float | None:
        if device.startswith("cuda"):
            import torch

            return torch.cuda.get_device_properties(int(device.split(":")[1])).total_memory
        from scalelab.sweep.guards import machine_memory

        return machine_memory()

    def _take(self, queue: deque, device: str, reasons: set) -> list:
        """The next run, with the queued runs it stacks with (``stack: auto``)."""
        cfg = queue.popleft()
        if self.stack == "off":
            return [cfg]
        from scalelab.sweep.stacking import stack_cap, take_group

        cap = stack_cap(cfg, self.stack_max, self._device_memory(device),
                        self.slots.count(device))
        return take_group(queue, cfg, cap, reasons, self.workers)

    def _submit(self, pool, group: list, device: str, tracking):
        if len(group) == 1:
            cfg = group[0]
            return pool.submit(execute_run, cfg,
                               checkpoint_dir_for(self.checkpoint_root, cfg.run_id),
                               self.threads, device, tracking(cfg.run_id) if tracking else None,
                               trunk_dir=trunk_dir_for(self.checkpoint_root, cfg))
        from scalelab.sweep.stacking import execute_group

        return pool.submit(execute_group, group,
                           [checkpoint_dir_for(self.checkpoint_root, c.run_id) for c in group],
                           self.threads, device,
                           [tracking(c.run_id) if tracking else None for c in group],
                           cuda_graphs=self.cuda_graphs)

    def _pool(self, device: str, channel) -> ProcessPoolExecutor:
        cuda_index = int(device.split(":")[1]) if device.startswith("cuda") else None
        return ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"),
                                   initializer=_init_worker,
                                   initargs=(self.threads, cuda_index, os.getpid(), channel))

    def run(self, queue: deque, on_start: Callable[[RunConfig, str], None] | None = None,
            on_event: Events | None = None, tracking: Tracking | None = None
            ) -> Iterator[tuple[RunConfig, RunResult]]:
        """Run the configs of ``queue`` (which may grow while running); yield as each ends.

        ``on_event(cfg, kind, payload)`` receives, while runs train, each curve row
        (``"row"``) and other news from the workers (``"wandb_offline"``).
        """
        slots = [_Slot(device) for device in self.slots]
        channel = mp.get_context("spawn").Queue()  # handed to each worker when it starts
        pending: dict = {}  # future -> (the runs it trains, slot)
        configs: dict = {}  # run_id -> cfg, of the runs handed out
        reasons: set = set()  # why runs were not stacked, logged once each
        try:
            while queue or pending:
                for slot in slots:
                    if not queue:
                        break
                    if any(s is slot for _, s in pending.values()):
                        continue
                    group = self._take(queue, slot.device, reasons)
                    if slot.pool is None:
                        slot.pool = self._pool(slot.device, channel)
                    for cfg in group:
                        if on_start is not None:
                            on_start(cfg, slot.device)
                        configs[cfg.run_id] = cfg
                    # the worker's device: "cpu" or "cuda:<index>"
                    future = self._submit(slot.pool, group, slot.device, tracking)
                    pending[future] = (group, slot)
                done, _ = wait(list(pending), timeout=POLL_S, return_when=FIRST_COMPLETED)
                _drain(lambda: channel.get(timeout=0.05 if done else 0), configs, on_event)
                for future in done:
                    group, slot = pending.pop(future)
                    try:
                        outcomes = future.result()
                    except BrokenProcessPool:  # the worker died (killed, out of memory)
                        slot.pool.shutdown(wait=False, cancel_futures=True)
                        slot.pool = None
                        error = ("the worker process died while running this run (killed or "
                                 "out of memory)\n" + traceback.format_exc())
                        outcomes = [RunResult(c.run_id, "failed", [], {}, error) for c in group]
                    except Exception:  # noqa: BLE001 - e.g. an unpicklable result
                        error = traceback.format_exc()
                        outcomes = [RunResult(c.run_id, "failed", [], {}, error) for c in group]
                    yield from _pairs(group, outcomes, self.stack)
        finally:
            for slot in slots:
                if slot.pool is not None:
                    slot.pool.shutdown(wait=not pending, cancel_futures=True)
            channel.close()
            channel.cancel_join_thread()


def _pairs(group: list, outcomes, stack: str) -> list:
    """(cfg, result) of each run of a group (one result for a run that trained alone); a
    run that could not be stacked says why in its info (``not_stacked``)."""
    outcomes = outcomes if isinstance(outcomes, list) else [outcomes]
    if stack != "off" and len(group) == 1:
        from scalelab.stacking import stack_reason

        reason = stack_reason(group[0])
        if reason is not None:
            outcomes[0].info["not_stacked"] = reason
    return list(zip(group, outcomes))


def connect_ray(address: str | None, num_cpus: int | None = None) -> bool:
    """Connect to the Ray cluster at ``address`` (or start a local one with ``num_cpus``);
    True when this call started it. A cluster that is not there or a wrong address is one
    SpecError sentence, not Ray's traceback."""
    import ray

    if ray.is_initialized():
        return False
    if address and address != "auto":
        _check_reachable(address)  # Ray itself would retry for minutes, logging as it goes
    kwargs = {"address": address} if address else {"num_cpus": num_cpus or _cores()}
    try:
        ray.init(include_dashboard=False, log_to_driver=False, **kwargs)
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as err:
        ray.shutdown()
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if address == "auto":
            raise SpecError(f"scalelab.address is 'auto' but no Ray cluster is running on this "
                            f"machine ({first[:160]}); start one with 'ray start --head', "
                            f"give its address, or remove address to start a local one."
                            ) from None
        raise SpecError(f"scalelab.address {address!r}: no Ray cluster answers there "
                        f"({first[:160]}); check the address ('ray status' on the head node "
                        f"prints it, e.g. ray://head:10001 or head:6379).") from None
    return True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """One sentence unless something listens at a Ray address (``host:port`` of a head's
    GCS, or ``ray://host:port`` of a Ray client server)."""
    import socket

    where = address.split("://", 1)[-1]
    host, sep, port = where.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SpecError(f"scalelab.address {address!r} is not a Ray address; give 'auto', "
                        f"'HOST:6379' (a head node) or 'ray://HOST:10001' (Ray client).")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise SpecError(f"scalelab.address {address!r}: no Ray cluster answers there "
                        f"({err.strerror or type(err).__name__}); check the address ('ray "
                        f"status' on the head node prints it) or start the cluster with "
                        f"'ray start --head'.") from None


class RayExecutor:
    """Runs as Ray tasks on a Ray cluster: ``address`` (``"auto"``, ``"ray://host:10001"``)
    or, without one, the cluster this process is already connected to, or a local
    one started for the sweep (``workers`` CPUs) and stopped after it."""

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 runs_per_gpu: int = 1, max_retries: int = 3,
                 checkpoint_root: str | Path | None = None, cpus_per_run: float = 1,
                 gpus_per_run: float | None = None, stack: str = "off", stack_max: int = 16,
                 cuda_graphs: bool = False):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise SpecError("scalelab.executor is ray but Ray is not installed; install it "
                            "with: pip install 'scalelab[ray]'.") from None
        self.address, self.workers = address, workers
        self.runs_per_gpu, self.max_retries = runs_per_gpu, max_retries
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run
        self.stack, self.stack_max, self.cuda_graphs = stack, stack_max, cuda_graphs
        self.checkpoint_root = None if checkpoint_root is None else \
            str(Path(checkpoint_root).absolute())  # not relative to a Ray worker's folder
        # a cluster named by address is reached now, before the sweep starts any work
        self._connected_here = connect_ray(address) if address else False

    def run(self, queue: deque, on_start: Callable[[RunConfig, str], None] | None = None,
            on_event: Events | None = None, tracking: Tracking | None = None
            ) -> Iterator[tuple[RunConfig, RunResult]]:
        import ray
        from ray.util.queue import Queue

        started_here = connect_ray(self.address, self.workers) or self._connected_here
        self._connected_here = False
        try:
            resources = ray.cluster_resources()
            gpus = resources.get("GPU", 0)
            num_gpus = self.gpus_per_run if self.gpus_per_run is not None else (
                1.0 / self.runs_per_gpu if gpus else 0)
            device = "cuda" if num_gpus else "cpu"
            capacity = int(resources.get("CPU", 1) // self.cpus_per_run)
            if num_gpus:
                capacity = min(capacity, int(gpus / num_gpus)) if gpus else 0
            if self.workers:
                capacity = min(capacity, self.workers)
            if num_gpus and not gpus:
                raise SpecError(f"scalelab.gpus_per_run is {num_gpus} but the Ray cluster has "
                                f"no GPUs; set gpus_per_run: 0 or add GPU nodes.")
            channel = Queue()  # an actor: workers on any node put rows, the driver takes them
            options = dict(num_cpus=self.cpus_per_run, num_gpus=num_gpus,
                           max_retries=self.max_retries, retry_exceptions=False)
            task = ray.remote(execute_run).options(**options)
            from scalelab.sweep.stacking import execute_group, stack_cap, take_group

            group_task = ray.remote(execute_group).options(**options)
            threads = max(1, int(self.cpus_per_run))
            pending: dict = {}  # object ref -> the runs it trains
            configs: dict = {}
            reasons: set = set()
            while queue or pending:
                while queue and len(pending) < max(1, capacity):
                    cfg = queue.popleft()
                    group = [cfg] if self.stack == "off" else take_group(
                        queue, cfg, stack_cap(cfg, self.stack_max, None), reasons,
                        max(1, capacity))
                    for member in group:
                        if on_start is not None:
                            on_start(member, f"ray:{device}")
                        configs[member.run_id] = member
                    if len(group) == 1:
                        ref = task.remote(cfg,
                                          checkpoint_dir_for(self.checkpoint_root, cfg.run_id),
                                          threads, device,
                                          tracking(cfg.run_id) if tracking else None, channel,
                                          trunk_dir_for(self.checkpoint_root, cfg))
                    else:
                        ref = group_task.remote(
                            group, [checkpoint_dir_for(self.checkpoint_root, c.run_id)
                                    for c in group], threads, device,
                            [tracking(c.run_id) if tracking else None for c in group], channel,
                            self.cuda_graphs)
                    pending[ref] = group
                done, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_S)
                _drain(lambda: channel.get_nowait(), configs, on_event)
                for ref in done:
                    group = pending.pop(ref)
                    try:
                        outcomes = ray.get(ref)
                    except Exception:  # noqa: BLE001 - worker lost beyond its retries
                        error = traceback.format_exc()
                        outcomes = [RunResult(c.run_id, "failed", [], {}, error) for c in group]
                    yield from _pairs(group, outcomes, self.stack)
        finally:
            if started_here:
                ray.shutdown()


def make_executor(spec, checkpoint_root: str | Path | None = None):
    """The executor a spec names, configured from its ``scalelab`` section; ``workers``
    is capped at the sweep's number of runs (``--workers 100000000`` on a one-run sweep
    starts one worker, not a hundred million slots)."""
    settings = spec.settings
    workers = None if settings.workers == "auto" else settings.workers
    if workers:
        workers = min(workers, max(1, len(spec.runs)))
    if settings.executor == "local":
        return LocalExecutor(workers, settings.devices, settings.runs_per_gpu, checkpoint_root,
                             stack=settings.stack, stack_max=settings.stack_max,
                             cuda_graphs=settings.cuda_graphs)
    if settings.executor == "ray":
        return RayExecutor(settings.address, workers, settings.runs_per_gpu,
                           settings.ray_max_retries, checkpoint_root, settings.cpus_per_run,
                           settings.gpus_per_run, stack=settings.stack,
                           stack_max=settings.stack_max, cuda_graphs=settings.cuda_graphs)
    raise SpecError(f"scalelab.executor {settings.executor!r} is unknown; valid choices are "
                    f"local, ray.")
