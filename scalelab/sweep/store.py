"""The run store: one SQLite file that is the source of truth for a sweep.

Tables: ``meta`` (schema version), ``sweeps`` (name, spec), ``sweep_runs`` (which
runs belong to which sweep), ``runs`` (config, status, attempts, facts of the run)
and ``curve`` (one row per run × evaluation step, the metrics as JSON). Every write
is one transaction, so a killed process leaves either the whole result of a run or
none of it. WAL mode lets readers (a notebook) read while a sweep writes.

``load_runs(path)`` turns a store into the runs table — the contract between
training and analysis — a DataFrame with one row per run × evaluation step and the
config's fields as columns.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Iterable

import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.config import RunConfig

SCHEMA_VERSION = 1
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
    error TEXT, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sweep_runs (
    sweep TEXT NOT NULL REFERENCES sweeps(name), run_id TEXT NOT NULL REFERENCES runs(run_id),
    PRIMARY KEY (sweep, run_id));
CREATE TABLE IF NOT EXISTS curve (
    run_id TEXT NOT NULL REFERENCES runs(run_id), step INTEGER NOT NULL, metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, step));
"""


class RunStore:
    """A SQLite run store; open with ``RunStore(path)`` (created if missing)."""

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        if self.path.exists():
            _check_is_store(self.path)
        elif not create:
            raise ScalelabError(f"{self.path}: no run store here; run a sweep first "
                                f"(scalelab run SPEC) or give the path of its runs.db.")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript("BEGIN;" + _SCHEMA + "COMMIT;")
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                       (str(SCHEMA_VERSION),))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('created_by', 'scalelab')")

    def _tx(self):
        return _Transaction(self._db)

    def close(self) -> None:
        self._db.close()

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

    def mark_running(self, run_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET status='running', attempts=attempts+1, updated=? "
                       "WHERE run_id=?", (time.time(), run_id))

    def record_result(self, run_id: str, status: str, rows: list[dict], info: dict) -> None:
        """Write a run's final status, facts and whole curve in one transaction."""
        with self._tx() as db:
            db.execute("DELETE FROM curve WHERE run_id=?", (run_id,))
            db.executemany("INSERT INTO curve VALUES (?, ?, ?)",
                           [(run_id, int(r["step"]), json.dumps(r)) for r in rows])
            db.execute("UPDATE runs SET status=?, info=?, error=NULL, updated=? WHERE run_id=?",
                       (status, json.dumps(info, default=str), time.time(), run_id))

    def record_failure(self, run_id: str, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE runs SET status='failed', error=?, updated=? WHERE run_id=?",
                       (error, time.time(), run_id))

    # -- reading -------------------------------------------------------------------------
    def status(self, run_id: str) -> str | None:
        row = self._db.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row[0] if row else None

    def runs(self, sweep: str | None = None) -> pd.DataFrame:
        """One row per run: run_id, status, attempts, config fields and facts."""
        query = "SELECT r.run_id, r.config, r.status, r.attempts, r.info, r.error FROM runs r"
        args: tuple = ()
        if sweep is not None:
            query += " JOIN sweep_runs s ON s.run_id = r.run_id WHERE s.sweep = ?"
            args = (sweep,)
        records = []
        for run_id, config, status, attempts, info, error in self._db.execute(query, args):
            info = json.loads(info)
            records.append({"run_id": run_id, **json.loads(config), "status": status,
                            "attempts": attempts, **_flat_info(info), "error": error})
        return pd.DataFrame.from_records(records)

    def curves(self) -> pd.DataFrame:
        rows = [{"run_id": run_id, **json.loads(metrics)}
                for run_id, metrics in self._db.execute(
                    "SELECT run_id, metrics FROM curve ORDER BY run_id, step")]
        return pd.DataFrame.from_records(rows)

    def sweeps(self) -> list[tuple[str, dict]]:
        return [(name, json.loads(spec))
                for name, spec in self._db.execute("SELECT name, spec FROM sweeps")]


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
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = None
        if "meta" in tables:
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else None
        db.close()
    except sqlite3.DatabaseError as err:
        raise ScalelabError(f"{path}: corrupted SQLite file ({err}); restore it from a backup "
                            f"or give another store path — it was left untouched.") from None
    if tables and ("runs" not in tables or "meta" not in tables):
        raise ScalelabError(f"{path}: a SQLite file that is not a scalelab run store "
                            f"(no runs/meta tables); give another store path — it was left "
                            f"untouched.")
    if version is not None and version > SCHEMA_VERSION:
        raise ScalelabError(f"{path}: run store schema version {version} is newer than this "
                            f"scalelab understands ({SCHEMA_VERSION}); upgrade scalelab.")


def load_runs(source, sweep: str | None = None, status: Iterable[str] | None = DONE
              ) -> pd.DataFrame:
    """The runs table: one row per run × evaluation step, config fields as columns.

    ``source`` is a run store (``runs.db``), a CSV or Parquet file of runs (someone
    else's published losses), or a DataFrame. Columns for a store: ``run_id``, every
    RunConfig field (``family``, ``width``, ``samples``, ``loss_variant``, ...),
    ``params``, ``flops_per_sample``, ``status`` and the curve columns (``step``,
    ``samples_seen``, ``flops``, ``lr``, ``train_loss``, ``val_loss``, ...). Only runs
    whose status is in ``status`` are kept (finished and diverged by default;
    ``None`` keeps all).
    """
    if isinstance(source, pd.DataFrame):
        return source.copy()
    path = Path(source)
    if path.suffix.lower() == ".csv":
        return pd.read_csv(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    with RunStore(path, create=False) as store:
        runs = store.runs(sweep)
        curves = store.curves()
    if runs.empty:
        return pd.DataFrame(columns=["run_id", *RunConfig.field_names(), "params", "status",
                                     "step", "val_loss"])
    if status is not None:
        runs = runs[runs["status"].isin(tuple(status))]
    if curves.empty:
        curves = pd.DataFrame(columns=["run_id", "step"])
    table = runs.merge(curves, on="run_id", how="left")
    return table.sort_values(["run_id", "step"]).reset_index(drop=True)
