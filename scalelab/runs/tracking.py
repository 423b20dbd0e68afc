"""Runs in Weights & Biases: written as a sweep runs them, read back as the runs table.

Writing (:class:`WandbTracker`): each run becomes one W&B run — project, group (the
sweep) and tags from the spec, the config, the curve logged step by step, the status
and the run's facts (``params``, ``wall_time_s``, ...) as summary. It is offline
unless an API key is set. The run store is the source of truth: a run is tracked
after the store holds it, and a tracking failure is a warning, never a lost run.
With ``WANDB_API_KEY`` set but the server unreachable, ``wandb.init`` blocks for its
``init_timeout`` and then raises; the tracker then warns once, switches to offline
mode for the rest of the sweep and logs the same run offline, so nothing is lost.
``sync_offline`` (``scalelab sync``) pushes the offline folders later.

Reading: :func:`read_offline` reads a folder of run folders (``<dir>/wandb/*run-*``,
found by :func:`run_folders`) from each run's ``.wandb`` log with W&B's own reader,
no server needed; :func:`read_online` reads an online project through
``wandb.Api()``. Both give the per-run and per-step frames that
:func:`scalelab.runs.columns.assemble` turns into the runs table, so a table read
back from W&B has the same columns as one read from the store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Iterable

import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.config import RunConfig
from scalelab.runs.columns import RUN_FACTS, run_facts


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
            facts = {k: v for k, v in run_facts(info).items() if v is not None}
            run.summary.update({
                "status": status, "run_id": run_id, **facts,
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


def run_folders(path: str | Path, offline_only: bool = False) -> list[Path]:
    """The W&B run folders at ``path``: the folder itself when it is one, else the
    ``*run-*`` folders (``offline-run-*`` only, with ``offline_only``) of ``path/wandb``
    or of ``path``; a run store's path stands for the folder it sits in."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if any(path.glob("*.wandb")):
        return [path]
    root = path / "wandb" if (path / "wandb").is_dir() else path
    pattern = "offline-run-*" if offline_only else "*run-*"
    return sorted(d for d in root.glob(pattern) if d.is_dir())


def sync_offline(path: str | Path, timeout: float = 300) -> list[Path]:
    """Push offline W&B runs under ``path`` to the server with ``wandb sync``.

    Raises one ScalelabError sentence when there is nothing to push, no key, or the
    server does not answer within ``timeout`` seconds; returns the pushed folders.
    """
    dirs = run_folders(path, offline_only=True)
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


# -- reading runs back -----------------------------------------------------------------------
def _json_number(value):
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        return float(value.replace("Infinity", "inf"))
    return value


def read_wandb_log(run_dir: str | Path, timeout: float = 60) -> dict:
    """Read one W&B run folder's ``.wandb`` log without a server.

    Uses ``wandb leet inspect --json``, W&B's own reader of its transaction log, and
    returns ``{"config": {...}, "history": [rows], "summary": {...}, "group": ...}``.
    """
    try:
        done = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json",
                               str(run_dir)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ScalelabError(f"{run_dir}: reading the W&B log took over {timeout:.0f} s; check "
                            f"the folder is a W&B run folder.") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ScalelabError(f"{run_dir}: W&B could not read this run's log ({last}); give "
                            f"a folder of W&B offline runs.")
    config: dict = {}
    history: list[dict] = []
    summary: dict = {}
    group = name = None
    for line in done.stdout.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        kind = record.get("type")
        body = record.get(kind) or {}
        if kind == "run":
            config.update((body.get("config") or {}).get("update") or {})
            group, name = body.get("run_group"), body.get("display_name")
        elif kind == "config":
            config.update(body.get("update") or {})
        elif kind == "history":
            item = {k: _json_number(v) for k, v in (body.get("item") or {}).items()
                    if not k.startswith("_")}
            item["step"] = int((body.get("step") or {}).get("num", 0))
            history.append(item)
        elif kind == "summary":
            summary.update({k: _json_number(v) for k, v in (body.get("update") or {}).items()})
    config.pop("_wandb", None)
    return {"config": config, "history": history, "summary": summary, "group": group,
            "name": name}


def _frames(records: Iterable[tuple[dict, list[dict], dict, str | None]]):
    """Per-run and per-step frames from W&B runs ``(config, history, summary, group)``."""
    known = set(RunConfig.field_names())
    chosen: dict = {}  # run_id -> (record, history); a run logged twice keeps its longest log
    for config, history, summary, group in records:
        run_id = config.get("run_id") or summary.get("run_id")
        if run_id is None:
            continue
        if run_id in chosen and len(chosen[run_id][1]) >= len(history):
            continue
        fields = {k: v for k, v in config.items() if k in known}
        chosen[run_id] = ({"run_id": run_id, **RunConfig(**fields).to_dict(), "sweep": group,
                           "status": summary.get("status", "finished"), "attempts": None,
                           **{k: summary.get(k) for k in RUN_FACTS}, "error": None}, history)
    runs = pd.DataFrame.from_records([run for run, _ in chosen.values()])
    curves = pd.DataFrame.from_records([{"run_id": run_id, **row}
                                        for run_id, (_, history) in chosen.items()
                                        for row in history])
    return runs, curves


def read_offline(path: Path):
    """Per-run and per-step frames of the W&B run folders under ``path``."""
    dirs = [d for d in run_folders(path) if any(d.glob("*.wandb"))]
    if not dirs:
        raise ScalelabError(f"{path}: a folder with no W&B runs in it (no */*.wandb); give a "
                            f"run store, a CSV/Parquet table or a wandb folder.")
    records = []
    for run_dir in dirs:
        log = read_wandb_log(run_dir)
        records.append((log["config"], log["history"], log["summary"], log["group"]))
    return _frames(records)


def read_online(project: str, sweep: str | None = None, timeout: float = 60):
    """Per-run and per-step frames of an online W&B project (``entity/project``)."""
    if not os.environ.get("WANDB_API_KEY"):
        raise ScalelabError(f"wandb:{project}: reading an online W&B project needs "
                            f"WANDB_API_KEY; set it or give a local store or wandb folder.")
    import wandb

    api = wandb.Api(timeout=int(timeout))
    filters = {"group": sweep} if sweep else None
    records = []
    for run in api.runs(project, filters=filters):
        history = [{k: _json_number(v) for k, v in row.items() if not k.startswith("_")}
                   | {"step": int(row["_step"])} for row in run.scan_history()]
        records.append((dict(run.config), history, dict(run.summary), run.group))
    return _frames(records)
