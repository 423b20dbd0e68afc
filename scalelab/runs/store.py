"""Reading a run store: the SQLite schema, and a read-only view of a store as the runs table.

A run store is one SQLite file, the source of truth of a sweep (the writer is
:class:`scalelab.sweep.store.RunStore`). Its tables: ``meta`` (schema version),
``sweeps`` (name, spec), ``sweep_runs`` (which runs belong to which sweep), ``runs``
(config, status, attempts, host, device, versions, facts, traceback of the last
failure) and ``curve`` (one row per run × evaluation step, the metrics as JSON).
The schema and its migrations are declared here, once, for the reader and the writer.

Every JSON text in a store is strict JSON (:func:`to_json`): a value that is not a
finite number (a step-0 ``train_loss`` of NaN, an infinite loss) is written as
``null`` and read back as NaN, since SQLite's JSON functions (``json_extract``,
``json_each``) refuse ``NaN``/``Infinity`` as malformed JSON. Stores written before
that, with ``NaN`` in their text, are still read by every command: the reader parses
those rows in Python, and a writer that opens such a store rewrites them.

A reader opens the file read-only (``mode=ro``, ``query_only``): in WAL mode it never
blocks the sweep writing the store, and it reads the last committed state. A file
that is not a scalelab store (a foreign SQLite file, a corrupted one, a text file)
is refused with one sentence and never written to.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import sqlite3
from pathlib import Path

import pandas as pd

from scalelab._errors import ScalelabError
from scalelab._files import atomic_path, writable_folder
from scalelab.runs.columns import DONE, assemble, run_facts

SCHEMA_VERSION = 2

SCHEMA = """
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

# Migrations: MIGRATIONS[v] takes a store at version v to v + 1 (the writer applies them).
MIGRATIONS = {
    1: ["ALTER TABLE runs ADD COLUMN host TEXT",
        "ALTER TABLE runs ADD COLUMN device TEXT",
        "ALTER TABLE runs ADD COLUMN versions TEXT",
        # fill the new columns from what version 1 kept in info
        "UPDATE runs SET host = json_extract(info, '$.host'), "
        "device = json_extract(info, '$.device'), "
        "versions = json_extract(info, '$.versions') WHERE json_valid(info)"],
}


def _finite(value):
    """``value`` with every number that is not finite (NaN, ±inf) replaced by None."""
    if isinstance(value, dict):
        return {key: _finite(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral) \
            and not math.isfinite(value):
        return None
    return value


def to_json(value, **kwargs) -> str:
    """Strict JSON text for the store: NaN and ±inf become ``null`` (read back as NaN), so
    SQLite's JSON functions accept every row."""
    return json.dumps(_finite(value), allow_nan=False, **kwargs)


def curve_row(text: str) -> dict:
    """A curve row's metrics from the store's JSON text: ``null`` (a value that was not
    finite) as NaN; the ``NaN``/``Infinity`` of stores written before strict JSON too."""
    return {key: float("nan") if value is None else value
            for key, value in json.loads(text).items()}


class StoreReader:
    """A run store opened for reading only: ``StoreReader(path)``; a context manager."""

    readonly = True

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._check_path(create=False)
        self._db = connect_readonly(self.path, timeout=30)
        self._db.execute("PRAGMA query_only=ON")

    def _check_path(self, create: bool) -> None:
        if self.path.is_dir():
            raise ScalelabError(f"{self.path}: is a folder, not a run store; give the path of "
                                f"a runs.db file.")
        if self.path.exists():
            check_is_store(self.path)
        elif not create:
            raise ScalelabError(f"{self.path}: no run store here; run a sweep first "
                                f"(scalelab run SPEC) or give the path of its runs.db.")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute(
            "SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- reading -------------------------------------------------------------------------
    def status(self, run_id: str) -> str | None:
        row = self._db.execute("SELECT status FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row[0] if row else None

    def attempts(self, run_id: str) -> int:
        row = self._db.execute("SELECT attempts FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return row[0] if row else 0

    def runs(self, sweep: str | None = None) -> pd.DataFrame:
        """One row per run: run_id, config fields, sweep, status, attempts, facts, error."""
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(runs)")}
        extra = [c for c in ("host", "device", "versions") if c in columns]
        query = ("SELECT r.run_id, r.config, r.status, r.attempts, r.info, r.error, "
                 "(SELECT group_concat(s.sweep, ',') FROM sweep_runs s WHERE s.run_id = r.run_id)"
                 + "".join(f", r.{c}" for c in extra) + " FROM runs r")
        args: tuple = ()
        if sweep is not None:
            query += (" WHERE EXISTS (SELECT 1 FROM sweep_runs s WHERE s.run_id = r.run_id "
                      "AND s.sweep = ?)")
            args = (sweep,)
        records = []
        for row in self._db.execute(query + " ORDER BY r.created, r.run_id", args):
            run_id, config, status, attempts, info, error, sweeps = row[:7]
            facts = run_facts(json.loads(info))
            for name, value in zip(extra, row[7:]):
                if value is not None:
                    facts[name] = value  # versions: JSON text, as in CSV exports
            records.append({"run_id": run_id, **json.loads(config), "sweep": sweeps,
                            "status": status, "attempts": attempts, **facts, "error": error})
        return pd.DataFrame.from_records(records)

    def curves(self, run_id: str | None = None) -> pd.DataFrame:
        """One row per run × evaluation step: run_id and the metrics recorded there."""
        query, args = "SELECT run_id, metrics FROM curve", ()
        if run_id is not None:
            query, args = query + " WHERE run_id=?", (run_id,)
        rows = [{"run_id": rid, **curve_row(metrics)}
                for rid, metrics in self._db.execute(query + " ORDER BY run_id, step", args)]
        return pd.DataFrame.from_records(rows)

    def metrics(self) -> list[str]:
        """The names the store's curve rows record (step, val_loss, ...), sorted."""
        names = {r[0] for r in self._db.execute(
            "SELECT DISTINCT j.key FROM curve, json_each(curve.metrics) AS j "
            "WHERE json_valid(curve.metrics)")}
        for (text,) in self._db.execute(  # rows of older stores, with NaN in their text
                "SELECT metrics FROM curve WHERE NOT json_valid(metrics)"):
            names.update(curve_row(text))
        return sorted(names)

    def latest(self, metric: str = "val_loss") -> pd.DataFrame:
        """Per run, its latest curve row's ``step`` and ``metric`` (running runs too: the
        sweep writes rows as they come)."""
        rows = [(run_id, step, curve_row(text).get(metric, float("nan")))
                for run_id, step, text in self._db.execute(
                    "SELECT c.run_id, c.step, c.metrics FROM curve c JOIN "
                    "(SELECT run_id, MAX(step) AS step FROM curve GROUP BY run_id) AS m "
                    "ON c.run_id = m.run_id AND c.step = m.step")]
        return pd.DataFrame.from_records(rows, columns=["run_id", "step", metric])

    def sweeps(self) -> list[tuple[str, dict]]:
        return [(name, json.loads(spec))
                for name, spec in self._db.execute("SELECT name, spec FROM sweeps")]

    def table(self, sweep: str | None = None, status=DONE) -> pd.DataFrame:
        """The runs table of this store (see :func:`scalelab.load_runs`)."""
        return assemble(self.runs(sweep), self.curves(), status=status, sweep=None,
                        source=str(self.path))

    def export(self, output: str | Path, sweep: str | None = None) -> Path:
        """Write the runs table (all statuses) to CSV or Parquet, chosen by suffix."""
        output = Path(output)
        suffix = output.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq"):
            raise ScalelabError(f"{output}: unknown export format {suffix or '(none)'}; "
                                f"name the file .csv or .parquet.")
        writable_folder(output, "export")  # before any work, in one sentence
        table = self.table(sweep, status=None)
        output.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(output) as tmp:  # a name of this process's own: writers never collide
            _write_table(table, tmp, suffix)
        return output


def _write_table(table: pd.DataFrame, output: Path, suffix: str) -> None:
    """Write the runs table to ``output`` as CSV or Parquet (``suffix``)."""
    if suffix == ".csv":
        table.to_csv(output, index=False)
    else:
        # nested options/versions do not fit a Parquet column as dicts of varying keys
        for column in ("options", "versions"):
            if column in table:
                table[column] = table[column].map(
                    lambda v: v if isinstance(v, str) else json.dumps(v, default=str))
        table.to_parquet(output, index=False)


def connect_readonly(path: Path, timeout: float = 5.0) -> sqlite3.Connection:
    """A read-only connection to the SQLite file ``path``.

    A store in WAL mode is read through its ``-shm`` index, which SQLite creates beside
    the file when it is missing (after a clean close). On read-only media (a read-only
    folder or mount, an archive) it cannot, and ``mode=ro`` fails with "unable to open
    database file"; a store with no ``-wal`` file there holds all its data in the main
    file, so it is opened ``immutable=1`` (SQLite reads it without any locking or
    index) — read-only commands work on it, and nothing is written.
    """
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout,
                         isolation_level=None)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError as err:
        db.close()
        wal = Path(f"{path}-wal")
        folder_writable = os.access(Path(path).parent, os.W_OK)
        if "unable to open" not in str(err) or (wal.exists() and wal.stat().st_size) \
                or folder_writable and not _on_readonly_mount(Path(path)):
            raise
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, timeout=timeout,
                           isolation_level=None)


def _on_readonly_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):
        return False


def check_is_store(path: Path) -> None:
    """Raise one sentence unless ``path`` is a scalelab run store this version understands."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head and head != b"SQLite format 3\x00":
        raise ScalelabError(f"{path}: not a SQLite file; give the path of a scalelab run "
                            f"store (runs.db) — this file was left untouched.")
    if not head:
        return
    try:
        db = connect_readonly(path)
        try:
            problems = [line.strip() for r in db.execute("PRAGMA quick_check(3)")
                        for line in str(r[0]).splitlines()
                        if line.strip() and not line.startswith("***")]
            if problems != ["ok"]:  # the check's result is used: a damaged store is refused
                raise sqlite3.DatabaseError(f"integrity check: {(problems or ['failed'])[0]}")
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
