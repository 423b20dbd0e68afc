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

A store is checked whole before any command reads or writes it (:func:`check_is_store`):
a regular file (a FIFO or a device such as ``/dev/null`` is refused without being
opened), SQLite's own integrity check, every table and column a command reads
(``STORE_COLUMNS``, for the store's schema version), and every JSON column (a run's
``config``, ``info`` and ``versions``, a curve row's ``metrics``, a sweep's ``spec``) a
JSON object — so a store damaged in its logic (a dropped table, a row edited by hand)
is refused with the table and row named, and never written. "Corrupted" is said of a
file SQLite cannot read as a database, only; a lock held by another process, a disk
that is full or a file-size limit (``ulimit -f``) get their own sentences
(:func:`store_error`), and a lock is waited for ``LOCK_WAIT_S`` seconds at most.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import sqlite3
import stat
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


#: Seconds a command waits for a lock another process holds on the store before it says so.
LOCK_WAIT_S = 5.0


def _schema_columns() -> dict[str, list[str]]:
    """Each table of ``SCHEMA`` and its columns, read from SQLite itself."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        db.close()


#: The tables and columns of a store at ``SCHEMA_VERSION``; every one is read by a command.
STORE_COLUMNS = _schema_columns()
#: Columns added by migration v -> v + 1: a store at version <= v may lack them.
_ADDED = {v: [m.group(1) for text in statements
              for m in [re.search(r"ADD COLUMN (\w+)", text)] if m]
          for v, statements in MIGRATIONS.items()}
#: The JSON columns, what each holds, and how a row is named: (table, column, row, nullable).
JSON_COLUMNS = (("runs", "config", "'run ' || run_id", False),
                ("runs", "info", "'run ' || run_id", False),
                ("runs", "versions", "'run ' || run_id", True),
                ("curve", "metrics", "'run ' || run_id || ' at step ' || step", False),
                ("sweeps", "spec", "'sweep ' || quote(name)", False))


def store_error(path, err: Exception, doing: str = "read", waited: float | None = None
                ) -> ScalelabError:
    """One sentence for an SQLite error met while a store is read or written (``doing``:
    "read" or "written"): "corrupted" only where SQLite says the file is not a database or
    is malformed; a lock, a full disk and a file-size limit each say what they are."""
    text = str(err)
    name = getattr(err, "sqlite_errorname", "") or ""
    if "locked" in text or name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return ScalelabError(f"{path}: another process holds a lock on this run store (waited "
                             f"{LOCK_WAIT_S if waited is None else waited:g} s); wait for it "
                             f"to finish, or give another store path — "
                             f"{'nothing was written' if doing == 'read' else 'the runs recorded so far are kept'}.")
    if name.startswith(("SQLITE_FULL", "SQLITE_IOERR")) or "disk is full" in text \
            or "disk I/O error" in text:
        kept = {"written": "the runs recorded so far are kept",
                "created": "no store was left"}.get(doing, "the store itself was left untouched")
        return ScalelabError(f"{path}: the run store could not be {doing} ({text}: the disk is "
                             f"full, a file-size limit (ulimit -f) was reached or the disk "
                             f"failed); free space or raise the limit and run again — {kept}.")
    if "not a database" in text or "malformed" in text or "integrity check" in text \
            or name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return ScalelabError(f"{path}: corrupted SQLite file ({text}); restore it from a backup "
                             f"or give another store path — it was left untouched.")
    return ScalelabError(f"{path}: the run store could not be {doing} ({text}); check the file "
                         f"and its folder, then run again — it was left untouched.")


def damaged(path, what: str) -> ScalelabError:
    """The sentence for a store whose pages are sound but whose content is not a store's."""
    return ScalelabError(f"{path}: the run store is damaged: {what}; it was changed outside "
                         f"scalelab — restore it from a backup or give another store path "
                         f"(it was left untouched).")


def read_json(path, text, where: str):
    """A JSON column's value as a dict; the row is named if it is not a JSON object."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as err:
        shown = "NULL" if text is None else repr(text if len(text) < 40 else text[:37] + "...")
        raise damaged(path, f"{where} is not valid JSON ({shown}: "
                            f"{str(err).split(':')[0].rstrip('.')})") from None
    if not isinstance(value, dict):
        raise damaged(path, f"{where} holds a JSON {_json_kind(value)}, not an object")
    return value


def _json_kind(value) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


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


def _nans(values: dict) -> dict:
    """A curve row's metrics with ``null`` (a value that was not finite) as NaN."""
    return {key: float("nan") if value is None else value for key, value in values.items()}


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
        try:
            self._db = connect_readonly(self.path, timeout=LOCK_WAIT_S)
            self._db.execute("PRAGMA query_only=ON")
        except sqlite3.Error as err:
            raise store_error(self.path, err, "read") from None

    def _check_path(self, create: bool) -> None:
        from scalelab._files import check_name_lengths

        check_name_lengths(self.path)  # before any stat: ENAMETOOLONG is no sentence
        if self.path.is_dir():
            raise ScalelabError(f"{self.path}: is a folder, not a run store; give the path of "
                                f"a runs.db file.")
        if self.path.exists() or self.path.is_symlink():
            check_is_store(self.path, empty_ok=create)
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
            facts = run_facts(read_json(self.path, info, f"runs.info of run {run_id}"))
            for name, value in zip(extra, row[7:]):
                if value is not None:
                    facts[name] = value  # versions: JSON text, as in CSV exports
            config = read_json(self.path, config, f"runs.config of run {run_id}")
            records.append({"run_id": run_id, **config, "sweep": sweeps,
                            "status": status, "attempts": attempts, **facts, "error": error})
        return pd.DataFrame.from_records(records)

    def curves(self, run_id: str | None = None) -> pd.DataFrame:
        """One row per run × evaluation step: run_id and the metrics recorded there."""
        query, args = "SELECT run_id, metrics FROM curve", ()
        if run_id is not None:
            query, args = query + " WHERE run_id=?", (run_id,)
        rows = [{"run_id": rid, **_nans(read_json(self.path, metrics,
                                                  f"curve.metrics of run {rid} at step {step}"))}
                for rid, step, metrics in self._db.execute(
                    query.replace("run_id, metrics", "run_id, step, metrics")
                    + " ORDER BY run_id, step", args)]
        return pd.DataFrame.from_records(rows)

    def metrics(self) -> list[str]:
        """The names the store's curve rows record (step, val_loss, ...), sorted."""
        names: set[str] = set()
        for rid, step, metrics in self._db.execute("SELECT run_id, step, metrics FROM curve"):
            names.update(read_json(self.path, metrics, f"curve.metrics of run {rid} at step "
                                                       f"{step}"))
        return sorted(names)

    def latest(self, metric: str = "val_loss") -> pd.DataFrame:
        """Per run, its latest curve row's ``step`` and ``metric`` (running runs too: the
        sweep writes rows as they come)."""
        rows = []
        for rid, step, metrics in self._db.execute(  # SQLite: the max row's values
                "SELECT run_id, MAX(step), metrics FROM curve GROUP BY run_id"):
            values = _nans(read_json(self.path, metrics,
                                     f"curve.metrics of run {rid} at step {step}"))
            rows.append((rid, step, values.get(metric, float("nan"))))
        return pd.DataFrame.from_records(rows, columns=["run_id", "step", metric])

    def sweeps(self) -> list[tuple[str, dict]]:
        return [(name, read_json(self.path, spec, f"sweeps.spec of sweep {name!r}"))
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
        try:
            with atomic_path(output) as tmp:  # a name of this process's own: no collisions
                _write_table(table, tmp, suffix)
        except OSError as err:  # a full disk, a file-size limit: the store is not at fault
            raise ScalelabError(f"{output}: the export could not be written "
                                f"({(err.strerror or type(err).__name__).lower()}: the disk is "
                                f"full or a file-size limit (ulimit -f) was reached); free space "
                                f"or raise the limit — the store {self.path} was only read and "
                                f"no partial export was left.") from None
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
    index) — read-only commands work on it, and nothing is written. So is a store whose
    ``-shm`` cannot be written for a file-size limit (``ulimit -f``).
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
        if wal.exists() and wal.stat().st_size:
            raise  # committed data in the -wal: only a real read of it is right
        # the -shm index cannot be made: on read-only media ("unable to open"), or where a
        # file-size limit (ulimit -f) stops it ("disk I/O error")
        cannot_index = "disk I/O error" in str(err) or (
            "unable to open" in str(err)
            and not (folder_writable and not _on_readonly_mount(Path(path))))
        if not cannot_index:
            raise
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, timeout=timeout,
                           isolation_level=None)


def _on_readonly_mount(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):
        return False


def _kind_of(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


def check_is_store(path: Path, empty_ok: bool = False) -> None:
    """Raise one sentence unless ``path`` is a scalelab run store this version understands,
    whole: a regular file, sound pages, every table and column of its schema version, and
    every JSON column an object. ``empty_ok``: a zero-byte file passes (a writer makes a
    new store in it); a reader refuses it."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise ScalelabError(f"{path}: cannot be read ({(err.strerror or 'error').lower()}); "
                            f"give the path of a runs.db file.") from None
    if not stat.S_ISREG(mode):  # a FIFO would block the open, /dev/null would swallow writes
        raise ScalelabError(f"{path}: is {_kind_of(mode)}, not a run store file; give the path "
                            f"of a runs.db file — it was not opened.")
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as err:
        raise ScalelabError(f"{path}: cannot be read ({(err.strerror or 'error').lower()}); "
                            f"check its permissions.") from None
    if head and head != b"SQLite format 3\x00":
        raise ScalelabError(f"{path}: not a SQLite file; give the path of a scalelab run "
                            f"store (runs.db) — this file was left untouched.")
    if not head:
        if empty_ok:
            return
        raise ScalelabError(f"{path}: an empty file (0 bytes), not a run store; run a sweep "
                            f"into it first (scalelab sweep run SPEC --store {path}) or give the "
                            f"path of a runs.db.")
    try:
        db = connect_readonly(path, timeout=LOCK_WAIT_S)
        try:
            problems = [line.strip() for r in db.execute("PRAGMA quick_check(3)")
                        for line in str(r[0]).splitlines()
                        if line.strip() and not line.startswith("***")]
            if problems != ["ok"]:  # the check's result is used: a damaged store is refused
                raise sqlite3.DatabaseError(f"integrity check: {(problems or ['failed'])[0]}")
            _check_logic(path, db)
        finally:
            db.close()
    except sqlite3.Error as err:
        raise store_error(path, err, "read") from None


def _check_logic(path: Path, db: sqlite3.Connection) -> None:
    """Every table and column a command reads, and every JSON column an object."""
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "runs" not in tables or "meta" not in tables:
        raise ScalelabError(f"{path}: a SQLite file that is not a scalelab run store "
                            f"(no runs/meta tables); give another store path — it was left "
                            f"untouched.")
    row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None:
        raise damaged(path, "its meta table has no schema_version")
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise damaged(path, f"its schema_version {row[0]!r} is not a number") from None
    if version > SCHEMA_VERSION:
        raise ScalelabError(f"{path}: run store schema version {version} is newer than this "
                            f"scalelab understands ({SCHEMA_VERSION}); upgrade scalelab.")
    if version < 1:
        raise damaged(path, f"its schema_version {version} is not one scalelab wrote")
    optional = {c for v, added in _ADDED.items() if v >= version for c in added}
    for table, columns in STORE_COLUMNS.items():
        if table not in tables:
            raise damaged(path, f"its table {table!r} is missing")
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        missing = [c for c in columns if c not in have and c not in optional]
        if missing:
            raise damaged(path, f"its table {table!r} has no column {missing[0]!r}")
    for table, column, name, nullable in JSON_COLUMNS:
        have = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        if column not in have:
            continue  # an older schema without it (checked above)
        # SQLite's json_valid screens; Python's reader decides (it reads NaN, which the
        # curve of a diverged run holds and json_valid refuses)
        null = f"{column} IS NOT NULL AND " if nullable else f"{column} IS NULL OR "
        for where, text in db.execute(
                f"SELECT {name}, {column} FROM {table} WHERE {null}CASE WHEN "
                f"json_valid({column}) THEN json_type({column}) != 'object' ELSE 1 END"):
            read_json(path, text, f"{table}.{column} of {where}")
    # the values inside: a curve row's step a whole number, and a run's config the
    # settings of a run (each of the type its field declares)
    row = db.execute("SELECT run_id, step FROM curve WHERE typeof(step) != 'integer' "
                     "LIMIT 1").fetchone()
    if row is not None:
        raise damaged(path, f"curve.step of run {row[0]} is {row[1]!r}, not a whole number")
    for run_id, text in db.execute("SELECT run_id, config FROM runs"):
        _check_config(path, read_json(path, text, f"runs.config of run {run_id}"), run_id)


#: Settings a run's config has held since the first store version.
CORE_CONFIG = ("family", "width", "samples")


def _check_config(path, config: dict, run_id: str) -> None:
    from scalelab._errors import SpecError
    from scalelab.config import RunConfig, coerce_fields

    missing = [key for key in CORE_CONFIG if key not in config]
    if missing:
        raise damaged(path, f"runs.config of run {run_id} has no {missing[0]!r}")
    known = set(RunConfig.field_names())
    try:
        coerce_fields(RunConfig, {k: v for k, v in config.items() if k in known},
                      f"runs.config of run {run_id}")
    except SpecError as err:
        raise damaged(path, str(err).rstrip(".")) from None
