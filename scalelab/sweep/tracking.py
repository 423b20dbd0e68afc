"""Weights & Biases tracking, offline unless an API key is set; ``sync`` pushes later.

Each run becomes one W&B run (project, group and tags from the sweep, the config,
the curve logged step by step, the final metrics and status as summary). The run
store is the source of truth: a run is tracked after the store holds it, and a
tracking failure is a warning, never a lost run.

With ``WANDB_API_KEY`` set but the server unreachable, ``wandb.init`` blocks for
its ``init_timeout`` and then raises. The tracker then warns once, switches to
offline mode for the rest of the sweep and logs the same run offline, so nothing
is lost; ``scalelab sync`` (``sync_offline``) pushes the offline folders later.
Offline runs are folders ``<dir>/wandb/offline-run-*``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

from scalelab._errors import ScalelabError


def resolve_mode(mode: str = "auto") -> str:
    if mode == "auto":
        env = os.environ.get("WANDB_MODE")
        if env in ("offline", "disabled", "online"):
            return env
        return "online" if os.environ.get("WANDB_API_KEY") else "offline"
    return mode


class WandbTracker:
    def __init__(self, project: str, group: str | None = None, mode: str = "auto",
                 dir: str | Path = ".", entity: str | None = None, tags=None,
                 init_timeout: float = 30):
        self.project, self.group, self.entity = project, group, entity
        self.tags = list(tags or [])
        self.mode = resolve_mode(mode)
        self.dir = Path(dir)
        self.init_timeout = init_timeout
        self.run_dirs: list[Path] = []
        self.fell_back = False

    def log_run(self, config: dict, run_id: str, status: str, rows: list[dict], info: dict):
        """Write one run to W&B; return its local folder (or None when disabled/failed)."""
        if self.mode == "disabled":
            return None
        try:
            return self._log(config, run_id, status, rows, info, self.mode)
        except Exception as err:  # noqa: BLE001 - the store already holds the run
            if self.mode == "online":
                warnings.warn(f"W&B server unreachable ({type(err).__name__}: "
                              f"{str(err).splitlines()[0] if str(err) else ''}); tracking "
                              f"this sweep offline in {self.dir / 'wandb'} — push it later "
                              f"with: scalelab sync {self.dir}", stacklevel=2)
                self.mode, self.fell_back = "offline", True
                _reset_wandb()  # the failed init still holds this run id in W&B's service
                return self.log_run(config, run_id, status, rows, info)
            warnings.warn(f"W&B tracking of run {run_id} failed ({err}); the run is safe in "
                          f"the run store.", stacklevel=2)
            return None

    def _log(self, config, run_id, status, rows, info, mode):
        import wandb

        self.dir.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=self.project, entity=self.entity, group=self.group, name=run_id,
            id=run_id, config={**config, "run_id": run_id}, tags=self.tags,
            dir=str(self.dir), mode=mode, resume="allow", reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True,
                                    init_timeout=self.init_timeout),
        )
        try:
            for row in rows:  # curves are numbers; lists (rank histograms) go to the summary
                run.log({k: v for k, v in row.items() if k != "step" and _is_number(v)},
                        step=int(row["step"]))
            run.summary.update({
                "status": status, "run_id": run_id, "params": info.get("params"),
                "flops_per_sample": info.get("flops_per_sample"),
                **({f"final_{k}": v for k, v in rows[-1].items()} if rows else {})})
            run_dir = Path(run.dir).parent
        finally:
            run.finish()
        self.run_dirs.append(run_dir)
        return run_dir


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _reset_wandb() -> None:
    try:
        import wandb

        wandb.teardown()
    except Exception:  # noqa: BLE001 - a fresh service starts at the next init anyway
        pass


def offline_run_dirs(path: str | Path) -> list[Path]:
    """The offline W&B run folders under ``path`` (a store's folder or a wandb folder)."""
    path = Path(path)
    if path.is_file():  # a run store: its W&B folder sits beside it
        path = path.parent
    root = path / "wandb" if (path / "wandb").is_dir() else path
    return sorted(d for d in root.glob("offline-run-*") if d.is_dir())


def sync_offline(path: str | Path, timeout: float = 300) -> list[Path]:
    """Push offline W&B runs under ``path`` to the server with ``wandb sync``.

    Raises one ScalelabError sentence when there is nothing to push, no key, or the
    server does not answer within ``timeout`` seconds; returns the pushed folders.
    """
    dirs = offline_run_dirs(path)
    if not dirs:
        raise ScalelabError(f"{path}: no offline W&B runs (offline-run-*) here; give the "
                            f"folder of a run store or its wandb folder.")
    if not os.environ.get("WANDB_API_KEY"):
        raise ScalelabError("scalelab sync needs WANDB_API_KEY to push runs to W&B; set it "
                            "(or run wandb login) and run sync again.")
    command = [sys.executable, "-m", "wandb", "sync",
               *map(str, dirs)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ScalelabError(f"W&B did not accept the {len(dirs)} offline runs within "
                            f"{timeout:.0f} s (server unreachable?); they are kept, run "
                            f"scalelab sync again later.") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ScalelabError(f"wandb sync failed ({last}); the offline runs are kept, run "
                            f"scalelab sync again later.")
    return dirs
