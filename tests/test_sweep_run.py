"""Sweeps end to end on the local executor: failures retried, divergence recorded, nothing
run twice, and a driver killed with SIGKILL again and again that still loses nothing."""

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import scalelab

TINY = {"field_size": {"value": 16}, "depth": {"value": 1}, "samples": {"value": 64},
        "val_samples": {"value": 16}, "batch_size": {"value": 16}}


def write_spec(tmp_path, parameters, **scalelab_section):
    store = tmp_path / "out" / "runs.db"
    spec = {"name": "t", "method": "grid", "metric": {"name": "val_loss", "goal": "minimize"},
            "parameters": {**TINY, **parameters},
            "scalelab": {"workers": 2, "store": str(store), **scalelab_section}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path, store


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "scalelab.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def runs_of(store):
    if not store.exists():
        return {}
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT run_id, config, status, attempts, info, error FROM runs"
                          ).fetchall()
    except sqlite3.OperationalError:  # the driver is creating the store right now
        db.close()
        return {}
    curves = {run_id: [json.loads(m) for (m,) in db.execute(
        "SELECT metrics FROM curve WHERE run_id=? ORDER BY step", (run_id,))]
        for run_id, *_ in rows}
    db.close()
    return {r[0]: {"config": json.loads(r[1]), "status": r[2], "attempts": r[3],
                   "info": json.loads(r[4]), "error": r[5], "curve": curves[r[0]]}
            for r in rows}


def test_failures_are_retried_divergence_is_not_and_nothing_runs_twice(tmp_path):
    # good runs; runs that diverge (SGD at lr 1e6); runs that fail (their data file passes the
    # checks made when the spec loads — it has finite, varying values — but a missing value
    # in every fourth column, so no patch without one is found when the run reads it)
    import xarray as xr

    values = np.random.default_rng(0).normal(size=(10, 16, 16))
    values[:, :, ::4] = np.nan
    empty = xr.Dataset({"tas": (("time", "y", "x"), values)}, coords={"time": np.arange(10)})
    empty.to_netcdf(tmp_path / "empty.nc", engine="scipy")
    spec, store = write_spec(tmp_path, {
        "width": {"values": [4, 6]}, "steps": {"value": 20}, "eval_every": {"value": 10},
        "optimizer": {"value": "sgd"}, "schedule": {"value": "constant"},
        "lr": {"values": [0.01, 1.0e6]}, "field": {"values": ["grf", "gridded"]},
        "options": {"value": {"path": str(tmp_path / "empty.nc"), "variable": "tas",
                              "nan": "skip"}}},
        max_attempts=2)
    plan = cli("sweep", "plan", str(spec))
    assert plan.returncode == 0, plan.stderr
    assert "8 runs" in plan.stdout

    first = cli("sweep", "run", str(spec), "--no-wandb")
    assert first.returncode == 1, first.stderr  # some runs failed: status 1, sweep completed
    runs = runs_of(store)
    assert len(runs) == 8
    by_kind = {}
    for run in runs.values():
        kind = ("missing" if run["config"]["field"] == "gridded" else
                "big_lr" if run["config"]["lr"] > 1 else "good")
        by_kind.setdefault(kind, []).append(run)
    for run in by_kind["good"]:
        assert run["status"] == "finished" and run["attempts"] == 1
        assert [r["step"] for r in run["curve"]] == [0, 10, 20]
        assert run["curve"][-1]["val_loss"] < run["curve"][0]["val_loss"]
    for run in by_kind["big_lr"]:
        assert run["status"] == "diverged" and run["attempts"] == 1  # not retried
    for run in by_kind["missing"]:
        assert run["status"] == "failed" and run["attempts"] == 2  # retried up to the limit
        assert "Traceback" in run["error"]
    assert "2 retries" not in first.stdout and "4 retries" in first.stdout
    assert "first failure (run " in first.stdout and "without missing values" in first.stdout
    assert "finished=2" in first.stderr and "best val_loss=" in first.stderr  # progress bar

    # plan and training agree on size and compute
    table = scalelab.load_runs(store)
    final = table.sort_values("step").groupby("run_id").tail(1)
    finished = final[final["status"] == "finished"]
    best = final.loc[final["status"] == "finished", "val_loss"].min()
    assert f"best val_loss={best:.4g}" in first.stderr
    planned = {ln.split()[0]: ln.split() for ln in plan.stdout.splitlines()[2:-1]}
    for run_id, row in finished.set_index("run_id").iterrows():
        assert int(planned[run_id][-2]) == int(row["params"])
        assert float(planned[run_id][-1]) == pytest.approx(row["flops"], rel=5e-3)

    # a second start runs nothing again
    again = cli("sweep", "run", str(spec), "--no-wandb", "--quiet")
    assert "8 already in the store" in again.stdout
    assert {k: v["attempts"] for k, v in runs_of(store).items()} == \
        {k: v["attempts"] for k, v in runs.items()}


def test_a_wrong_data_path_stops_the_spec_before_any_run(tmp_path):
    spec, store = write_spec(tmp_path, {
        "field": {"value": "gridded"},
        "options": {"value": {"path": str(tmp_path / "missing.nc"), "variable": "tas"}}})
    for command in (("sweep", "plan"), ("sweep", "run"), ("run",)):
        result = cli(*command, str(spec))
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "missing.nc' does not exist" in lines[0], result.stderr
        assert not store.exists()


def same(rows_a, rows_b):
    """Equal curves, NaN equal to NaN (the step-0 train_loss is NaN)."""
    return json.dumps(rows_a, sort_keys=True) == json.dumps(rows_b, sort_keys=True)


def read_checkpoints(folder):
    saved = {}
    for path in folder.glob("*/last.pt"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved[path.parent.name] = (state["status"], state["step"], state["rows"])
    return saved


@pytest.mark.slow
def test_sigkilled_driver_loses_nothing_and_resumes_from_checkpoints(tmp_path):
    steps, eval_every = 400, 100
    spec, store = write_spec(tmp_path, {
        "width": {"values": [4, 5]}, "seed": {"values": [0, 1]}, "steps": {"value": steps},
        "eval_every": {"value": eval_every}, "checkpoint_every": {"value": 10}})
    checkpoints = store.parent / "checkpoints"
    rng = random.Random(1234)
    snapshots = []
    command = [sys.executable, "-m", "scalelab.cli", "sweep", "run", str(spec), "--no-wandb",
               "--quiet"]
    for _ in range(3):
        driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # kill at a random moment once some run is training and has written a checkpoint
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            running = [run_id for run_id, run in runs_of(store).items()
                       if run["status"] == "running"]
            saved = read_checkpoints(checkpoints)
            if any(saved.get(run_id, ("",))[0] == "running" for run_id in running):
                break
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 0.3))
        if driver.poll() is not None:
            break  # the sweep finished before this kill
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        time.sleep(1.0)  # the orphaned workers notice their driver died and exit
        saved = read_checkpoints(checkpoints)
        time.sleep(0.5)
        later = read_checkpoints(checkpoints)  # no orphan is still training
        assert {k: v[:2] for k, v in later.items()} == {k: v[:2] for k, v in saved.items()}
        snapshots.append((runs_of(store), saved))

    final_start = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert final_start.returncode == 0, final_start.stderr
    final = runs_of(store)

    assert len(final) == 4  # every run present exactly once (run_id is the primary key)
    interrupted = {}  # run_id -> the step of its checkpoint when the driver was restarted
    for runs, saved in snapshots:
        for run_id, run in runs.items():
            if run["status"] == "finished":  # finished before a kill: never run again
                assert final[run_id]["attempts"] == run["attempts"]
                assert same(final[run_id]["curve"], run["curve"])
            elif run["status"] == "running" and run_id in saved:
                status, step, rows = saved[run_id]
                if status == "running":  # killed mid-training
                    interrupted[run_id] = max(interrupted.get(run_id, 0), step)
                else:  # training had ended, the driver had not yet stored it: not re-run
                    assert same(final[run_id]["curve"], rows)
    assert snapshots and interrupted, "no kill hit a run in training"
    for run_id, run in final.items():
        assert run["status"] == "finished"
        assert [r["step"] for r in run["curve"]] == list(range(0, steps + 1, eval_every))
        assert np.isfinite(run["curve"][-1]["val_loss"])
    for run_id, step in interrupted.items():
        # started again from its checkpoint (at that step or a later one), not from step 0
        assert final[run_id]["attempts"] >= 2
        resumed = final[run_id]["info"].get("resumed_from_step")
        assert resumed is not None and resumed >= step > 0, (step, final[run_id]["info"])


def test_store_given_as_foreign_file_is_untouched_by_a_sweep(tmp_path):
    spec, store = write_spec(tmp_path, {"width": {"value": 4}, "steps": {"value": 2},
                                        "eval_every": {"value": 1}})
    store.parent.mkdir(parents=True)
    store.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    before = store.read_bytes()
    result = cli("sweep", "run", str(spec), "--no-wandb", "--quiet")
    assert result.returncode == 2 and "left untouched" in result.stderr
    assert store.read_bytes() == before
    assert not (store.parent / "checkpoints").exists()



def test_plan_gives_the_params_and_flops_the_runs_record(tmp_path):
    """`scalelab sweep plan` counted a stochastic ensemble without its noise input and its
    members' forwards (quickstart: N 898–14,080 and 3.06e11 FLOP planned, 925–14,224 and
    7.76e11 trained); it counts with the training loop's own function now."""
    from scalelab.sweep import load_spec, run_sweep
    from scalelab.sweep.plan import plan_sweep

    spec_path, store = write_spec(tmp_path, {
        "width": {"values": [3, 6]}, "loss_variant": {"values": ["mse", "crps_fair"]},
        "ensemble_members": {"value": 4}, "steps": {"value": 2}, "eval_every": {"value": 2}})
    spec = load_spec(spec_path)
    plan = plan_sweep(spec).set_index("run_id")
    assert run_sweep(spec, progress=False, tracking=False).counts == {"finished": 4}
    table = scalelab.load_runs(store)
    final = table[table["step"] == 2].set_index("run_id")
    assert sorted(final.index) == sorted(plan.index)
    assert (plan["params"] == final.loc[plan.index, "params"]).all()
    np.testing.assert_allclose(plan["flops"], final.loc[plan.index, "flops"], rtol=1e-12)
    # the same stochastic network for both losses; the fair CRPS runs its 4 members
    for width, runs in plan.groupby("width"):
        by_loss = runs.set_index("loss_variant")
        assert by_loss.loc["mse", "params"] == by_loss.loc["crps_fair", "params"]
        assert by_loss.loc["crps_fair", "flops"] == 4 * by_loss.loc["mse", "flops"]
