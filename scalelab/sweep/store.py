"""The run store's writer: one SQLite file that is the source of truth for a sweep.

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

This module is the writer. The schema, its migrations and the read-only view of a
store are in :mod:`scalelab.runs.store`; ``scalelab.load_runs`` reads a store back
as the runs table.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Iterable

from scalelab._errors import ScalelabError
from scalelab.config import RunConfig
from scalelab.runs.columns import DONE, STATUSES
from scalelab.runs import store as _schema
from scalelab.runs.store import (MIGRATIONS, SCHEMA, SCHEMA_VERSION, StoreReader, store_error,
                                 to_json)

__all__ = ["RunStore", "SCHEMA_VERSION", "STATUSES", "DONE"]

#: Seconds a write during a sweep waits for a lock another process holds on the store.
WRITE_WAIT_S = 30.0


class RunStore(StoreReader):
    """A run store opened for writing: ``RunStore(path)`` opens (or creates) it, takes the
    writer lock and migrates an older schema; it reads as :class:`StoreReader` does."""

    readonly = False

    def __init__(self, path: str | Path, create: bool = True):
        self.path = Path(path)
        self._lock_fh = None
        self._check_path(create=create)
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._take_writer_lock()
        try:  # a lock another process holds is waited for briefly, then told in a sentence
            self._db = sqlite3.connect(self.path, timeout=_schema.LOCK_WAIT_S,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except BaseException as err:
            self.close()
            if new:  # a store this call began and could not finish (a full disk): not left
                self.remove()
            cause = err if isinstance(err, sqlite3.Error) else err.__context__
            if isinstance(cause, sqlite3.Error):  # raw, or told by a transaction
                raise store_error(self.path, cause, "created" if new else "written") from None
            raise
        self.created = new  # made by this call (the runner removes it if nothing fits in it)
        # once open, a write of a run's result waits longer before it gives up
        self._db.execute(f"PRAGMA busy_timeout={int(WRITE_WAIT_S * 1000)}")

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
                for statement in filter(str.strip, SCHEMA.split(";")):
                    db.execute(statement)
                db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                           (str(SCHEMA_VERSION),))
                db.execute("INSERT INTO meta VALUES ('created_by', 'scalelab')")
                return
            version = int(db.execute(
                "SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
            _make_strict_json(db)
            while version < SCHEMA_VERSION:
                for statement in MIGRATIONS[version]:
                    db.execute(statement)
                version += 1
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))

    def remove(self) -> None:
        """Delete the store's files (for a store this process made and could not fill)."""
        self.close()
        for leftover in (self.path, *(self.path.with_name(self.path.name + end)
                                      for end in ("-wal", "-shm", ".lock"))):
            with contextlib.suppress(OSError):
                leftover.unlink()

    def _tx(self):
        return _Transaction(self._db, self.path)

    def close(self) -> None:
        if getattr(self, "_db", None) is not None:
            self._db.close()
        if self._lock_fh is not None:
            self._lock_fh.close()  # releases the flock
            self._lock_fh = None

    # -- writing -------------------------------------------------------------------------
    def add_sweep(self, name: str, spec: dict, runs: Iterable[RunConfig]) -> None:
        """Register a sweep and its runs (pending unless the store already has them)."""
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO sweeps VALUES (?, ?, ?)",
                       (name, to_json(spec, default=str), now))
            for cfg in runs:
                db.execute(
                    "INSERT OR IGNORE INTO runs (run_id, config, created, updated) "
                    "VALUES (?, ?, ?, ?)",
                    (cfg.run_id, to_json(cfg.to_dict(), sort_keys=True), now, now))
                db.execute("INSERT OR IGNORE INTO sweep_runs VALUES (?, ?)", (name, cfg.run_id))

    def mark_running(self, run_id: str, host: str | None = None,
                     device: str | None = None) -> None:
        """A run was handed to a worker: status running, one more attempt."""
        with self._tx() as db:
            db.execute("UPDATE runs SET status='running', attempts=attempts+1, updated=?, "
                       "host=COALESCE(?, host), device=COALESCE(?, device) WHERE run_id=?",
                       (time.time(), host, device, run_id))

    def add_rows(self, run_id: str, rows: list[dict]) -> int:
        """Curve rows of a run still training, as they come; return how many were written.

        Keyed by (run, step), so a row sent again (a resumed run, a retried attempt)
        replaces the earlier one and is never doubled; rows of a run that is no longer
        running (a late row after its result) are ignored: the result holds them.
        """
        with self._tx() as db:
            if db.execute("SELECT status FROM runs WHERE run_id=?",
                          (run_id,)).fetchone() != ("running",):
                return 0
            db.executemany("INSERT OR REPLACE INTO curve VALUES (?, ?, ?)",
                           [(run_id, int(r["step"]), to_json(r)) for r in rows])
            db.execute("UPDATE runs SET updated=? WHERE run_id=?", (time.time(), run_id))
        return len(rows)

    def record_result(self, run_id: str, status: str, rows: list[dict], info: dict) -> None:
        """Write a run's final status, facts and whole curve in one transaction."""
        if status not in STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self._tx() as db:
            db.execute("DELETE FROM curve WHERE run_id=?", (run_id,))
            db.executemany("INSERT INTO curve VALUES (?, ?, ?)",
                           [(run_id, int(r["step"]), to_json(r)) for r in rows])
            db.execute("UPDATE runs SET status=?, info=?, error=NULL, updated=?, "
                       "host=COALESCE(?, host), device=COALESCE(?, device), "
                       "versions=COALESCE(?, versions) WHERE run_id=?",
                       (status, to_json(info, default=str), time.time(), info.get("host"),
                        info.get("device"),
                        to_json(info["versions"]) if info.get("versions") else None,
                        run_id))

    def record_failure(self, run_id: str, error: str, host: str | None = None) -> None:
        """A run raised: keep its traceback; the runner decides whether to retry."""
        with self._tx() as db:
            db.execute("UPDATE runs SET status='failed', error=?, updated=?, "
                       "host=COALESCE(?, host) WHERE run_id=?",
                       (error, time.time(), host, run_id))


def _make_strict_json(db: sqlite3.Connection) -> None:
    """Rewrite the rows an older scalelab wrote with ``NaN``/``Infinity`` in their JSON
    text (which SQLite's JSON functions refuse) as strict JSON, ``null`` for those values."""
    for table, column in (("curve", "metrics"), ("runs", "info"), ("runs", "config")):
        bad = db.execute(f"SELECT rowid, {column} FROM {table} "
                         f"WHERE NOT json_valid({column})").fetchall()
        for rowid, text in bad:
            try:
                value = json.loads(text)
            except ValueError:
                continue  # not JSON at all: left as it is, for a person to look at
            db.execute(f"UPDATE {table} SET {column}=? WHERE rowid=?",
                       (to_json(value), rowid))


class _Transaction:
    """One write transaction; an SQLite failure (a lock held too long, a full disk) is
    rolled back and told in one sentence (:func:`scalelab.runs.store.store_error`)."""

    def __init__(self, db: sqlite3.Connection, path: Path | None = None):
        self.db, self.path = db, path

    def _error(self, err: sqlite3.Error) -> ScalelabError:
        waited = self.db.execute("PRAGMA busy_timeout").fetchone()[0] / 1000
        return store_error(self.path, err, "written", waited=waited)

    def __enter__(self):
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise self._error(err) from None
        return self.db

    def __exit__(self, exc_type, exc, tb):
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        except sqlite3.Error as err:
            if exc_type is None:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
                raise self._error(err) from None
        if exc_type is not None and issubclass(exc_type, sqlite3.Error):
            raise self._error(exc) from None
        return False
