"""Live tracking: while a sweep trains, its store (read from another connection) holds the
running runs' curve rows as they come, and each run's offline W&B log is written as the run
trains (step timestamps spread over the run), with the device it used and, at the end, its
status — failed with its error, diverged with its step."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scalelab.cli import main
from scalelab.runs import StoreReader
from scalelab.sweep.store import RunStore

TINY = {"field_size": {"value": 16}, "depth": {"value": 1}, "samples": {"value": 64},
        "val_samples": {"value": 16}, "batch_size": {"value": 16}, "width": {"value": 4}}


def wandb_records(run_dir):
    """Every record of an offline W&B run, as W&B's own reader gives it."""
    done = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json",
                           str(run_dir)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def wandb_run(records):
    """History items, the merged summary and config, and how many system-metric samples."""
    history, summary, config, stats = [], {}, {}, 0
    for record in records:
        kind = record.get("type")
        body = record.get(kind) or {}
        if kind == "history":
            history.append(body.get("item") or {})
        elif kind == "summary":
            summary.update(body.get("update") or {})
        elif kind == "run":
            config.update((body.get("config") or {}).get("update") or {})
        elif kind == "config":
            config.update(body.get("update") or {})
        elif kind == "stats":
            stats += 1
    return history, summary, config, stats


@pytest.mark.slow
def test_running_runs_are_in_the_store_and_in_wandb_as_they_train(tmp_path, capsys):
    store = tmp_path / "out" / "runs.db"
    spec = tmp_path / "spec.yaml"
    # a real data file, valid when the spec is checked and deleted once the sweep has
    # started, so that its runs fail while training (a bad path is refused up front)
    from scalelab.data.era5like import write_era5_like

    data = write_era5_like(tmp_path / "data", days=120, resolution=10.0)["netcdf"]
    missing = Path(data).rename(tmp_path / "missing.nc")
    spec.write_text(yaml.safe_dump({
        "name": "live", "method": "grid",
        "metric": {"name": "val_mse", "goal": "minimize"},
        "parameters": {**TINY, "steps": {"value": 120}, "eval_every": {"value": 5},
                       # a long run, a run that diverges (SGD at lr 1e6), a run that fails
                       # (its data file goes missing)
                       "optimizer": {"value": "sgd"}, "schedule": {"value": "constant"},
                       "lr": {"values": [0.01, 1.0e6]}, "field": {"values": ["grf", "gridded"]},
                       "options": {"value": {"path": str(missing), "variable": "t2m"}}},
        "scalelab": {"workers": 1, "store": str(store), "max_attempts": 1,
                     "wandb": {"mode": "offline", "project": "live"}},
    }))
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SERVICE", "WANDB_MODE")}
    driver = subprocess.Popen([sys.executable, "-m", "scalelab.cli", "sweep", "run", str(spec),
                               "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env)
    seen = None  # (run_id, rows, listing) of a running run with rows, read mid-run
    deadline = time.monotonic() + 600
    while seen is None and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        if not store.exists():
            continue
        missing.unlink(missing_ok=True)  # checked and accepted: now it goes
        try:
            with StoreReader(store) as reader:  # a second connection, read-only
                runs = reader.runs()
                curves = reader.curves()
        except Exception:  # noqa: BLE001 - the driver is creating the store right now
            continue
        if runs.empty or curves.empty:
            continue
        running = set(runs.loc[runs["status"] == "running", "run_id"])
        counts = curves[curves["run_id"].isin(running)].groupby("run_id").size()
        if (counts >= 2).any():
            run_id = counts[counts >= 2].index[0]
            rows = curves[curves["run_id"] == run_id]
            assert main(["runs", "list", str(store), "--status", "running"]) == 0
            listing = capsys.readouterr().out
            if any(ln.startswith(run_id) for ln in listing.splitlines()):
                seen = (run_id, rows, listing)  # else it ended in between: look again
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 1, err  # the failing run failed; the sweep completed
    assert seen is not None, "no running run had rows in the store while it trained"
    run_id, rows, listing = seen
    line = next(ln for ln in listing.splitlines() if ln.startswith(run_id))
    header = listing.splitlines()[0].split()
    assert {"step", "val_mse", "status"} <= set(header)  # the sweep's metric, by default
    values = dict(zip(header, line.split()))
    assert values["status"] == "running"
    last = rows.sort_values("step").iloc[-1]
    assert int(values["step"]) == int(last["step"]) > 0
    assert float(values["val_mse"]) == pytest.approx(last["val_mse"], rel=1e-5)

    with StoreReader(store) as reader:
        final = reader.runs().set_index("run_id")
        curve = reader.curves(run_id)
    # rows written while the run trained are the rows of its result, none doubled
    assert list(curve["step"]) == list(range(0, 121, 5))
    mid = curve.set_index("step").loc[rows["step"], "val_loss"].to_numpy()
    assert mid == pytest.approx(rows["val_loss"].to_numpy(), rel=1e-12)
    assert final.loc[run_id, "status"] == "finished"

    # W&B: one offline run per run, logged while it trained
    folders = sorted((store.parent / "wandb").glob("offline-run-*"))
    assert len(folders) == 4  # lr × field: one finishes, one diverges, two fail
    by_status = {}
    for folder in folders:
        history, summary, config, stats = wandb_run(wandb_records(folder))
        by_status.setdefault(summary["status"], []).append((history, summary, config, stats))
    assert {k: len(v) for k, v in by_status.items()} == {"finished": 1, "diverged": 1,
                                                          "failed": 2}
    by_status = {k: v[0] for k, v in by_status.items()}
    history, summary, config, stats = by_status["finished"]
    assert config["device"] == "cpu"  # the device the run used, not 'auto'
    assert config["run_id"] == run_id
    assert [h["_step"] for h in history] == list(range(0, 121, 5))
    # each row was logged when it was computed: the time between the first and the last
    # row's W&B timestamps is the time the run took between them, not a replay's instant
    trained = history[-1]["wall_time_s"] - history[0]["wall_time_s"]
    logged = history[-1]["_timestamp"] - history[0]["_timestamp"]
    assert trained > 0 and logged >= 0.8 * trained, (logged, trained)
    assert summary["_runtime"] >= 0.8 * trained
    assert stats >= 1  # W&B's system metrics are on
    _, diverged, diverged_config, _ = by_status["diverged"]
    assert final.loc[diverged_config["run_id"], "status"] == "diverged"
    assert diverged["diverged_step"] == final.loc[diverged_config["run_id"], "diverged_step"] > 0
    _, failed, failed_config, _ = by_status["failed"]
    assert final.loc[failed_config["run_id"], "status"] == "failed"
    assert "missing.nc" in failed["traceback"] and failed["error"]
    assert failed_config["field"] == "gridded"


def test_store_takes_rows_of_running_runs_once_and_ignores_late_ones(tmp_path):
    from scalelab.config import RunConfig

    path = tmp_path / "runs.db"
    cfg = RunConfig(width=4)
    store = RunStore(path)
    try:
        store.add_sweep("s", {"name": "s"}, [cfg])
        assert store.add_rows(cfg.run_id, [{"step": 0, "val_loss": 1.0}]) == 0  # pending
        store.mark_running(cfg.run_id)
        store.add_rows(cfg.run_id, [{"step": 0, "val_loss": 1.0}, {"step": 5, "val_loss": 0.5}])
        with StoreReader(path) as reader:  # another connection sees them at once
            assert list(reader.curves(cfg.run_id)["step"]) == [0, 5]
            latest = reader.latest("val_loss").set_index("run_id")
            assert latest.loc[cfg.run_id, "step"] == 5
            assert latest.loc[cfg.run_id, "val_loss"] == 0.5
        # a resumed run sends its rows again: replaced, not doubled
        store.mark_running(cfg.run_id)
        store.add_rows(cfg.run_id, [{"step": 5, "val_loss": 0.5}, {"step": 10, "val_loss": 0.4}])
        store.record_result(cfg.run_id, "finished", [{"step": s, "val_loss": v} for s, v in
                                                      ((0, 1.0), (5, 0.5), (10, 0.4))], {})
        assert store.add_rows(cfg.run_id, [{"step": 10, "val_loss": 9.9}]) == 0  # late
        with StoreReader(path) as reader:
            curve = reader.curves(cfg.run_id)
        assert list(curve["step"]) == [0, 5, 10]
        assert list(curve["val_loss"]) == [1.0, 0.5, 0.4]
    finally:
        store.close()


@pytest.mark.slow
def test_a_run_resumed_after_sigkill_has_its_whole_history_in_wandb(tmp_path):
    """The driver is SIGKILLed while a run trains; started again, the run resumes from its
    checkpoint as the same W&B run (its id), and that run's log — read with W&B's own
    reader — holds every step the store holds, not only those after the resume."""
    import signal

    store = tmp_path / "out" / "runs.db"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "resume", "method": "grid",
        "parameters": {**TINY, "steps": {"value": 400}, "eval_every": {"value": 50},
                       "checkpoint_every": {"value": 10}},
        "scalelab": {"workers": 1, "store": str(store), "wandb": {"project": "resume"}}}))
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true")
    command = [sys.executable, "-m", "scalelab.cli", "sweep", "run", str(spec), "--quiet"]
    driver = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    killed_at = 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        if store.exists():
            try:
                with StoreReader(store) as reader:
                    curve = reader.curves()
            except Exception:  # noqa: BLE001 - the driver is creating the store
                curve = None
            if curve is not None and not curve.empty and curve["step"].max() >= 100:
                killed_at = int(curve["step"].max())
                break
        time.sleep(0.1)
    assert driver.poll() is None, "the sweep ended before the kill"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(1.0)  # the orphaned worker notices its driver died and exits
    assert 100 <= killed_at < 400

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with StoreReader(store) as reader:
        (run_id,) = reader.runs()["run_id"]
        info = json.loads(reader._db.execute("SELECT info FROM runs").fetchone()[0])
        curve = reader.curves(run_id)
    assert list(curve["step"]) == list(range(0, 401, 50))
    assert info["resumed_from_step"] >= killed_at  # resumed, not started over

    folders = sorted((store.parent / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(folders) == 2  # the killed process's log and the resumed one's: one W&B id
    history, summary, config, _ = wandb_run(wandb_records(folders[-1]))
    assert summary["status"] == "finished" and config["run_id"] == run_id
    assert [int(item["_step"]) for item in history] == list(curve["step"])
    assert [item["val_loss"] for item in history] == pytest.approx(list(curve["val_loss"]),
                                                                  rel=1e-12)
