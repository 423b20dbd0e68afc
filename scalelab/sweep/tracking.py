"""Weights & Biases tracking, offline unless an API key is set.

Each run becomes one W&B run (project and group from the sweep, the config, the
curve logged step by step, the final metrics as summary). The run store is the
source of truth: tracking is written after the store, and a tracking failure is a
warning, never a lost run. Offline runs are folders under ``<dir>/wandb/`` that
``wandb sync`` can push later.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path


def resolve_mode(mode: str = "auto") -> str:
    if mode == "auto":
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"
    return mode


class WandbTracker:
    def __init__(self, project: str, group: str | None = None, mode: str = "auto",
                 dir: str | Path = ".", entity: str | None = None, tags=None):
        self.project, self.group, self.entity = project, group, entity
        self.tags = list(tags or [])
        self.mode = resolve_mode(mode)
        self.dir = Path(dir)
        self.run_dirs: list[Path] = []

    def log_run(self, config: dict, run_id: str, status: str, rows: list[dict], info: dict):
        """Write one run to W&B; return its local folder (or None when disabled/failed)."""
        if self.mode == "disabled":
            return None
        try:
            return self._log(config, run_id, status, rows, info)
        except Exception as err:  # noqa: BLE001 - the store already holds the run
            warnings.warn(f"W&B tracking of run {run_id} failed ({err}); the run is safe in "
                          f"the run store.", stacklevel=2)
            return None

    def _log(self, config, run_id, status, rows, info):
        import wandb

        self.dir.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=self.project, entity=self.entity, group=self.group, name=run_id,
            id=run_id, config={**config, "run_id": run_id}, tags=self.tags,
            dir=str(self.dir), mode=self.mode, resume="allow", reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True,
                                    init_timeout=30),
        )
        for row in rows:
            run.log({k: v for k, v in row.items() if k != "step"}, step=int(row["step"]))
        run.summary.update({"status": status, "params": info.get("params"),
                            "flops_per_sample": info.get("flops_per_sample"),
                            **({f"final_{k}": v for k, v in rows[-1].items()} if rows else {})})
        run_dir = Path(run.dir).parent
        run.finish()
        self.run_dirs.append(run_dir)
        return run_dir
