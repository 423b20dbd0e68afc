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
