"""One training run, read top to bottom.

build data → build model, loss, optimiser → step; every ``eval_every`` steps
evaluate and record a curve row → finish. No callbacks hide what happens at a step;
the sweep machinery (stores, executors, tracking) lives outside, in
``scalelab.sweep``, and receives the rows this returns (or streams through
``on_row``).

A curve row holds: ``step``, ``samples_seen``, ``flops`` (training FLOPs so far,
3 × forward FLOPs per sample × samples seen: forward + backward ≈ 3 × forward,
Kaplan et al. 2020 §2.1), ``lr``, ``train_loss`` (mean over the steps since the
last row) and the validation metrics (``val_loss`` in the run's loss, ``val_mse``,
``val_rmse``, ``val_psnr``).
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from scalelab.config import RunConfig
from scalelab.data import make_pairs
from scalelab.losses import get_loss
from scalelab.models import build_model, count_params, forward_flops


@dataclass
class RunResult:
    """What a run hands back: its status, its facts and its curve rows."""

    run_id: str
    status: str  # "finished" | "diverged"
    rows: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # params, flops_per_sample, device, versions, ...


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(step: int, cfg: RunConfig) -> float:
    """Learning rate at ``step`` (0-based) for the config's schedule."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "wsd":  # warmup-stable-decay: linear decay over the last 20 %
        decay_from = 0.8
        return cfg.lr if progress < decay_from else cfg.lr * (1 - progress) / (1 - decay_from)
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


@torch.no_grad()
def evaluate(model, loss_fn, lr_val, hr_val, batch_size: int = 256) -> dict:
    model.eval()
    loss_sum = se_sum = 0.0
    n = lr_val.shape[0]
    for i in range(0, n, batch_size):
        lr_b, hr_b = lr_val[i:i + batch_size], hr_val[i:i + batch_size]
        pred = model(lr_b)
        loss_sum += float(loss_fn(pred, hr_b, lr_b)) * lr_b.shape[0]
        se_sum += float(torch.mean((pred - hr_b) ** 2)) * lr_b.shape[0]
    model.train()
    mse = se_sum / n
    data_range = float(hr_val.max() - hr_val.min())
    return {
        "val_loss": loss_sum / n,
        "val_mse": mse,
        "val_rmse": math.sqrt(mse),
        "val_psnr": 10 * math.log10(data_range**2 / mse) if mse > 0 else float("inf"),
    }


def train(cfg: RunConfig, on_row: Callable[[dict], None] | None = None) -> RunResult:
    """Train one network as ``cfg`` says and return its curve."""
    t0 = time.perf_counter()
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)

    # data: D training pairs and a validation set that does not depend on D
    (lr_train, hr_train), (lr_val, hr_val) = make_pairs(
        cfg.field, cfg.samples, cfg.val_samples, cfg.field_size, cfg.scale,
        cfg.degradation, data_seed=0, device=device, options=cfg.options,
    )

    # model, loss, optimiser
    model = build_model(cfg.family, cfg.width, cfg.depth, cfg.scale).to(device)
    params = count_params(model)
    flops_per_sample = forward_flops(model, tuple(lr_train.shape[1:]))
    loss_fn = get_loss(cfg.loss_variant)
    opt_cls = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
    optimizer = opt_cls[cfg.optimizer](model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
    rows: list[dict] = []
    status, diverged_step = "finished", None
    running, since_last = 0.0, 0

    def record(step: int, train_loss: float) -> None:
        samples_seen = step * cfg.batch_size
        row = {
            "step": step,
            "samples_seen": samples_seen,
            "flops": 3.0 * flops_per_sample * samples_seen,
            "lr": lr_at(max(step - 1, 0), cfg),
            "train_loss": train_loss,
            **evaluate(model, loss_fn, lr_val, hr_val),
        }
        rows.append(row)
        if on_row is not None:
            on_row(row)

    record(0, float("nan"))
    for step in range(cfg.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        idx = torch.randint(0, cfg.samples, (cfg.batch_size,), generator=gen).to(device)
        pred = model(lr_train[idx])
        loss = loss_fn(pred, hr_train[idx], lr_train[idx])
        if not torch.isfinite(loss):
            status, diverged_step = "diverged", step + 1
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running += loss.item()
        since_last += 1
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            record(step + 1, running / since_last)
            running, since_last = 0.0, 0

    info = {
        "params": params,
        "flops_per_sample": flops_per_sample,
        "device": str(device),
        "host": platform.node(),
        "wall_time_s": time.perf_counter() - t0,
        "diverged_step": diverged_step,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
    return RunResult(run_id=cfg.run_id, status=status, rows=rows, info=info)
