"""The run store: schema migration, one writer, non-blocking readers, transactions,
refusal of foreign/corrupted files, export, and reading W&B offline runs back."""

import json
import os
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import scalelab
from scalelab import ScalelabError
from scalelab.config import RunConfig
from scalelab.sweep.store import SCHEMA_VERSION, RunStore

# The schema of version 1 stores, as scalelab 0.1's first release wrote it.
V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sweeps (name TEXT PRIMARY KEY, spec TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
        ('pending', 'running', 'finished', 'diverged', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0, info TEXT NOT NULL DEFAULT '{}',
    error TEXT, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE sweep_runs (sweep TEXT NOT NULL, run_id TEXT NOT NULL, PRIMARY KEY (sweep, run_id));
CREATE TABLE curve (run_id TEXT NOT NULL, step INTEGER NOT NULL, metrics TEXT NOT NULL,
    PRIMARY KEY (run_id, step));
INSERT INTO meta VALUES ('schema_version', '1');
"""

ROWS = [{"step": 0, "samples_seen": 0, "flops": 0.0, "lr": 1e-3, "train_loss": float("nan"),
         "val_loss": 1.5},
        {"step": 10, "samples_seen": 320, "flops": 9.6e6, "lr": 5e-4, "train_loss": 0.9,
         "val_loss": 0.75}]


def _finished_store(path, widths=(4, 8)):
    cfgs = [RunConfig(width=w, field_size=16, steps=10) for w in widths]
    with RunStore(path) as store:
        store.add_sweep("s", {"name": "s"}, cfgs)
        for cfg in cfgs:
            store.mark_running(cfg.run_id)
            store.record_result(cfg.run_id, "finished", ROWS,
                                {"params": 100 * cfg.width, "host": "h1", "device": "cpu",
                                 "versions": {"torch": "x"}})
    return cfgs


def test_v1_store_is_migrated_in_place(tmp_path):
    path = tmp_path / "runs.db"
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    cfg = RunConfig(width=4)
    db.execute("INSERT INTO runs VALUES (?, ?, 'finished', 1, ?, NULL, 0, 0)",
               (cfg.run_id, json.dumps(cfg.to_dict()),
                json.dumps({"params": 7, "host": "old-host", "device": "cpu"})))
    db.execute("INSERT INTO curve VALUES (?, 0, ?)", (cfg.run_id, json.dumps(ROWS[1])))
    db.commit()
    db.close()

    with RunStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
    db = sqlite3.connect(path)
    assert db.execute("SELECT host, device FROM runs").fetchone() == ("old-host", "cpu")
    db.close()
    table = scalelab.load_runs(path)
    assert table["val_loss"].tolist() == [0.75] and table["params"].tolist() == [7]


def test_second_writer_is_refused_and_lock_dies_with_its_holder(tmp_path):
    path = tmp_path / "runs.db"
    _finished_store(path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from scalelab.sweep.store import RunStore; "
         f"s = RunStore({str(path)!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ScalelabError, match="another process .*pid .* is writing"):
            RunStore(path)
        # readers are not writers: they still read
        assert len(scalelab.load_runs(path)) == 4
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with RunStore(path) as store:  # the kernel released the lock of the killed holder
        assert store.status(RunConfig(width=4, field_size=16, steps=10).run_id) == "finished"


def test_readers_do_not_wait_for_an_open_write_transaction(tmp_path):
    path = tmp_path / "runs.db"
    cfgs = _finished_store(path)
    writer = RunStore(path)
    try:
        writer._db.execute("BEGIN IMMEDIATE")
        writer._db.execute("DELETE FROM curve")  # not committed
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.close()
        table = scalelab.load_runs(path)  # reads the last committed state
        assert sorted(table["run_id"].unique()) == sorted(c.run_id for c in cfgs)
        assert len(table) == 4
        writer._db.execute("ROLLBACK")
    finally:
        writer.close()


def test_a_failing_write_leaves_the_previous_result_whole(tmp_path):
    path = tmp_path / "runs.db"
    cfgs = _finished_store(path, widths=(4,))
    with RunStore(path) as store:
        with pytest.raises(KeyError):  # second row has no step: fails mid-transaction
            store.record_result(cfgs[0].run_id, "finished", [{"step": 0, "val_loss": 9.0},
                                                             {"val_loss": 8.0}], {})
    table = scalelab.load_runs(path)
    assert table["val_loss"].tolist() == [1.5, 0.75]


@pytest.mark.parametrize("content, expected", [
    (b"SQLite format 3\x00" + b"\x07" * 4000, "corrupted SQLite file"),
    (b"station,temp\n1,2\n", "not a SQLite file"),
])
def test_corrupted_or_foreign_file_is_refused_and_untouched(tmp_path, content, expected):
    path = tmp_path / "runs.db"
    path.write_bytes(content)
    with pytest.raises(ScalelabError, match=expected):
        RunStore(path)
    with pytest.raises(ScalelabError, match=expected):
        scalelab.load_runs(path)
    assert path.read_bytes() == content


def test_foreign_sqlite_and_newer_schema_are_refused(tmp_path):
    foreign = tmp_path / "other.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE stations (id INTEGER)")
    db.commit()
    db.close()
    before = foreign.read_bytes()
    with pytest.raises(ScalelabError, match="not a scalelab run store"):
        RunStore(foreign)
    assert foreign.read_bytes() == before

    newer = tmp_path / "newer.db"
    _finished_store(newer)
    db = sqlite3.connect(newer)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(ScalelabError, match="schema version 99 is newer"):
        RunStore(newer)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_round_trips(tmp_path, suffix):
    path = tmp_path / "runs.db"
    cfgs = _finished_store(path)
    out = tmp_path / f"runs{suffix}"
    result = subprocess.run([sys.executable, "-m", "scalelab.cli", "runs", "export", str(path),
                             "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert len(table) == 4
    assert sorted(table["width"].unique()) == [4, 8]
    assert sorted(table["run_id"].unique()) == sorted(c.run_id for c in cfgs)
    # the numbers written are the numbers given
    assert table.groupby("run_id")["val_loss"].apply(list).tolist() == [[1.5, 0.75]] * 2
    assert table["lr"].unique().tolist() == [RunConfig().lr]  # the config's peak rate
    assert sorted(table["lr_step"].unique()) == [5e-4, 1e-3]  # the curve's rate at each step
    # and `scalelab.load_runs` reads the export back
    assert len(scalelab.load_runs(out)) == 4


def test_runs_show_and_list(tmp_path):
    path = tmp_path / "runs.db"
    cfgs = _finished_store(path)
    shown = subprocess.run([sys.executable, "-m", "scalelab.cli", "runs", "show", str(path),
                            cfgs[0].run_id[:6]], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert cfgs[0].run_id in shown.stdout and "0.75" in shown.stdout
    listed = subprocess.run([sys.executable, "-m", "scalelab.cli", "runs", "list", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert all(c.run_id in listed.stdout for c in cfgs) and "finished" in listed.stdout


def test_load_runs_reads_wandb_offline_folders(tmp_path):
    """Runs logged offline with the real wandb are read back from their .wandb logs."""
    from scalelab.runs.tracking import WandbTracker

    rng = np.random.default_rng(0)
    tracker = WandbTracker("p", group="mysweep", mode="offline", dir=tmp_path)
    other = WandbTracker("p", group="another", mode="offline", dir=tmp_path)
    logged = {}
    for width in (4, 8):
        cfg = RunConfig(width=width, samples=256)
        rows = [{"step": s, "val_loss": float(v), "train_loss": float("nan") if s == 0 else 1.0}
                for s, v in zip((0, 5, 10), rng.uniform(0.1, 2.0, 3))]
        assert tracker.log_run(cfg.to_dict(), cfg.run_id, "finished", rows,
                               {"params": 11 * width}) is not None
        logged[cfg.run_id] = rows
    stray = RunConfig(width=99)
    other.log_run(stray.to_dict(), stray.run_id, "diverged", ROWS, {})

    table = scalelab.load_runs(tmp_path / "wandb", sweep="mysweep")
    assert sorted(table["run_id"].unique()) == sorted(logged)
    for run_id, rows in logged.items():
        got = table[table["run_id"] == run_id].sort_values("step")
        assert got["step"].tolist() == [0, 5, 10]
        np.testing.assert_allclose(got["val_loss"], [r["val_loss"] for r in rows], rtol=1e-12)
        assert np.isnan(got["train_loss"].iloc[0])
        assert (got["samples"] == 256).all() and (got["params"] == 11 * got["width"]).all()
    everything = scalelab.load_runs(tmp_path, status=None)
    assert stray.run_id in set(everything["run_id"])
    assert set(everything.loc[everything["run_id"] == stray.run_id, "status"]) == {"diverged"}


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(ScalelabError, match="no run store here"):
        scalelab.load_runs(tmp_path / "nope.db")
    with pytest.raises(ScalelabError, match="no W&B runs"):
        scalelab.load_runs(tmp_path)
    os.environ.pop("WANDB_API_KEY", None)
    with pytest.raises(ScalelabError, match="needs WANDB_API_KEY"):
        scalelab.load_runs("wandb:me/project")


def test_run_and_curve_columns_of_the_same_name_never_get_merge_suffixes(tmp_path):
    """The run's total wall time and the curve's time at each step were merged into
    wall_time_s_x / wall_time_s_y; now the run's keeps its name and the curve's gets _step."""
    path = tmp_path / "runs.db"
    cfg = RunConfig(width=4, field_size=16, steps=10)
    rows = [{**row, "wall_time_s": t} for row, t in zip(ROWS, (0.25, 2.0))]
    with RunStore(path) as store:
        store.add_sweep("s", {"name": "s"}, [cfg])
        store.record_result(cfg.run_id, "finished", rows, {"params": 7, "wall_time_s": 2.5})
    for table in (scalelab.load_runs(path), scalelab.load_runs(_export(path, "runs.csv"))):
        assert not [c for c in table.columns if c.endswith(("_x", "_y"))], list(table.columns)
        assert table["wall_time_s"].tolist() == [2.5, 2.5]  # the run's, on each of its rows
        assert table["wall_time_s_step"].tolist() == [0.25, 2.0]  # the curve's, per step
        assert table["lr_step"].tolist() == [1e-3, 5e-4] and set(table["lr"]) == {RunConfig().lr}


def _export(path, name):
    from scalelab.runs import StoreReader

    with StoreReader(path) as store:
        return store.export(path.with_name(name))


def _mixed_store(path):
    """Sweep a: a finished and a failed run; sweep b: a diverged run and a's finished one."""
    finished, failed, diverged = (RunConfig(width=w, field_size=16, steps=10) for w in (4, 6, 8))
    with RunStore(path) as store:
        store.add_sweep("a", {"name": "a"}, [finished, failed])
        store.add_sweep("b", {"name": "b"}, [diverged, finished])
        store.record_result(finished.run_id, "finished", ROWS, {"params": 1})
        store.record_result(diverged.run_id, "diverged", ROWS[:1], {"params": 2})
        store.record_failure(failed.run_id, "Traceback: boom")
    return finished, failed, diverged


def test_status_and_sweep_are_honoured_by_every_source(tmp_path):
    path = tmp_path / "runs.db"
    finished, failed, diverged = _mixed_store(path)
    table = scalelab.load_runs(path, status=None)
    sources = {"store": path, "csv": _export(path, "runs.csv"),
               "parquet": _export(path, "runs.parquet"), "frame": table}
    for name, source in sources.items():
        def ids(**kw):
            return set(scalelab.load_runs(source, **kw)["run_id"])

        assert ids() == {finished.run_id, diverged.run_id}, name  # default: runs with a result
        assert ids(status=None) == {finished.run_id, failed.run_id, diverged.run_id}, name
        assert ids(status="failed") == {failed.run_id}, name
        assert ids(status=["finished"], sweep="b") == {finished.run_id}, name
        assert ids(sweep="a", status=None) == {finished.run_id, failed.run_id}, name
        assert ids(sweep="nope") == set(), name
    with pytest.raises(ScalelabError, match="unknown status 'done'; valid statuses are"):
        scalelab.load_runs(path, status="done")
    published = pd.DataFrame({"params": [1e6, 1e7], "val_loss": [2.0, 1.5]})
    assert len(scalelab.load_runs(published)) == 2  # no status column: results only
    with pytest.raises(ScalelabError, match="no 'sweep' column"):
        scalelab.load_runs(published, sweep="a")


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "scalelab.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def test_the_store_holds_strict_json_and_reads_nan_back(tmp_path):
    """The step-0 row's NaN train_loss is written as null, which this machine's SQLite
    (``sqlite3.sqlite_version``) reads with its JSON functions, and read back as NaN."""
    path = tmp_path / "runs.db"
    cfgs = _finished_store(path)
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM curve WHERE NOT json_valid(metrics)").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM runs WHERE NOT json_valid(info)").fetchone() == (0,)
    assert db.execute("SELECT json_extract(metrics, '$.train_loss'), json_extract(metrics, "
                      "'$.val_loss') FROM curve WHERE step=0").fetchall() == [(None, 1.5)] * 2
    db.close()
    table = scalelab.load_runs(path)
    first = table[table["step"] == 0]
    assert len(first) == 2 and first["train_loss"].isna().all()
    assert table[table["step"] == 10]["train_loss"].tolist() == [0.9, 0.9]
    with RunStore(path) as store:  # an infinite value as well: null, read back as NaN
        store.mark_running(cfgs[0].run_id)
        store.add_rows(cfgs[0].run_id, [{"step": 20, "val_loss": float("inf"),
                                         "train_loss": np.float32("nan")}])
        assert np.isnan(store.latest().set_index("run_id").loc[cfgs[0].run_id, "val_loss"])


def _store_with_nan_text(path):
    """A store as scalelab wrote it before strict JSON: ``NaN`` in the curve's JSON text,
    and a running run whose latest row is its step-0 row (what live monitoring reads)."""
    cfgs = [RunConfig(width=w, field_size=16, steps=10) for w in (4, 8)]
    with RunStore(path) as store:
        store.add_sweep("s", {"name": "s"}, cfgs)
    db = sqlite3.connect(path)
    for cfg, status, rows in ((cfgs[0], "finished", ROWS), (cfgs[1], "running", ROWS[:1])):
        db.execute("UPDATE runs SET status=?, info=? WHERE run_id=?",
                   (status, json.dumps({"params": 100 * cfg.width, "wall_time_s": float("nan")}),
                    cfg.run_id))
        db.executemany("INSERT INTO curve VALUES (?, ?, ?)",
                       [(cfg.run_id, r["step"], json.dumps(r)) for r in rows])
    db.commit()
    assert db.execute("SELECT count(*) FROM curve WHERE NOT json_valid(metrics)").fetchone() == (2,)
    db.close()
    return cfgs


def test_a_store_written_with_nan_is_read_by_every_command(tmp_path):
    """``scalelab runs list`` crashed with "malformed JSON" on such a store (SQLite 3.40)."""
    path = tmp_path / "runs.db"
    cfgs = _store_with_nan_text(path)
    for args in ((), ("--metric", "val_loss"), ("--metric", "train_loss"),
                 ("--status", "running"), ("--sort=-val_loss",)):
        listed = _cli("runs", "list", path, *args)
        assert listed.returncode == 0, listed.stderr
        assert cfgs[1].run_id in listed.stdout and "malformed" not in listed.stderr
    line = next(x for x in _cli("runs", "list", path).stdout.splitlines() if cfgs[1].run_id in x)
    assert [float(v) for v in line.split()[-3:-1]] == [0, 1.5]  # the running run's latest step and val_loss
    shown = _cli("runs", "show", path, cfgs[1].run_id[:8])
    assert shown.returncode == 0 and "1.5" in shown.stdout, shown.stderr
    exported = _cli("runs", "export", path, "-o", tmp_path / "runs.csv")
    assert exported.returncode == 0, exported.stderr
    assert pd.read_csv(tmp_path / "runs.csv")["train_loss"].isna().sum() == 2
    table = scalelab.load_runs(path, status=None)
    assert table["train_loss"].isna().sum() == 2 and sorted(table["step"]) == [0, 0, 10]
    # a writer that opens the store rewrites those rows as strict JSON, values unchanged
    with RunStore(path):
        pass
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM curve WHERE NOT json_valid(metrics)").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM runs WHERE NOT json_valid(info)").fetchone() == (0,)
    db.close()
    again = scalelab.load_runs(path, status=None)
    curve = ["run_id", "step", "samples_seen", "flops", "train_loss", "val_loss"]
    pd.testing.assert_frame_equal(again[curve], table[curve])
