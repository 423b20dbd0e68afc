"""The run store: one SQLite file that is the source of truth for a sweep.

Tables: ``meta`` (schema version), ``sweeps`` (name, spec), ``sweep_runs`` (which
runs belong to which sweep), ``runs`` (config, status — pending, running, finished,
diverged, failed — attempts, host, device, versions, facts, traceback of the last
failure) and ``curve`` (one row per run × evaluation step, the metrics as JSON).

- Every write is one transaction, so a killed process leaves either the whole
  result of a run or none of it.
- WAL mode: readers (a notebook, ``scalelab runs list``) open the file read-only
  and never block the sweep that writes it.
- One writer at a time: a writing ``RunStore`` holds an exclusive ``flock`` on the
  sidecar file ``<store>.lock``; the kernel releases it when the process dies, so a
  killed driver never leaves a stale lock.
- Schema versions: ``SCHEMA_VERSION`` in ``meta``; an older store is migrated in
  place (in one transaction) when a writer opens it; a newer one is refused.
- A file that is not a scalelab store (a foreign SQLite file, a corrupted one, a
  text file) is refused with a clear error and never written to.

``load_runs(source)`` turns a store — or a CSV/Parquet table, W&B offline run
folders, or an online W&B project — into the runs table, the contract between
training and analysis: one row per run × evaluation step, config fields as columns.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable

import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.config import RunConfig
from scalelab.table import with_data_columns

SCHEMA_VERSION = 2
STATUSES = ("pending", "running", "finished", "diverged", "failed")
DONE = ("finished", "diverged")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
        ('pending', 'running', 'finished', 'diverged', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, info TEXT NOT NULL DEFAULT '{}',
    error TEXT, created REAL NOT NULL, updated REAL NOT NULL,
    host TEXT, device TEXT, versions TEXT);
CREATE TABLE IF NOT EXISTS sweep_runs (
    sweep TEXT NOT NULL REFERENCES sweeps(name), run_id TEXT NOT NULL REFERENCES runs(run_id),
    PRIMARY KEY (sweep, run_id));
CREATE TABLE IF NOT EXISTS curve (
    run_id TEXT NOT NULL REFERENCES runs(run_id), step INTEGER NOT NULL, metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, step));
"""

# Migrations: MIGRATIONS[v] takes a store at version v to v + 1.
MIGRATIONS = {
    1: ["ALTER TABLE runs ADD COLUMN host TEXT",
        "ALTER TABLE runs ADD COLUMN device TEXT",
        "ALTER TABLE runs ADD COLUMN versions TEXT",
        # fill the new columns from what version 1 kept in info
        "UPDATE runs SET host = json_extract(info, '$.host'), "
        "device = json_extract(info, '$.device'), "
        "versions = json_extract(info, '$.versions')"],
}


class RunStore:
    """A SQLite run store.

    ``RunStore(path)`` opens (or creates) it for writing and takes the writer lock;
    ``RunStore(path, readonly=True)`` opens an existing store for reading only.
    """

    def __init__(self, path: str | Path, create: bool = True, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._lock_fh = None
        if self.path.is_dir():
            raise ScalelabError(f"{self.path}: is a folder, not a run store; give the path of "
                                f"a runs.db file.")
        if self.path.exists():
            _check_is_store(self.path)
        elif not create or readonly:
            raise ScalelabError(f"{self.path}: no run store here; run a sweep first "
                                f"(scalelab run SPEC) or give the path of its runs.db.")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if readonly:
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30,
                                       isolation_level=None)
            self._db.execute("PRAGMA query_only=ON")
            return
        self._take_writer_lock()
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    # -- opening -------------------------------------------------------------------------
    def _take_writer_lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # Windows: no flock; SQLite's own locking still applies
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        fh = open(lock_path, "a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise ScalelabError(f"{self.path}: another process ({holder}) is writing to this "
                                f"run store; wait for it to finish or give another store "
                                f"path.") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {os.uname().nodename if hasattr(os, 'uname') else ''}")
        fh.flush()
        self._lock_fh = fh

    def _migrate(self) -> None:
        with self._tx() as db:
            tables = {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            if "meta" not in tables:  # a new store
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                           (str(SCHEMA_VERSION),))
                db.execute("INSERT INTO meta VALUES ('created_by', 'scalelab')")
                return
            version = int(db.execute(
                "SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
                version += 1
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))

    def _tx(self):
        if self.readonly:
            raise ScalelabError(f"{self.path}: this run store was opened read-only.")
        return _Transaction(self._db)

    @property
    def schema_version(self) -> int:
        return int(self._db.execute(
            "SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    def close(self) -> None:
        self._db.close()
        if self._lock_fh is not None:
            self._lock_fh.close()  # releases the flock
            self._lock_fh = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- writing -------------------------------------------------------------------------
    def add_sweep(self, name: str, spec: dict, runs: Iterable[RunConfig]) -> None:
        """Register a sweep and its runs (pending unless the store already has them)."""
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO sweeps VALUES (?, ?, ?)",
                       (name, json.dumps(spec, default=str), now))
            for cfg in runs:
                db.execute(
                    "INSERT OR IGNORE INTO runs (run_id, config, created, updated) "
                    "VALUES (?, ?, ?, ?)",
                    (cfg.run_id, json.dumps(cfg.to_dict(), sort_keys=True), now, now))
                db.execute("INSERT OR IGNORE INTO sweep_runs VALUES (?, ?)", (name, cfg.run_id))

    def mark_running(self, run_id: str, host: str | None = None,
                     device: str | None = None) -> None:
        """A run was handed to a worker: status running, one more attempt."""
        with self._tx() as db:
            db.execute("UPDATE runs SET status='running', attempts=attempts+1, updated=?, "
                       "host=COALESCE(?, host), device=COALESCE(?, device) WHERE run_id=?",
                       (time.time(), host, device, run_id))

    def record_result(self, run_id: str, status: str, rows: list[dict], info: dict) -> None:
        """Write a run's final status, facts and whole curve in one transaction."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self._tx() as db:
            db.execute("DELETE FROM curve WHERE run_id=?", (run_id,))
            db.executemany("INSERT INTO curve VALUES (?, ?, ?)",
                           [(run_id, int(r["step"]), json.dumps(r)) for r in rows])
            db.execute("UPDATE runs SET status=?, info=?, error=NULL, updated=?, "
                       "host=COALESCE(?, host), device=COALESCE(?, device), "
                       "versions=COALESCE(?, versions) WHERE run_id=?",
                       (status, json.dumps(info, default=str), time.time(), info.get("host"),
                        info.get("device"),
                        json.dumps(info["versions"]) if info.get("versions") else None,
                        run_id))

    def record_failure(self, run_id: str, error: str, host: str | None = None) -> None:
        """A run raised: keep its traceback; the runner decides whether to retry."""
        with self._tx() as db:
            db.execute("UPDATE runs SET status='failed', error=?, updated=?, "
                       "host=COALESCE(?, host) WHERE run_id=?",
                       (error, time.time(), host, run_id))

    # -- reading -------------------------------------------------------------------------
    def status(self, run_id: str) -> str | None:
        row = self._db.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row[0] if row else None

    def attempts(self, run_id: str) -> int:
        row = self._db.execute("SELECT attempts FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row[0] if row else 0

    def runs(self, sweep: str | None = None) -> pd.DataFrame:
        """One row per run: run_id, config fields, status, attempts, facts, error."""
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(runs)")}
        extra = [c for c in ("host", "device", "versions") if c in columns]
        query = ("SELECT r.run_id, r.config, r.status, r.attempts, r.info, r.error"
                 + "".join(f", r.{c}" for c in extra) + " FROM runs r")
        args: tuple = ()
        if sweep is not None:
            query += " JOIN sweep_runs s ON s.run_id = r.run_id WHERE s.sweep = ?"
            args = (sweep,)
        records = []
        for row in self._db.execute(query + " ORDER BY r.created, r.run_id", args):
            run_id, config, status, attempts, info, error = row[:6]
            facts = _flat_info(json.loads(info))
            for name, value in zip(extra, row[6:]):
                if value is not None:
                    facts[name] = value
            records.append({"run_id": run_id, **json.loads(config), "status": status,
                            "attempts": attempts, **facts, "error": error})
        return pd.DataFrame.from_records(records)

    def curves(self, run_id: str | None = None) -> pd.DataFrame:
        query, args = "SELECT run_id, metrics FROM curve", ()
        if run_id is not None:
            query, args = query + " WHERE run_id=?", (run_id,)
        rows = [{"run_id": rid, **json.loads(metrics)}
                for rid, metrics in self._db.execute(query + " ORDER BY run_id, step", args)]
        return pd.DataFrame.from_records(rows)

    def sweeps(self) -> list[tuple[str, dict]]:
        return [(name, json.loads(spec))
                for name, spec in self._db.execute("SELECT name, spec FROM sweeps")]

    def export(self, output: str | Path, sweep: str | None = None) -> Path:
        """Write the runs table (all statuses) to CSV or Parquet, chosen by suffix."""
        output = Path(output)
        suffix = output.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq"):
            raise ScalelabError(f"{output}: unknown export format {suffix or '(none)'}; "
                                f"name the file .csv or .parquet.")
        table = _runs_table(self.runs(sweep), self.curves(), status=None)
        output.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            table.to_csv(output, index=False)
        else:
            # nested options/versions do not fit a Parquet column as dicts of varying keys
            for column in ("options", "versions"):
                if column in table:
                    table[column] = table[column].map(
                        lambda v: v if isinstance(v, str) else json.dumps(v, default=str))
            table.to_parquet(output, index=False)
        return output


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, *exc):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


def _flat_info(info: dict) -> dict:
    keep = ("params", "flops_per_sample", "device", "host", "wall_time_s", "diverged_step")
    return {k: info.get(k) for k in keep}


def _check_is_store(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head and head != b"SQLite format 3\x00":
        raise ScalelabError(f"{path}: not a SQLite file; give the path of a scalelab run "
                            f"store (runs.db) — this file was left untouched.")
    if not head:
        return
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            db.execute("PRAGMA quick_check").fetchone()
            tables = {r[0] for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table'")}
            version = None
            if "meta" in tables:
                row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                version = int(row[0]) if row else None
        finally:
            db.close()
    except (sqlite3.DatabaseError, ValueError) as err:
        raise ScalelabError(f"{path}: corrupted SQLite file ({err}); restore it from a backup "
                            f"or give another store path — it was left untouched.") from None
    if "runs" not in tables or "meta" not in tables or version is None:
        raise ScalelabError(f"{path}: a SQLite file that is not a scalelab run store "
                            f"(no runs/meta tables); give another store path — it was left "
                            f"untouched.")
    if version > SCHEMA_VERSION:
        raise ScalelabError(f"{path}: run store schema version {version} is newer than this "
                            f"scalelab understands ({SCHEMA_VERSION}); upgrade scalelab.")


def _runs_table(runs: pd.DataFrame, curves: pd.DataFrame, status) -> pd.DataFrame:
    if runs.empty:
        return pd.DataFrame(columns=["run_id", *RunConfig.field_names(), "params", "status",
                                     "step", "val_loss"])
    if status is not None:
        runs = runs[runs["status"].isin(tuple(status))]
    if curves.empty:
        curves = pd.DataFrame(columns=["run_id", "step"])
    # the curve's ``lr`` (the rate at that step) would clash with the config's peak ``lr``
    curves = curves.rename(columns={"lr": "lr_step"})
    # curve rows repeat the config's ``samples`` (U); keep one column
    curves = curves.drop(columns=[c for c in curves.columns if c != "run_id"
                                  and c in runs.columns and c in RunConfig.field_names()])
    table = runs.merge(curves, on="run_id", how="left")
    return with_data_columns(table.sort_values(["run_id", "step"]).reset_index(drop=True))


def load_runs(source, sweep: str | None = None, status: Iterable[str] | None = DONE
              ) -> pd.DataFrame:
    """The runs table: one row per run × evaluation step, config fields as columns.

    ``source`` is one of

    - a run store (``runs.db``), opened read-only (a running sweep is not blocked);
    - a CSV or Parquet file of runs (e.g. someone else's published losses);
    - a folder of W&B offline runs (``.../wandb`` or one ``offline-run-*`` folder),
      read back from each run's ``.wandb`` log without a server;
    - ``"wandb:ENTITY/PROJECT"``: an online W&B project, through ``wandb.Api()``
      (needs ``WANDB_API_KEY``);
    - a DataFrame (copied).

    Columns: ``run_id``, every RunConfig field (``family``, ``width``, ``samples`` —
    U, the distinct training samples —, ``loss_variant``, ``parent`` and
    ``branch_step`` of a branch, ...), ``params``, ``flops_per_sample``, ``status``
    and the curve columns (``step``, ``samples_seen`` — D, steps × batch —, ``epochs``
    — D/U —, ``flops``, ``lr_step`` — the learning
    rate at that step, ``lr`` being the config's peak rate — ``train_loss``,
    ``val_loss``, ...). Only runs whose status is in ``status`` are kept (finished
    and diverged by default; ``None`` keeps all).
    """
    if isinstance(source, pd.DataFrame):
        return source.copy()
    if isinstance(source, str) and source.startswith("wandb:"):
        return _runs_table(*_wandb_online(source[len("wandb:"):], sweep), status=status)
    path = Path(source)
    if path.suffix.lower() == ".csv":
        return with_data_columns(pd.read_csv(path))
    if path.suffix.lower() in (".parquet", ".pq"):
        return with_data_columns(pd.read_parquet(path))
    if path.is_dir():
        return _runs_table(*_wandb_offline(path, sweep), status=status)
    with RunStore(path, readonly=True) as store:
        runs = store.runs(sweep)
        curves = store.curves()
    return _runs_table(runs, curves, status=status)


# -- W&B sources ---------------------------------------------------------------------------
def _wandb_run_dirs(path: Path) -> list[Path]:
    if list(path.glob("*.wandb")):
        return [path]
    root = path / "wandb" if (path / "wandb").is_dir() else path
    return sorted(d for d in root.glob("*run-*") if d.is_dir() and list(d.glob("*.wandb")))


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


def _wandb_frames(records: Iterable[tuple[dict, list[dict], dict, str | None]], sweep):
    known = set(RunConfig.field_names())
    chosen: dict = {}  # run_id -> (record, history); a run logged twice keeps its longest log
    for config, history, summary, group in records:
        if sweep is not None and group != sweep:
            continue
        run_id = config.get("run_id") or summary.get("run_id")
        if run_id is None:
            continue
        if run_id in chosen and len(chosen[run_id][1]) >= len(history):
            continue
        fields = {k: v for k, v in config.items() if k in known}
        chosen[run_id] = ({"run_id": run_id, **RunConfig(**fields).to_dict(),
                           "status": summary.get("status", "finished"), "attempts": None,
                           "params": summary.get("params"),
                           "flops_per_sample": summary.get("flops_per_sample"),
                           "error": None}, history)
    runs = pd.DataFrame.from_records([run for run, _ in chosen.values()])
    curves = pd.DataFrame.from_records([{"run_id": run_id, **row}
                                        for run_id, (_, history) in chosen.items()
                                        for row in history])
    return runs, curves


def _wandb_offline(path: Path, sweep):
    dirs = _wandb_run_dirs(path)
    if not dirs:
        raise ScalelabError(f"{path}: a folder with no W&B runs in it (no */*.wandb); give a "
                            f"run store, a CSV/Parquet table or a wandb folder.")
    records = []
    for run_dir in dirs:
        log = read_wandb_log(run_dir)
        records.append((log["config"], log["history"], log["summary"], log["group"]))
    return _wandb_frames(records, sweep)


def _wandb_online(project: str, sweep, timeout: float = 60):
    """Runs of an online W&B project (``entity/project``) through the public API."""
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
    return _wandb_frames(records, sweep)

