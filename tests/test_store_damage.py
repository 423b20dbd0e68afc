"""A damaged store, a store on read-only media, an unreadable checkpoint, two writers of one
file (issue 18): refused in one sentence and never written, read read-only, started over
with a warning recorded, and both writers succeed."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scalelab._errors import ScalelabError
from scalelab.cli import main
from scalelab.config import RunConfig
from scalelab.sweep.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(width=4, samples=16, val_samples=8, field_size=16, steps=6, eval_every=2,
            batch_size=4)


def _fill_store(path: Path, runs: int = 40) -> list[RunConfig]:
    """A store of ``runs`` finished runs with long curves: many pages, so that 4 KB in the
    middle land on pages in use."""
    configs = [RunConfig(width=4 + i, samples=16) for i in range(runs)]
    with RunStore(path) as store:
        store.add_sweep("s", {"name": "s"}, configs)
        for cfg in configs:
            store.mark_running(cfg.run_id)
            store.record_result(cfg.run_id, "finished",
                                [{"step": k, "val_loss": 1 / (k + 1), "note": "x" * 100}
                                 for k in range(20)], {"params": 10 * cfg.width})
    return configs


def _cli(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def test_garbage_in_the_middle_is_refused_and_the_file_never_written(tmp_path, capsys,
                                                                     monkeypatch):
    from scalelab.runs import load_runs

    store = tmp_path / "runs.db"
    _fill_store(store)
    size = store.stat().st_size
    assert size > 16 * 4096
    with open(store, "r+b") as fh:  # 4 KB of garbage on a page boundary in the middle
        fh.seek(size // 2 // 4096 * 4096)
        fh.write(os.urandom(4096))
    data = store.read_bytes()
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: s\nparameters:\n  width: {value: 4}\n  samples: {value: 16}\n"
                    f"scalelab:\n  store: {store}\n")
    monkeypatch.chdir(tmp_path)
    for argv in (["sweep", "run", spec, "--no-wandb", "--quiet"], ["runs", "list", store],
                 ["runs", "export", store, "-o", tmp_path / "x.csv"],
                 ["report", store, "-o", tmp_path / "r.pdf"]):
        rc, out, err = _cli(argv, capsys)
        assert rc == 2 and "Traceback" not in out + err
        assert "corrupted SQLite file" in err and "left untouched" in err, err
        assert err.count("\n") == 1
    with pytest.raises(ScalelabError, match="corrupted SQLite file"):
        load_runs(store)
    with pytest.raises(ScalelabError, match="corrupted SQLite file"):
        RunStore(store)
    assert store.read_bytes() == data  # never written
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "r.pdf").exists()


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` made read-only as media are: chmod for a user; a read-only bind mount
    for root (whom permissions do not stop); skip where neither is possible."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip("running as root without mount rights: no read-only folder to test on")
    try:
        remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)],
                                 capture_output=True)
        if remount.returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_a_healthy_wal_store_on_read_only_media_is_read_not_called_corrupted(tmp_path, capsys):
    from scalelab.runs import StoreReader, load_runs

    media = tmp_path / "media"
    media.mkdir()
    store = media / "runs.db"
    configs = _fill_store(store, runs=3)
    for leftover in media.glob("runs.db?*"):  # as copied onto media: the file alone
        leftover.unlink()
    assert store.read_bytes()[18:20] == b"\x02\x02"  # WAL mode in the header
    data = store.read_bytes()
    with read_only(media):
        table = load_runs(store)
        assert set(table["run_id"]) == {c.run_id for c in configs}
        assert len(table) == 3 * 20
        with StoreReader(store) as reader:
            assert reader.status(configs[0].run_id) == "finished"
        rc, out, err = _cli(["runs", "list", store], capsys)
        assert rc == 0 and configs[0].run_id in out, err
        rc, out, err = _cli(["runs", "show", store, configs[1].run_id], capsys)
        assert rc == 0 and configs[1].run_id in out, err
        rc, out, err = _cli(["runs", "export", store, "-o", tmp_path / "runs.csv"], capsys)
        assert rc == 0, err
        # a writing command says the store cannot be written, before starting
        spec = tmp_path / "spec.yaml"
        spec.write_text("name: s\nparameters:\n  width: {value: 4}\n  samples: {value: 16}\n"
                        f"scalelab:\n  store: {store}\n")
        rc, out, err = _cli(["sweep", "run", spec, "--no-wandb", "--quiet"], capsys)
        assert rc == 2 and "cannot be written" in err and "Traceback" not in err, err
        assert sorted(p.name for p in media.iterdir()) == ["runs.db"]
    assert store.read_bytes() == data
    import pandas as pd

    assert len(pd.read_csv(tmp_path / "runs.csv")) == 60


def test_an_unreadable_checkpoint_is_moved_aside_and_the_run_starts_over(tmp_path):
    import torch

    from scalelab.train import train
    from scalelab.train.checkpoint import load_checkpoint, save_checkpoint

    cfg = RunConfig(**TINY, checkpoint_every=2)
    folder = tmp_path / "ck"
    path = save_checkpoint(folder, {"run_id": cfg.run_id, "status": "running", "step": 2,
                                    "model": {"w": torch.zeros(3)}})
    path.write_bytes(path.read_bytes()[:40])  # truncated, as by a full disk
    warnings: list = []
    with pytest.warns(RuntimeWarning, match="could not be read"):
        assert load_checkpoint(folder, cfg.run_id, warnings=warnings) is None
    assert (folder / "last.pt.unreadable").exists() and not path.exists()
    assert "started over" in warnings[0]

    path.write_bytes(b"not a checkpoint at all" * 10)
    reference = train(cfg)
    with pytest.warns(RuntimeWarning, match="could not be read"):
        result = train(cfg, checkpoint_dir=folder)
    assert result.status == "finished"
    assert "could not be read" in result.info["warning"]
    assert result.info["resumed_from_step"] is None
    assert [r["val_loss"] for r in result.rows] == [r["val_loss"] for r in reference.rows]


def test_a_sweep_run_with_an_unreadable_checkpoint_finishes_with_the_warning_in_the_store(
        tmp_path):
    from scalelab.runs import StoreReader, load_runs
    from scalelab.sweep import parse_spec, run_sweep

    store = tmp_path / "runs.db"
    spec = parse_spec({"name": "ck", "parameters": {k: {"value": v} for k, v in
                                                    {**TINY, "checkpoint_every": 2}.items()},
                       "scalelab": {"workers": 1, "store": str(store)}})
    run_id = spec.runs[0].run_id
    checkpoint = tmp_path / "checkpoints" / run_id / "last.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(os.urandom(2048))  # as left by a killed, damaged write
    outcome = run_sweep(spec, progress=False, tracking=False)
    assert outcome.counts == {"finished": 1} and outcome.retries == 0
    with StoreReader(store) as reader:
        assert reader.attempts(run_id) == 1
        run = reader.runs().iloc[0]
    assert run["status"] == "finished" and "could not be read" in run["warning"]
    table = load_runs(store)
    assert table["step"].tolist() == [0, 2, 4, 6]
    assert table["warning"].str.contains("started over").all()


WRITER = """
import sys
from pathlib import Path
from scalelab._files import atomic_path
path, mark = Path(sys.argv[1]), sys.argv[2]
for i in range(200):
    with atomic_path(path) as tmp:
        tmp.write_text((mark * 1000 + "\\n") * 50)
"""


def test_two_processes_writing_one_file_both_succeed_and_it_is_never_half_written(tmp_path):
    target = tmp_path / "report.pdf"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(target), mark], env=env,
                              stderr=subprocess.PIPE, text=True) for mark in "ab"]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    text = target.read_text()
    assert text in ((("a" * 1000 + "\n") * 50), (("b" * 1000 + "\n") * 50))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]


def test_two_exports_of_one_store_to_one_path_both_succeed(tmp_path):
    store = tmp_path / "runs.db"
    _fill_store(store, runs=20)
    out = tmp_path / "runs.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "scalelab.cli", "runs", "export", str(store),
                               "-o", str(out)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    import pandas as pd

    assert len(pd.read_csv(out)) == 20 * 20
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.slow
def test_two_processes_writing_the_same_report_both_succeed(tiny_store, tmp_path):
    out = tmp_path / "report.pdf"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    procs = [subprocess.Popen([sys.executable, "-m", "scalelab.cli", "report", str(tiny_store),
                               "-o", str(out)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-2000:]
    assert out.read_bytes().startswith(b"%PDF") and out.read_bytes().rstrip().endswith(b"%%EOF")
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]
    shutil.rmtree(tmp_path)


# -- issue 25: stores damaged in their logic, not their pages ---------------------------------
import re  # noqa: E402
import sqlite3  # noqa: E402

DAMAGE = {  # name -> SQL run on a healthy store (None: a special file, made below)
    "drop-curve": "DROP TABLE curve",
    "drop-sweeps": "DROP TABLE sweeps",
    "drop-sweep-runs": "DROP TABLE sweep_runs",
    "drop-column-error": "ALTER TABLE runs DROP COLUMN error",
    "drop-column-host": "ALTER TABLE runs DROP COLUMN host",
    "config-bad-json": "UPDATE runs SET config='{bad json' WHERE rowid=1",
    "config-json-list": "UPDATE runs SET config='[1, 2]' WHERE rowid=1",
    "config-json-number": "UPDATE runs SET config='3' WHERE rowid=2",
    "info-bad-json": "UPDATE runs SET info='nope' WHERE rowid=1",
    "versions-bad-json": "UPDATE runs SET versions='{' WHERE rowid=1",
    "metrics-bad-json": "UPDATE curve SET metrics='{bad' WHERE rowid=3",
    "metrics-json-list": "UPDATE curve SET metrics='[]' WHERE rowid=1",
    "spec-json-list": "UPDATE sweeps SET spec='[]'",
    "spec-bad-json": "UPDATE sweeps SET spec='{name: s'",
    "schema-version-word": "UPDATE meta SET value='abc' WHERE key='schema_version'",
    "schema-version-missing": "DELETE FROM meta WHERE key='schema_version'",
    "config-empty": "UPDATE runs SET config='{}' WHERE rowid=1",
    "config-width-word": "UPDATE runs SET config=json_set(config, '$.width', 'wide')",
    "config-options-list": "UPDATE runs SET config=json_set(config, '$.options', "
                           "json('[1]')) WHERE rowid=2",
    "step-word": "UPDATE curve SET step='abc' WHERE rowid=1",
    "step-float": "UPDATE curve SET step=2.5 WHERE rowid=1",
}
WORDS = {
    "drop-curve": "table 'curve' is missing", "drop-sweeps": "table 'sweeps' is missing",
    "drop-sweep-runs": "table 'sweep_runs' is missing",
    "drop-column-error": "table 'runs' has no column 'error'",
    "drop-column-host": "table 'runs' has no column 'host'",
    "config-bad-json": "runs.config of run", "config-json-list": "holds a JSON list",
    "config-json-number": "holds a JSON number", "info-bad-json": "runs.info of run",
    "versions-bad-json": "runs.versions of run", "metrics-bad-json": "curve.metrics of run",
    "metrics-json-list": "at step", "spec-json-list": "sweeps.spec of sweep 's'",
    "spec-bad-json": "sweeps.spec of sweep 's' is not valid JSON",
    "schema-version-word": "schema_version 'abc' is not a number",
    "schema-version-missing": "no schema_version",
    "config-empty": "has no 'family'", "config-width-word": "width must be int, got 'wide'",
    "config-options-list": "options must be dict",
    "step-word": "curve.step of run", "step-float": "is 2.5, not a whole number",
}
COMMANDS = {
    "list": ["runs", "list", "STORE"],
    "show": ["runs", "show", "STORE", "a"],
    "export": ["runs", "export", "STORE", "-o", "TMP/x.csv"],
    "report": ["report", "STORE", "-o", "TMP/r.pdf"],
    "predict": ["predict", "STORE", "--target", "params=1e5"],
    "sweep-run": ["sweep", "run", "TMP/spec.yaml", "--no-wandb", "--quiet"],
}


@pytest.fixture(scope="module")
def healthy_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("healthy") / "runs.db"
    _fill_store(store, runs=4)
    for leftover in store.parent.glob("runs.db?*"):
        leftover.unlink()
    return store


def _one_sentence(rc, out, err) -> str:
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("scalelab: error: "), err
    sentence = lines[0].removeprefix("scalelab: error: ")
    assert sentence.endswith(".") and not re.search(r"[a-z]\. [A-Z]", sentence), sentence
    return sentence


def _listing(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm"))}


def _damaged_copy(healthy: Path, tmp_path: Path, sql: str) -> Path:
    store = tmp_path / "runs.db"
    store.write_bytes(healthy.read_bytes())
    db = sqlite3.connect(store)
    db.execute(sql)
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    for leftover in tmp_path.glob("runs.db?*"):
        leftover.unlink()
    return store


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_store_damaged_in_its_logic_is_refused_by_every_command_and_never_written(
        damage, command, healthy_store, tmp_path, capsys, monkeypatch):
    store = _damaged_copy(healthy_store, tmp_path, DAMAGE[damage])
    (tmp_path / "spec.yaml").write_text(
        "name: s\nparameters:\n  width: {value: 4}\n  samples: {value: 16}\n"
        f"scalelab:\n  store: {store}\n")
    monkeypatch.chdir(tmp_path)
    data, before = store.read_bytes(), _listing(tmp_path)
    argv = [a.replace("STORE", str(store)).replace("TMP", str(tmp_path))
            for a in COMMANDS[command]]
    sentence = _one_sentence(*_cli(argv, capsys))
    assert WORDS[damage] in sentence, sentence
    assert "damaged" in sentence and "corrupted" not in sentence
    assert store.read_bytes() == data  # never written, not even by sweep run
    assert _listing(tmp_path) == before  # no export, report or lock file


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_zero_byte_store_is_refused_by_readers_and_made_a_store_by_the_writer(
        command, tmp_path, capsys, monkeypatch):
    store = tmp_path / "runs.db"
    store.write_bytes(b"")
    (tmp_path / "spec.yaml").write_text(
        "name: s\nparameters:\n  width: {value: 4}\n  samples: {value: 16}\n  steps: {value: 1}\n"
        "  field_size: {value: 16}\n  val_samples: {value: 4}\n  batch_size: {value: 4}\n"
        f"scalelab:\n  store: {store}\n  workers: 1\n")
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("STORE", str(store)).replace("TMP", str(tmp_path))
            for a in COMMANDS[command]]
    rc, out, err = _cli(argv, capsys)
    if command == "sweep-run":  # judged valid: an empty file becomes a new store
        assert rc == 0 and "1 finished" in out, err
        from scalelab.runs import load_runs

        assert len(load_runs(store)) == 2
        return
    sentence = _one_sentence(rc, out, err)
    assert "an empty file (0 bytes), not a run store" in sentence
    assert store.read_bytes() == b""


@pytest.mark.parametrize("path", ["/dev/null", "fifo"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_special_file_as_the_store_is_refused_without_blocking(path, command, tmp_path, capsys,
                                                                 monkeypatch):
    if path == "fifo":
        path = tmp_path / "runs.db"
        os.mkfifo(path)
    (tmp_path / "spec.yaml").write_text(
        f"name: s\nparameters:\n  width: {{value: 4}}\nscalelab:\n  store: {path}\n")
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("STORE", str(path)).replace("TMP", str(tmp_path))
            for a in COMMANDS[command]]
    sentence = _one_sentence(*_cli(argv, capsys))
    assert "named pipe" in sentence or "character device" in sentence \
        or "special file" in sentence, sentence
    assert _listing(tmp_path) <= {"spec.yaml", "runs.db"}


def test_a_store_with_a_diverged_run_nan_in_its_curve_is_not_called_damaged(tmp_path, capsys):
    """Python writes NaN into the JSON of a diverged run's curve (SQLite's json_valid
    refuses it): such a store is healthy and every command reads it."""
    store = tmp_path / "runs.db"
    configs = [RunConfig(width=4 + i, samples=16) for i in range(2)]
    with RunStore(store) as writer:
        writer.add_sweep("s", {"name": "s", "metric": {"name": "val_loss"}}, configs)
        for cfg in configs:
            writer.mark_running(cfg.run_id)
        writer.record_result(configs[0].run_id, "diverged",
                             [{"step": 0, "val_loss": 1.0}, {"step": 2, "val_loss": float("nan")}],
                             {"params": 10})
        writer.record_result(configs[1].run_id, "finished",
                             [{"step": 0, "val_loss": float("inf")}, {"step": 2, "val_loss": 0.5}],
                             {"params": 20})
    for argv in (["runs", "list", store], ["runs", "list", store, "--metric", "val_loss"],
                 ["runs", "show", store, configs[0].run_id],
                 ["runs", "export", store, "-o", tmp_path / "x.csv"]):
        rc, out, err = _cli(argv, capsys)
        assert rc == 0, err
    import pandas as pd

    table = pd.read_csv(tmp_path / "x.csv")
    # strict JSON: NaN and inf are both written as null and read back as NaN
    assert table["val_loss"].isna().sum() == 2 and len(table) == 4


def test_a_lock_held_by_another_process_is_told_after_a_short_wait(healthy_store, tmp_path,
                                                                   capsys, monkeypatch):
    import time

    from scalelab.runs import store as schema

    store = tmp_path / "runs.db"
    store.write_bytes(healthy_store.read_bytes())
    (tmp_path / "spec.yaml").write_text(
        "name: s\nparameters:\n  width: {value: 4}\n  samples: {value: 16}\n"
        f"scalelab:\n  store: {store}\n")
    monkeypatch.setattr(schema, "LOCK_WAIT_S", 0.5)
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        data = store.read_bytes()
        t0 = time.perf_counter()
        sentence = _one_sentence(*_cli(["sweep", "run", tmp_path / "spec.yaml", "--no-wandb",
                                        "--quiet"], capsys))
        assert time.perf_counter() - t0 < 10
        assert "another process holds a lock on this run store (waited 0.5 s)" in sentence
        assert "corrupted" not in sentence
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.read_bytes() == data


def _limited(limit_bytes: int):
    import resource

    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return apply


def test_export_under_a_file_size_limit_does_not_call_a_healthy_store_corrupted(tmp_path):
    """`ulimit -f 8` (8 KB): the store is read (its -shm index cannot be written there, so
    it is read without one), and the export that cannot be written says why."""
    store = tmp_path / "runs.db"
    _fill_store(store, runs=10)
    for leftover in tmp_path.glob("runs.db?*"):
        leftover.unlink()
    data = store.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "scalelab.cli", "runs", "export", str(store),
                           "-o", str(tmp_path / "x.csv")], capture_output=True, text=True,
                          env=env, timeout=120, preexec_fn=_limited(8 * 1024))
    sentence = _one_sentence(done.returncode, done.stdout, done.stderr)
    assert "corrupted" not in sentence and "file-size limit" in sentence, sentence
    assert "x.csv" in sentence and not (tmp_path / "x.csv").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]
    assert store.read_bytes() == data
    done = subprocess.run([sys.executable, "-m", "scalelab.cli", "runs", "list", str(store)],
                          capture_output=True, text=True, env=env, timeout=120,
                          preexec_fn=_limited(8 * 1024))
    assert done.returncode == 0 and "finished" in done.stdout, done.stderr


def test_a_full_disk_while_the_store_is_made_is_one_sentence_and_leaves_no_store(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: s\nparameters:\n  width: {value: 4}\n  samples: {value: 16}\n"
                    "  steps: {value: 2}\n  field_size: {value: 16}\n  val_samples: {value: 4}\n"
                    f"scalelab:\n  store: {tmp_path / 'out' / 'runs.db'}\n  workers: 1\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "scalelab.cli", "sweep", "run", str(spec),
                           "--no-wandb", "--quiet"], capture_output=True, text=True, env=env,
                          timeout=300, preexec_fn=_limited(4 * 1024))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("scalelab: error: ") and "could not be created" in last, last
    assert "file-size limit" in last and "corrupted" not in last
    assert not (tmp_path / "out" / "runs.db").exists()
