"""Stacks in a sweep: the executors hand runs that share a shape to one worker together.

With ``scalelab.stack: auto`` (the default) an executor that takes a run from the queue
also takes the queued runs of the same :func:`scalelab.stacking.stack_key`, up to
:func:`stack_cap` of them, and a worker trains them as one stacked model
(:func:`execute_group`, :func:`scalelab.train.stacked.train_stacked`). Each keeps its
own run id, curve rows (sent to the driver as they come), W&B run, checkpoint folder and
result, so the store sees the runs it would see from solo runs; a killed group resumes
each member from its own checkpoint. A run that cannot be stacked
(:func:`scalelab.stacking.stack_reason`) runs alone, and the reason is logged once per
sweep (logger ``scalelab.sweep``) and kept in its info (``not_stacked``).

The cap: ``stack_max``, and no more members than half the device's memory (a GPU's,
or this machine's for a CPU, shared by the workers on it) holds at four times
:func:`scalelab.sweep.guards.memory_lower_bound`'s estimate of one run's weights,
gradients, optimiser state and activations (a lower bound, hence the margin).
"""

from __future__ import annotations

import logging
import traceback
from collections import deque
from pathlib import Path

from scalelab.config import RunConfig
from scalelab.result import RunResult
from scalelab.stacking import stack_key, stack_reason

log = logging.getLogger("scalelab.sweep")
MARGIN = 4  # the memory lower bound × this is what a member is taken to need


def stack_cap(cfg: RunConfig, stack_max: int, device_memory: float | None,
              sharing: int = 1) -> int:
    """How many runs like ``cfg`` one stack may hold: ``stack_max``, fewer where half of
    ``device_memory`` (bytes, shared by ``sharing`` workers) would not hold them."""
    if not device_memory:
        return stack_max
    from scalelab.sweep.guards import memory_lower_bound

    need = memory_lower_bound(cfg)["model"] * MARGIN
    return max(1, min(stack_max, int(device_memory / 2 / max(1, sharing) // max(need, 1))))


def take_group(queue: deque, first: RunConfig, cap: int, reasons: set | None = None,
               workers: int = 1) -> list[RunConfig]:
    """``first`` and the queued runs that stack with it (taken from ``queue``, in queue
    order), at most ``cap`` in all, and no more than an even share of them for each of
    ``workers`` (so every worker gets a stack). A run that cannot be stacked is a group of
    one; its reason is logged the first time (``reasons`` holds those already logged)."""
    reason = stack_reason(first)
    if reason is not None:
        if reasons is not None and reason not in reasons:
            reasons.add(reason)
            log.info("run %s trains alone: %s.", first.run_id, reason)
        return [first]
    key, group, rest = stack_key(first), [first], deque()
    alike = 1 + sum(1 for cfg in queue if stack_reason(cfg) is None and stack_key(cfg) == key)
    cap = min(cap, -(-alike // max(1, workers)))
    while queue:
        cfg = queue.popleft()
        if len(group) < cap and stack_reason(cfg) is None and stack_key(cfg) == key:
            group.append(cfg)
        else:
            rest.append(cfg)
    queue.extend(rest)
    return group


def execute_group(configs: list, checkpoint_dirs: list, threads: int | None = None,
                  device: str | None = None, trackings: list | None = None, channel=None,
                  cuda_graphs: bool = False) -> list[RunResult]:
    """Train runs that share a shape as one stack in this process; their results, in
    order. Never raises: a failure is every member's failed RunResult. The counterpart
    of :func:`scalelab.sweep.executors.execute_run` (same arguments, one per member)."""
    from scalelab.sweep import executors

    cfgs = [c if isinstance(c, RunConfig) else RunConfig(**c) for c in configs]
    trackings = trackings or [None] * len(cfgs)
    channel = channel if channel is not None else executors._CHANNEL
    lives: list = [None] * len(cfgs)

    def sender(run_id: str):
        def send(kind: str, payload) -> None:
            if channel is not None:
                try:
                    channel.put((kind, run_id, payload))
                except Exception:  # noqa: BLE001 - the result still carries every row
                    pass
        return send

    try:
        import torch

        if threads:
            torch.set_num_threads(max(1, int(threads)))
        if any(c.device == "auto" for c in cfgs):
            from scalelab.train import resolve_device

            resolved = device or str(resolve_device("auto"))
            cfgs = [c.on_device(resolved) if c.device == "auto" else c for c in cfgs]
        dirs = [d if d is not None and Path(d).parent.parent.is_dir() else None
                for d in checkpoint_dirs]
        from scalelab.runs.tracking import LiveRun
        from scalelab.train.stacked import train_stacked

        on_rows = []
        for i, cfg in enumerate(cfgs):
            send = sender(cfg.run_id)
            lives[i] = LiveRun.start(trackings[i], cfg.to_dict(), cfg.run_id, send)

            def on_row(row: dict, send=send, live=lives[i]) -> None:
                send("row", row)
                if live is not None:
                    live.log(row)
            on_rows.append(on_row)
        results = train_stacked(cfgs, on_rows, dirs, cuda_graphs=cuda_graphs)
        out = []
        for cfg, result, live in zip(cfgs, results, lives):
            info = {**result.info,
                    "stacked_with": ",".join(c.run_id for c in cfgs if c is not cfg)}
            if live is not None:
                live.finish(result.status, result.rows, info)
                info["wandb_dir"] = live.dir
            out.append(RunResult(cfg.run_id, result.status, result.rows, info))
        return out
    except Exception:  # noqa: BLE001 - a failing group must not end the sweep
        error = traceback.format_exc()
        out = []
        for cfg, live in zip(cfgs, lives):
            info = {"device": cfg.device}
            if live is not None:
                try:
                    live.finish("failed", [], info, error)
                    info["wandb_dir"] = live.dir
                except Exception:  # noqa: BLE001
                    pass
            out.append(RunResult(cfg.run_id, "failed", [], info, error))
        return out
