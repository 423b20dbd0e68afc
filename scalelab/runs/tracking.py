"""Runs in Weights & Biases: written while a run trains, read back as the runs table.

Writing: each run is one W&B run, logged by the worker that trains it
(:class:`LiveRun`) — project, group (the sweep) and tags from the spec, the config
with the device the run actually uses (not ``auto``), every evaluation row as it is
computed (so W&B's ``_runtime`` and step timestamps are the run's own), W&B's system
metrics (CPU, memory, GPU, sampled by W&B's service every 15 s), and at the end its
status in the summary: ``finished``, ``diverged`` with ``diverged_step``, or
``failed`` with the error (the W&B run then exits with code 1). A run resumed after a
kill is the same W&B run (its id is the run's, ``resume="allow"``), and the training
loop sends its curve so far again first, so the W&B run that the resumed process logs
holds the whole history (offline: its new folder; online: the steps W&B already has
are kept and the rest appended). It is offline
unless an API key is set. The run store stays the source of truth: a tracking
failure is a warning, never a lost run. With ``WANDB_API_KEY`` set but the server
unreachable, ``wandb.init`` blocks for its ``init_timeout`` and raises; the worker
then logs the same run offline and tells the driver, whose :class:`WandbTracker`
warns once and hands offline settings to every later run, so nothing is lost.
``sync_offline`` (``scalelab sync``) pushes the offline folders later, with the key
of ``WANDB_API_KEY`` or of ``wandb login`` (``~/.netrc``, found by W&B's own lookup).

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
    """The driver's side of tracking: the W&B settings every worker receives, one warning
    when the server is unreachable (then offline for the rest of the sweep), and the
    folders of the runs tracked."""

    def __init__(self, project: str | None, group: str | None = None, mode: str = "auto",
                 dir: str | Path = ".", entity: str | None = None, tags=None,
                 init_timeout: float = 30, run_ids: dict | None = None):
        self.project, self.group, self.entity = project, group, entity
        self.tags = list(tags or [])
        self.mode = resolve_mode(mode)
        self.dir = Path(dir).absolute()  # workers may run elsewhere (another cwd, a Ray node)
        self.init_timeout = init_timeout
        self.run_ids = dict(run_ids or {})  # scalelab run id -> W&B run id (wandb agent)
        self.run_dirs: list[Path] = []
        self.fell_back = False

    def settings(self, run_id: str) -> dict | None:
        """What a worker needs to log run ``run_id`` (None when tracking is off)."""
        if self.mode == "disabled":
            return None
        return {"project": self.project, "group": self.group, "entity": self.entity,
                "tags": self.tags, "mode": self.mode, "dir": str(self.dir),
                "init_timeout": self.init_timeout, "id": self.run_ids.get(run_id, run_id)}

    def fall_back(self, reason: str) -> None:
        """A worker found the server unreachable and went offline: warn once, stay offline."""
        if self.fell_back:
            return
        self.mode, self.fell_back = "offline", True
        warnings.warn(f"W&B server unreachable ({reason}); tracking this sweep offline in "
                      f"{self.dir / 'wandb'} — push it later with: scalelab sync {self.dir}",
                      stacklevel=2)

    def tracked(self, run_dir: str | None) -> None:
        if run_dir and Path(run_dir) not in self.run_dirs:
            self.run_dirs.append(Path(run_dir))

    def log_run(self, config: dict, run_id: str, status: str, rows: list[dict], info: dict,
                error: str | None = None) -> Path | None:
        """Write a whole run at once, here (one that was not tracked while it trained, e.g.
        imported); return its local folder, or None when tracking is off or failed."""
        live = LiveRun.start(self.settings(run_id), config, run_id,
                             lambda kind, reason: self.fall_back(reason))
        if live is None:
            return None
        live.finish(status, rows, info, error)
        self.tracked(live.dir)
        return Path(live.dir)


class LiveRun:
    """One run in W&B while it trains, in the worker that trains it.

    ``LiveRun.start(settings, config, run_id, notify)`` opens it (None when tracking is
    off or W&B cannot be started — the run goes on untracked, with a warning);
    :meth:`log` logs one evaluation row as it comes; :meth:`finish` writes the status
    and facts and closes it. ``notify("wandb_offline", reason)`` tells the driver that
    an online run fell back to offline.
    """

    def __init__(self, run, mode: str):
        self.run, self.mode = run, mode
        # a run resumed online continues at W&B's next step; the steps it holds are kept
        self.last_step = int(getattr(run, "step", 0) or 0) - 1 if getattr(run, "resumed", False) \
            else -1

    @classmethod
    def start(cls, settings: dict | None, config: dict, run_id: str, notify=None):
        if not settings or settings.get("mode") == "disabled":
            return None
        mode = settings["mode"]
        try:
            try:
                return cls(_init(settings, config, run_id, mode), mode)
            except Exception as err:  # noqa: BLE001 - unreachable server: offline instead
                if mode != "online":
                    raise
                _reset_wandb()  # the failed init still holds this run id in W&B's service
                reason = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
                if notify is not None:
                    notify("wandb_offline", reason)
                return cls(_init(settings, config, run_id, "offline"), "offline")
        except Exception as err:  # noqa: BLE001 - the store still receives the run
            warnings.warn(f"W&B tracking of run {run_id} failed ({err}); the run is safe in "
                          f"the run store.", stacklevel=2)
            return None

    @property
    def dir(self) -> str:
        return str(Path(self.run.dir).parent)

    def log(self, row: dict) -> None:
        """Log one curve row (numbers only; lists such as rank histograms go to the summary
        at the end). A row at or before the last logged step is skipped (W&B's steps only
        grow)."""
        step = int(row["step"])
        if step <= self.last_step:
            return
        try:
            self.run.log({k: v for k, v in row.items() if k != "step" and _is_number(v)},
                         step=step, commit=True)  # written now, stamped with this moment
            self.last_step = step
        except Exception as err:  # noqa: BLE001
            warnings.warn(f"W&B could not log step {step} ({err}); the store has it.",
                          stacklevel=2)

    def finish(self, status: str, rows: list[dict], info: dict, error: str | None = None):
        """Log the rows not yet logged, write the status and facts, close the run."""
        try:
            for row in rows:
                self.log(row)
            facts = {k: v for k, v in run_facts(info).items() if v is not None}
            self.run.summary.update({
                "status": status, **facts,
                **({"error": error.strip().splitlines()[-1], "traceback": error}
                   if error else {}),
                **({f"final_{k}": v for k, v in rows[-1].items()} if rows else {})})
            if info.get("device"):
                self.run.config.update({"device": info["device"]}, allow_val_change=True)
        finally:
            self.run.finish(exit_code=1 if status == "failed" else 0)


def _init(settings: dict, config: dict, run_id: str, mode: str):
    import wandb

    Path(settings["dir"]).mkdir(parents=True, exist_ok=True)
    return wandb.init(
        project=settings.get("project"), entity=settings.get("entity"),
        group=settings.get("group"), name=run_id, id=settings.get("id") or run_id,
        config={**config, "run_id": run_id}, tags=settings.get("tags") or [],
        dir=settings["dir"], mode=mode, resume="allow", reinit="create_new",
        settings=wandb.Settings(silent=True, console="off", x_disable_stats=False,
                                init_timeout=settings.get("init_timeout", 30)),
    )


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


def wandb_api_key() -> str | None:
    """The API key W&B itself would use: ``WANDB_API_KEY``, else the one ``wandb login``
    saved in ``~/.netrc`` (or ``$NETRC``) for the server of ``WANDB_BASE_URL``, found with
    W&B's own reader of that file."""
    if os.environ.get("WANDB_API_KEY"):
        return os.environ["WANDB_API_KEY"]
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    try:
        from wandb.sdk.lib.wbauth import read_netrc_auth
    except ImportError:  # wandb before 0.22 kept the lookup in wandb.sdk.lib.apikey
        try:
            from wandb.sdk.lib.apikey import api_key

            return api_key()
        except Exception:  # noqa: BLE001 - no key found the old way either
            return None
    try:
        return read_netrc_auth(host=host)
    except Exception:  # noqa: BLE001 - an unreadable netrc holds no key for us
        return None


def sync_offline(path: str | Path, timeout: float = 300) -> list[Path]:
    """Push offline W&B runs under ``path`` to the server with ``wandb sync``.

    Raises one ScalelabError sentence when there is nothing to push, no key, or the
    server does not answer within ``timeout`` seconds; returns the pushed folders.
    """
    dirs = run_folders(path, offline_only=True)
    if not dirs:
        raise ScalelabError(f"{path}: no offline W&B runs (offline-run-*) here; give the "
                            f"folder of a run store or its wandb folder.")
    if not wandb_api_key():
        raise ScalelabError("scalelab sync needs WANDB_API_KEY or the key that wandb login "
                            "saved (~/.netrc) to push runs; run wandb login and sync again.")
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
    for run_dir in dirs:  # an empty log is a run W&B never wrote: say so, do not skip it
        empty = [f for f in run_dir.glob("*.wandb") if f.stat().st_size == 0]
        if empty:
            raise ScalelabError(f"{empty[0]}: the W&B log is empty (0 bytes), so this run "
                                f"holds no record to read; move its folder out of {path} "
                                f"(or let the run finish writing) and load the rest.")
    records = []
    for run_dir in dirs:
        log = read_wandb_log(run_dir)
        if not log["config"] and not log["history"] and not log["summary"]:
            raise ScalelabError(f"{run_dir}: the W&B log holds no config, history or summary "
                                f"(a truncated or empty run); move its folder out of {path} "
                                f"and load the rest.")
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
