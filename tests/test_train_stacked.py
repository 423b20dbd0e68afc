"""Stacked training: members of one stacked model give their solo runs' curves, resume from
their own checkpoints after a SIGKILL, and a sweep groups them and records each run once."""

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import deque
from dataclasses import replace

import numpy as np
import pytest
import torch

from scalelab.config import RunConfig
from scalelab.train import train
from scalelab.train.checkpoint import checkpoint_path, load_checkpoint
from scalelab.train.stacked import StackedOptimizer, train_stacked

TINY = dict(family="edsr", width=4, depth=1, scale=4, field="precip", field_size=16,
            samples=64, val_samples=16, batch_size=8, steps=12, eval_every=4, device="cpu")


def one_thread(fn):
    """Run ``fn`` with one torch thread (the same reductions as a worker's)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)


def numbers(value):
    """The numbers of a row's value (a number, a list, or a mapping such as a histogram)."""
    if isinstance(value, dict):
        return [x for k in sorted(value) for x in numbers(value[k])]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in numbers(v)]
    return [float(value)]


def assert_same_curve(rows, reference, rtol=1e-4, atol=1e-6):
    assert [r["step"] for r in rows] == [r["step"] for r in reference]
    for row, ref in zip(rows, reference):
        assert set(row) == set(ref)
        for key, value in ref.items():
            if key != "wall_time_s":
                np.testing.assert_allclose(numbers(row[key]), numbers(value), rtol=rtol,
                                           atol=atol, err_msg=key)


def test_stacked_adamw_adam_and_sgd_match_torch_per_member():
    """Each member's update is torch.optim's, with its own lr and weight decay."""
    rng = torch.Generator().manual_seed(0)
    for kind, cls in (("adamw", torch.optim.AdamW), ("adam", torch.optim.Adam),
                      ("sgd", torch.optim.SGD)):
        lrs = torch.tensor([1e-3, 3e-2, 5e-3])
        decays = torch.tensor([0.0, 0.1, 0.01], dtype=torch.float64)
        start = torch.randn(3, 5, 4, generator=rng)
        stacked = start.clone().requires_grad_()
        optimizer = StackedOptimizer(kind, [stacked], decays)
        solo = [start[m].clone().requires_grad_() for m in range(3)]
        torch_opts = [cls([solo[m]], lr=float(lrs[m]), weight_decay=float(decays[m]))
                      for m in range(3)]
        for step in range(5):
            grads = torch.randn(3, 5, 4, generator=rng)
            stacked.grad = grads.clone()
            optimizer.step(lrs * (1 + step))  # a schedule: every member's lr changes
            for m in range(3):
                torch_opts[m].param_groups[0]["lr"] = float(lrs[m]) * (1 + step)
                solo[m].grad = grads[m].clone()
                torch_opts[m].step()
        for m in range(3):
            torch.testing.assert_close(stacked[m].detach(), solo[m].detach(), rtol=1e-5,
                                       atol=1e-7, msg=kind)


@pytest.mark.parametrize("members, losses, optimizer", [
    (1, ["mse", "l1", "mse+0.1*gradient"], "adamw"),  # three loss variants in one stack
    (4, ["crps_fair", "crps_nrg", "crps_fair"], "adam"),  # stochastic ensembles
])
def test_members_give_their_solo_curves(members, losses, optimizer):
    cfgs = [RunConfig(**TINY, ensemble_members=members, optimizer=optimizer, seed=seed, lr=lr,
                      weight_decay=wd, loss_variant=loss, schedule=schedule)
            for seed, lr, wd, loss, schedule in zip(
                (0, 1, 2), (3e-3, 1e-3, 5e-3), (0.0, 0.1, 0.01), losses,
                ("cosine", "constant", "wsd"))]
    stacked = one_thread(lambda: train_stacked(cfgs))
    for cfg, result in zip(cfgs, stacked):
        solo = one_thread(lambda: train(cfg))
        assert result.status == solo.status == "finished"
        assert result.run_id == cfg.run_id and result.info["params"] == solo.info["params"]
        assert result.info["stacked"] == 3
        assert_same_curve(result.rows, solo.rows)
    # different seeds: different initial weights, so different curves from step 0 on
    first = [r.rows[0]["val_mse"] for r in stacked]
    assert len(set(first)) == 3


def test_a_diverging_member_ends_alone_and_the_others_go_on():
    cfgs = [RunConfig(**TINY, optimizer="sgd", schedule="constant", lr=lr, seed=3)
            for lr in (0.01, 1.0e6, 0.02)]
    stacked = one_thread(lambda: train_stacked(cfgs))
    for cfg, result in zip(cfgs, stacked):
        solo = one_thread(lambda: train(cfg))
        assert result.status == solo.status
        assert result.info["diverged_step"] == solo.info["diverged_step"]
        if solo.rows:
            assert_same_curve(result.rows, solo.rows)
    assert [r.status for r in stacked] == ["finished", "diverged", "finished"]


CHILD = """
import json, sys, time
import torch
torch.set_num_threads(1)
from scalelab.config import RunConfig
from scalelab.train.stacked import train_stacked
cfgs = [RunConfig.from_dict(c) for c in json.loads(sys.argv[1])]
folders = json.loads(sys.argv[2])
pause = float(sys.argv[3])  # seconds to sleep after each curve row: a window for the kill
results = train_stacked(cfgs, [lambda row: time.sleep(pause)] * len(cfgs), folders)
with open(sys.argv[4], "w") as out:
    json.dump([{"status": r.status, "rows": r.rows,
                "resumed_from_step": r.info["resumed_from_step"]} for r in results], out)
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_a_sigkilled_stack_resumes_each_member_from_its_own_checkpoint(tmp_path):
    cfgs = [RunConfig(**{**TINY, "steps": 16}, ensemble_members=4, loss_variant=loss,
                      seed=seed, lr=lr, checkpoint_every=3)
            for seed, lr, loss in ((0, 3e-3, "crps_fair"), (1, 1e-3, "crps_fair"),
                                   (2, 2e-3, "crps_nrg"))]
    folders = [str(tmp_path / cfg.run_id) for cfg in cfgs]

    def child(pause):
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps([c.to_dict() for c in cfgs]),
             json.dumps(folders), str(pause), str(tmp_path / "result.json")],
            env={**os.environ, "OMP_NUM_THREADS": "1"})

    first = child(0.5)
    last = [checkpoint_path(folder) for folder in folders]
    deadline = time.monotonic() + 120
    while not all(path.exists() for path in last):
        assert first.poll() is None, "the stack ended before its first checkpoints"
        assert time.monotonic() < deadline, "no checkpoints within 120 s"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=30) == -signal.SIGKILL
    assert not (tmp_path / "result.json").exists()
    steps = [torch.load(path, weights_only=True)["step"] for path in last]
    assert all(0 < s < 16 for s in steps)
    # the last member's checkpoint is lost: it starts over, in a stack of its own
    last[2].unlink()

    resumed = child(0.0)
    assert resumed.wait(timeout=300) == 0
    results = json.loads((tmp_path / "result.json").read_text())
    for cfg, result, step, folder in zip(cfgs, results, steps[:2] + [None], folders):
        assert result["status"] == "finished"
        assert result["resumed_from_step"] == step
        solo = one_thread(lambda: train(replace(cfg, checkpoint_every=0)))
        assert_same_curve(result["rows"], solo.rows)  # each step once, none lost
        # the final checkpoint is a solo checkpoint: a restart hands the run back as it is
        saved = load_checkpoint(folder, cfg.run_id)
        assert saved["status"] == "finished" and len(saved["rows"]) == len(solo.rows)
        again = one_thread(lambda: train(cfg, checkpoint_dir=folder))
        assert json.dumps(again.rows) == json.dumps(saved["rows"])  # NaN equal to NaN


def test_a_solo_checkpoint_resumes_in_a_stack(tmp_path):
    """The checkpoint format is the solo run's: a run stopped alone resumes stacked."""
    cfgs = [RunConfig(**TINY, seed=seed, checkpoint_every=4, schedule="constant")
            for seed in (5, 6)]
    folders = [str(tmp_path / cfg.run_id) for cfg in cfgs]
    one_thread(lambda: train(replace(cfgs[0], steps=8, eval_every=4),
                             checkpoint_dir=tmp_path / "short"))
    # a checkpoint at step 8 of the 12-step run: the short run's state is the same
    state = torch.load(checkpoint_path(tmp_path / "short"), weights_only=True)
    state.update(run_id=cfgs[0].run_id, status="running")
    os.makedirs(folders[0])
    torch.save(state, checkpoint_path(folders[0]))
    results = one_thread(lambda: train_stacked(cfgs, checkpoint_dirs=folders))
    assert results[0].info["resumed_from_step"] == 8
    for cfg, result in zip(cfgs, results):
        solo = one_thread(lambda: train(cfg))
        assert_same_curve(result.rows, solo.rows)
        assert result.status == "finished"


def test_the_executor_groups_runs_that_share_a_shape(caplog):
    from scalelab.sweep.stacking import stack_cap, take_group

    base = RunConfig(**TINY).validate()
    alike = [replace(base, seed=s).validate() for s in range(5)]
    other = replace(base, width=6).validate()
    diffusion = RunConfig(**{**TINY, "family": "diffusion"}).validate()
    queue = deque([alike[1], other, diffusion, *alike[2:]])
    with caplog.at_level(logging.INFO, logger="scalelab.sweep"):
        group = take_group(queue, alike[0], cap=3)
        assert [c.seed for c in group] == [0, 1, 2]
        assert list(queue) == [other, diffusion, alike[3], alike[4]]
        assert take_group(queue, queue.popleft(), cap=3) == [other]
        assert take_group(queue, queue.popleft(), cap=3, reasons=set()) == [diffusion]
    assert "trains alone: the diffusion family trains by its own objective" in caplog.text
    # an even share for each worker: 4 alike runs and 2 workers give stacks of 2
    queue = deque(alike[1:4])
    assert len(take_group(queue, alike[0], cap=16, workers=2)) == 2
    # the memory cap: 4 × the lower bound per member, half the memory
    from scalelab.sweep.guards import memory_lower_bound

    need = memory_lower_bound(base)["model"] * 4
    assert stack_cap(base, 16, device_memory=2 * 3 * need) == 3
    assert stack_cap(base, 16, device_memory=2 * 3 * need, sharing=3) == 1
    assert stack_cap(base, 2, device_memory=1e15) == 2


def store_runs(store):
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        runs = {r[0]: {"status": r[1], "attempts": r[2], "info": json.loads(r[3] or "{}")}
                for r in db.execute("SELECT run_id, status, attempts, info FROM runs")}
        for run_id in runs:
            runs[run_id]["steps"] = [s for (s,) in db.execute(
                "SELECT step FROM curve WHERE run_id=? ORDER BY step", (run_id,))]
    except sqlite3.OperationalError:
        runs = {}
    db.close()
    return runs


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_a_sigkilled_sweep_of_stacks_finishes_each_run_once(tmp_path):
    import yaml

    import scalelab

    store = tmp_path / "out" / "runs.db"
    spec = {"name": "stacks", "method": "grid",
            "parameters": {**{k: {"value": v} for k, v in TINY.items() if k != "device"},
                           "steps": {"value": 120}, "eval_every": {"value": 40},
                           "checkpoint_every": {"value": 10},
                           "seed": {"values": [0, 1, 2, 3]}, "lr": {"values": [1e-3, 3e-3]}},
            "scalelab": {"workers": 2, "store": str(store), "stack_max": 4}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    command = [sys.executable, "-m", "scalelab.cli", "sweep", "run", str(path), "--no-wandb",
               "--quiet"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoints = store.parent / "checkpoints"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        if any(torch.load(p, weights_only=True)["status"] == "running"
               for p in checkpoints.glob("*/last.pt")):
            break
        time.sleep(0.1)
    assert driver.poll() is None, "the sweep ended before a kill"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(1.5)  # the orphaned workers notice their driver died and exit
    killed = {p.parent.name: torch.load(p, weights_only=True)["step"]
              for p in checkpoints.glob("*/last.pt")}

    final = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr
    runs = store_runs(store)
    assert len(runs) == 8
    for run_id, run in runs.items():
        assert run["status"] == "finished"
        assert run["steps"] == [0, 40, 80, 120]  # each row once: none lost, none twice
        if 0 < killed.get(run_id, 0) < 120:
            assert run["attempts"] == 2 and run["info"]["resumed_from_step"] >= killed[run_id]
    # trained in stacks (a run left alone by the kill may have trained by itself on restart)
    assert sum(run["info"].get("stacked", 1) > 1 for run in runs.values()) >= 6
    table = scalelab.load_runs(store)
    for run_id, rows in table.groupby("run_id"):
        cfg = RunConfig(**{**TINY, "steps": 120, "eval_every": 40},
                        seed=int(rows.iloc[0]["seed"]), lr=float(rows.iloc[0]["lr"]))
        solo = one_thread(lambda: train(cfg))
        np.testing.assert_allclose(rows.sort_values("step")["val_loss"],
                                   [r["val_loss"] for r in solo.rows], rtol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("graphs", [False, True])
def test_members_on_cuda_give_their_solo_curves(graphs):
    """On a GPU, with and without the CUDA graph of the stacked step."""
    cfgs = [RunConfig(**{**TINY, "device": "cuda", "steps": 16}, ensemble_members=4,
                      loss_variant="crps_fair", seed=seed, lr=lr)
            for seed, lr in ((0, 3e-3), (1, 1e-3), (2, 2e-3))]
    stacked = train_stacked(cfgs, cuda_graphs=graphs)
    for cfg, result in zip(cfgs, stacked):
        solo = train(cfg)
        assert_same_curve(result.rows, solo.rows, rtol=1e-3, atol=1e-5)


def test_members_score_the_shifted_regions_as_their_solo_runs(tmp_path):
    from test_data_regions import coded_grid

    ds = coded_grid(0.0)
    ds.lon.attrs["units"] = "degrees_east"
    ds.to_netcdf(tmp_path / "g.nc", engine="h5netcdf")
    options = {"path": str(tmp_path / "g.nc"), "variable": "t2m",
               "regions": {"train": "west", "eval": ["east"]},
               "region_boxes": {"west": [-90, 90, -180, 0], "east": [-90, 90, 0, 180]}}
    cfgs = [RunConfig(**{**TINY, "field": "gridded", "field_size": 8, "scale": 2,
                         "samples": 32, "val_samples": 8, "steps": 6, "eval_every": 3},
                      options=options, seed=seed).validate() for seed in (0, 1)]
    stacked = one_thread(lambda: train_stacked(cfgs))
    for cfg, result in zip(cfgs, stacked):
        solo = one_thread(lambda: train(cfg))
        assert any("@east" in key for key in solo.rows[-1])
        assert_same_curve(result.rows, solo.rows)
