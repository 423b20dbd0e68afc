"""The data axis and data budgets from one trunk: U, D and epochs in every curve row,
cooldown schedules, trunks and branches (a branch is the run that trains its schedule
from scratch, at the cost of its decay), the compute they save, and sweeps over them."""

import dataclasses
import hashlib
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

import scalelab
from scalelab import RunConfig, SpecError
from scalelab.sweep import parse_spec, run_sweep
from scalelab.sweep.branches import branch_of, budget_compute, expand_budgets
from scalelab.sweep.plan import plan_sweep
from scalelab.table import compute_spent, run_roles
from scalelab.train import train
from scalelab.train.checkpoint import branch_filename, checkpoint_path
from scalelab.train.loop import lr_at

TINY = dict(family="edsr", width=4, depth=1, scale=4, field="grf", field_size=16, samples=48,
            val_samples=16, batch_size=8, eval_every=4, lr=3e-3, seed=7, device="cpu")
TRUNK = RunConfig(**TINY, schedule="wsd", steps=40, cooldowns=[10, 20, 40])


def without_wall_time(rows):
    return json.dumps([{k: v for k, v in row.items() if k != "wall_time_s"} for row in rows],
                      sort_keys=True)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ---- configs -------------------------------------------------------------------------
def test_run_ids_of_runs_without_budgets_are_unchanged():
    cfg = RunConfig(width=8, samples=256)
    # every field added since (declared hashed="if set") stays out of the id at its default,
    # as do the settings of where a run executes (hashed=False)
    later = {f.name for f in dataclasses.fields(RunConfig) if f.metadata.get("hashed") is not True}
    assert {"cooldowns", "parent", "weight_bits", "parametrization"} <= later
    old_fields = {k: v for k, v in cfg.to_dict().items() if k not in later}
    blob = json.dumps(old_fields, sort_keys=True, separators=(",", ":"), default=str)
    assert cfg.run_id == hashlib.sha256(blob.encode()).hexdigest()[:12]
    assert RunConfig(schedule="wsd", cooldowns=[100]).run_id != RunConfig(schedule="wsd").run_id


def test_cooldown_points_and_their_checks():
    cfg = RunConfig(schedule="wsd", steps=400, cooldowns=[0.25, 0.5, 300, 1.0, 100])
    assert cfg.cooldown_steps() == [100, 200, 300, 400] and cfg.role == "trunk"
    assert RunConfig(parent="abc", branch_step=5).role == "branch"
    assert RunConfig().role == "run"
    bad = [({"cooldowns": [100]}, "schedule: wsd"),
           ({"schedule": "wsd", "cooldowns": [500]}, "beyond steps=400"),
           ({"schedule": "wsd", "cooldowns": [-0.5]}, "fractions of steps"),
           ({"schedule": "wsd", "cooldowns": [100], "cooldown_fraction": 1.5}, "cooldown_fraction"),
           ({"schedule": "wsd", "cooldowns": [10], "warmup_steps": 20}, "after the warmup"),
           ({"schedule": "wsd", "branch_step": 400}, "branch_step must lie")]
    for values, message in bad:
        with pytest.raises(SpecError, match=message):
            RunConfig(**{"steps": 400, **values}).validate()


def test_lr_schedules_of_trunks_and_branches():
    trunk = RunConfig(schedule="wsd", lr=1.0, steps=100, warmup_steps=10, cooldowns=[50, 100])
    assert [lr_at(s, trunk) for s in (0, 9, 10, 99)] == [0.1, 1.0, 1.0, 1.0]
    branch = branch_of(trunk, 50, 0.2)  # decays over 10 steps: 50 .. 59
    assert (branch.steps, branch.branch_step, branch.parent) == (60, 50, trunk.run_id)
    assert [lr_at(s, branch) for s in (49, 50, 55, 59)] == pytest.approx([1, 1, 0.5, 0.1])
    # a wsd run without branch points keeps its decay over the last 20% after warmup
    plain = RunConfig(schedule="wsd", lr=1.0, steps=110, warmup_steps=10)
    assert [lr_at(s, plain) for s in (89, 90, 109)] == pytest.approx([1, 1, 0.05])


def test_expansion_shares_trunks_and_budget_compute_is_the_closed_form():
    base = dict(schedule="wsd", steps=400, cooldowns=[0.25, 0.5, 0.75, 1.0])
    configs = [RunConfig(width=w, cooldown_fraction=f, **base) for w in (4, 6) for f in (0.2, 0.1)]
    runs = expand_budgets(configs + [RunConfig(width=8)])
    roles = [cfg.role for cfg in runs]
    assert roles.count("trunk") == 2 and roles.count("branch") == 16 and roles[-1] == "run"
    trunks = {cfg.run_id: cfg for cfg in runs if cfg.role == "trunk"}
    for cfg in runs:
        if cfg.role == "branch":
            assert runs.index(trunks[cfg.parent]) < runs.index(cfg)  # trunk first
            assert cfg.steps == cfg.branch_step + round(cfg.cooldown_fraction * cfg.branch_step)
    assert {c.cooldowns == [100, 200, 300, 400] and c.steps == 400 for c in trunks.values()} == {True}
    # plan: one trunk of S steps and branches at S/4..S with decays f·s, against
    # independent runs of s(1 + f): spent S + fΣs, independent (1 + f)Σs
    spec = parse_spec({"parameters": {"width": {"value": 4}, "field_size": {"value": 16},
                                      "schedule": {"value": "wsd"}, "steps": {"value": 400},
                                      "cooldowns": {"value": [0.25, 0.5, 0.75, 1.0]},
                                      "cooldown_fraction": {"value": 0.2}}})
    plan = plan_sweep(spec)
    saved = budget_compute(plan)
    per_step = plan["flops"].iloc[0] / 400
    sum_s = 100 + 200 + 300 + 400
    assert saved["spent"] == pytest.approx(per_step * (400 + 0.2 * sum_s))
    assert saved["independent"] == pytest.approx(per_step * 1.2 * sum_s)
    assert saved["saved_fraction"] == pytest.approx(0.5)
    assert budget_compute(plan[plan["role"] != "branch"]) is None


def test_specs_set_the_length_by_samples_seen_or_epochs():
    spec = parse_spec({"parameters": {
        "samples": {"values": [64, 256]}, "batch_size": {"value": 16},
        "epochs": {"values": [2, 4.5]}, "field_size": {"value": 16}}})
    assert sorted((c.samples, c.steps) for c in spec.runs) == [
        (64, 8), (64, 18), (256, 32), (256, 72)]
    spec = parse_spec({"parameters": {"samples_seen": {"values": [1000, 1024]},
                                      "batch_size": {"value": 16}}})
    assert [c.steps for c in spec.runs] == [63, 64]  # ⌈D / batch⌉
    with pytest.raises(SpecError, match="once, as steps, samples_seen or epochs"):
        parse_spec({"parameters": {"steps": {"value": 10}, "epochs": {"value": 2}}})
    with pytest.raises(SpecError, match="epochs must be a positive number"):
        parse_spec({"parameters": {"epochs": {"value": 0}}})


# ---- training ------------------------------------------------------------------------
def test_a_branch_is_the_run_of_its_schedule_at_the_cost_of_its_decay(tmp_path, one_thread):
    trunk = train(TRUNK, checkpoint_dir=tmp_path / "trunk")
    assert trunk.status == "finished"
    assert sorted(p.name for p in (tmp_path / "trunk").iterdir()) == [
        branch_filename(s) for s in (10, 20, 40)]
    assert {row["lr"] for row in trunk.rows[1:]} == {TRUNK.lr}  # constant rate
    for step in (10, 20, 40):
        branch = branch_of(TRUNK, step, 0.25)
        result = train(branch, checkpoint_dir=tmp_path / branch.run_id,
                       trunk_dir=tmp_path / "trunk")
        assert result.info["branched_from_step"] == step
        independent = train(replace(branch, parent=""))  # the same schedule from scratch
        assert without_wall_time(result.rows) == without_wall_time(independent.rows)
        last = result.rows[-1]  # totals from step 0, the trunk's part included
        assert last["step"] == branch.steps == step + round(step / 4)
        assert last["samples_seen"] == branch.steps * 8 and last["samples"] == 48
        assert last["epochs"] == pytest.approx(branch.steps * 8 / 48)
        assert last["flops"] == pytest.approx(3 * result.info["flops_per_sample"] * branch.steps * 8)
        assert last["lr"] == pytest.approx(TRUNK.lr / round(step / 4))
        # the trunk's rows up to the branch point are the branch's first rows
        head = [r for r in trunk.rows if r["step"] <= step and r["step"] % 4 == 0]
        assert without_wall_time(result.rows[:len(head)]) == without_wall_time(head)
    # without its trunk's checkpoint a branch trains the trunk's part itself: same curve
    alone = train(branch_of(TRUNK, 20, 0.25))
    assert alone.info["branched_from_step"] is None
    assert without_wall_time(alone.rows) == without_wall_time(
        train(branch_of(TRUNK, 20, 0.25), trunk_dir=tmp_path / "trunk").rows)


def test_a_trunk_resumes_from_its_branch_checkpoints(tmp_path, one_thread):
    trunk = replace(TRUNK, steps=30, cooldowns=[10, 30])  # 30 is not an evaluation step
    first = train(trunk, checkpoint_dir=tmp_path)
    assert [r["step"] for r in first.rows] == [0, 4, 8, 12, 16, 20, 24, 28, 30]
    assert not checkpoint_path(tmp_path).exists()  # checkpoint_every = 0: no last.pt
    again = train(trunk, checkpoint_dir=tmp_path)  # resumes at step 30, adds its last row
    assert again.info["resumed_from_step"] == 30
    assert without_wall_time(again.rows) == without_wall_time(first.rows)
    (tmp_path / branch_filename(30)).unlink()
    from_ten = train(trunk, checkpoint_dir=tmp_path)
    assert from_ten.info["resumed_from_step"] == 10
    assert without_wall_time(from_ten.rows) == without_wall_time(first.rows)


# ---- sweeps ---------------------------------------------------------------------------
BUDGET_SPEC = {
    "name": "budgets", "method": "grid",
    "parameters": {"width": {"values": [4, 6]}, "depth": {"value": 1},
                   "field_size": {"value": 16}, "samples": {"value": 48},
                   "val_samples": {"value": 16}, "batch_size": {"value": 8},
                   "schedule": {"value": "wsd"}, "steps": {"value": 24},
                   "cooldowns": {"value": [0.25, 0.5, 1.0]}, "cooldown_fraction": {"value": 0.25},
                   "eval_every": {"value": 4}, "seed": {"value": 3}},
}


def test_a_sweep_of_budgets_runs_each_branch_once_after_its_trunk(tmp_path):
    store = tmp_path / "runs.db"
    spec = parse_spec({**BUDGET_SPEC, "scalelab": {"workers": 2, "store": str(store)}})
    assert len(spec.runs) == 8
    started = []

    class Recording:  # the local executor, noting the order runs start in
        def __init__(self):
            from scalelab.sweep.executors import LocalExecutor

            self.inner = LocalExecutor(2, "cpu", checkpoint_root=tmp_path / "checkpoints")

        def run(self, queue, on_start, on_event=None, tracking=None):
            def note(cfg, device):
                started.append(cfg.run_id)
                on_start(cfg, device)
            return self.inner.run(queue, note, on_event, tracking)

    outcome = run_sweep(spec, progress=False, tracking=False, executor=Recording())
    assert outcome.counts == {"finished": 8}
    by_id = {cfg.run_id: cfg for cfg in spec.runs}
    table = scalelab.load_runs(store)
    runs = table.drop_duplicates("run_id").set_index("run_id")
    assert (runs["attempts"] == 1).all()
    for run_id, cfg in by_id.items():
        if cfg.role == "branch":
            assert started.index(cfg.parent) < started.index(run_id)
    # the data axis in every row, one samples column
    for column in ("samples", "samples_seen", "epochs", "parent", "branch_step", "flops"):
        assert column in table.columns
    assert not any(c.endswith(("_x", "_y")) and c.startswith("samples") for c in table.columns)
    np.testing.assert_allclose(table["epochs"], table["samples_seen"] / 48)
    final = table.sort_values("step").groupby("run_id").tail(1).set_index("run_id")
    roles = run_roles(final)
    assert sorted(roles) == ["branch"] * 6 + ["trunk"] * 2
    for run_id in final.index[roles == "branch"]:
        cfg = by_id[run_id]
        assert final.loc[run_id, "step"] == cfg.steps
        assert final.loc[run_id, "samples_seen"] == cfg.steps * 8
    # the compute the store says was spent is the plan's
    planned = budget_compute(plan_sweep(spec))
    assert compute_spent(table) == pytest.approx(planned["spent"], rel=1e-9)
    assert float(final["flops"][roles == "branch"].sum()) == pytest.approx(
        planned["independent"], rel=1e-9)
    # exported and read back, the columns stay
    exported = tmp_path / "runs.csv"
    with scalelab.runs.StoreReader(store) as db:
        db.export(exported)
    back = scalelab.load_runs(exported)
    assert {"samples", "samples_seen", "epochs", "parent", "branch_step"} <= set(back.columns)
    assert compute_spent(back) == pytest.approx(planned["spent"], rel=1e-9)


def test_older_tables_get_epochs_from_samples_seen():
    old = pd.DataFrame({"run_id": ["a", "a"], "samples": [64, 64], "samples_seen": [0, 128],
                        "step": [0, 8]})
    from scalelab.table import with_data_columns

    assert with_data_columns(old)["epochs"].tolist() == [0.0, 2.0]


def test_plan_lists_branches_and_the_compute_saved(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**BUDGET_SPEC, "parameters": {
        **BUDGET_SPEC["parameters"], "cooldowns": {"value": [0.25, 0.5, 0.75, 1.0]},
        "cooldown_fraction": {"value": 0.2}, "steps": {"value": 400}}}))
    done = subprocess.run([sys.executable, "-m", "scalelab.cli", "sweep", "plan", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "10 runs" in done.stdout and done.stdout.count(" branch ") == 8
    assert "8 branches of 2 trunks" in done.stdout and "50%)" in done.stdout


# ---- killed trunks with branches pending ----------------------------------------------
def _store_runs(store):
    import sqlite3

    if not store.exists():
        return {}
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT run_id, status, attempts, info FROM runs").fetchall()
        curves = {r[0]: [json.loads(m) for (m,) in db.execute(
            "SELECT metrics FROM curve WHERE run_id=? ORDER BY step", (r[0],))] for r in rows}
    except sqlite3.OperationalError:  # the driver is creating the store right now
        return {}
    finally:
        db.close()
    return {r[0]: {"status": r[1], "attempts": r[2], "info": json.loads(r[3]),
                   "curve": curves[r[0]]} for r in rows}


def _check_resumed_once(spec, final, killed_step):
    """The trunk resumed from its checkpoint; every branch ran once, from the trunk, and
    every curve is the uninterrupted run's (trained here, one thread, as the workers)."""
    trunk = next(cfg for cfg in spec.runs if cfg.role == "trunk")
    branches = [cfg for cfg in spec.runs if cfg.role == "branch"]
    assert final[trunk.run_id]["status"] == "finished"
    assert final[trunk.run_id]["attempts"] == 2
    assert final[trunk.run_id]["info"]["resumed_from_step"] >= killed_step > 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for cfg in [trunk, *branches]:
            run = final[cfg.run_id]
            if cfg.role == "branch":
                assert run["status"] == "finished" and run["attempts"] == 1
                assert run["info"]["branched_from_step"] == cfg.branch_step
            reference = train(replace(cfg, parent="", checkpoint_every=0))
            assert [r["step"] for r in run["curve"]] == [r["step"] for r in reference.rows]
            np.testing.assert_allclose([r["val_loss"] for r in run["curve"]],
                                       [r["val_loss"] for r in reference.rows], rtol=1e-4)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_sigkilled_driver_with_branches_pending_resumes_each_run_once(tmp_path):
    import signal
    import time

    store = tmp_path / "out" / "runs.db"
    raw = {**BUDGET_SPEC, "parameters": {
        **BUDGET_SPEC["parameters"], "width": {"value": 4}, "steps": {"value": 600},
        "eval_every": {"value": 50}, "checkpoint_every": {"value": 10},
        "cooldowns": {"value": [0.25, 0.5, 1.0]}, "cooldown_fraction": {"value": 0.2}},
        "scalelab": {"workers": 2, "store": str(store)}}
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = parse_spec(raw)
    trunk = next(cfg for cfg in spec.runs if cfg.role == "trunk")
    last = checkpoint_path(store.parent / "checkpoints" / trunk.run_id)
    command = [sys.executable, "-m", "scalelab.cli", "sweep", "run", str(path), "--no-wandb",
               "--quiet"]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    killed_step = None
    while time.monotonic() < deadline and driver.poll() is None:  # the trunk past 1/4
        if last.exists():
            state = torch.load(last, map_location="cpu", weights_only=True)
            if state["status"] == "running" and state["step"] >= 200:
                killed_step = state["step"]
                break
        time.sleep(0.05)
    assert killed_step is not None and driver.poll() is None, "the trunk was not caught"
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(1.5)  # the orphaned worker notices its driver died and exits
    runs = _store_runs(store)
    assert runs[trunk.run_id]["status"] == "running"
    assert {runs[c.run_id]["status"] for c in spec.runs if c.role == "branch"} == {"pending"}
    killed_step = torch.load(last, map_location="cpu", weights_only=True)["step"]
    assert killed_step < 600

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    _check_resumed_once(spec, _store_runs(store), killed_step)
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert "4 already in the store" in rerun.stdout  # nothing runs a third time


@pytest.mark.slow
def test_killed_trunk_with_branches_pending_resumes_once_on_ray(tmp_path):
    ray = pytest.importorskip("ray")
    from scalelab.sweep import RunStore

    store = tmp_path / "runs.db"
    spec = parse_spec({**BUDGET_SPEC, "parameters": {
        **BUDGET_SPEC["parameters"], "width": {"value": 4}, "checkpoint_every": {"value": 4}},
        "scalelab": {"executor": "ray", "store": str(store)}})
    trunk = next(cfg for cfg in spec.runs if cfg.role == "trunk")

    class Killed(Exception):
        pass

    def kill_at_12(row):
        if row["step"] == 12:
            raise Killed

    # the driver had handed the trunk out and died while it trained: its checkpoint at
    # step 8 and its branch checkpoint at 6 are on disk, the store says it is running
    with RunStore(store) as db:
        db.add_sweep(spec.name, spec.raw, spec.runs)
        db.mark_running(trunk.run_id)
    with pytest.raises(Killed):
        train(trunk, on_row=kill_at_12, checkpoint_dir=tmp_path / "checkpoints" / trunk.run_id)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcome = run_sweep(spec, progress=False, tracking=False)
    finally:
        ray.shutdown()
    assert outcome.counts == {"finished": 4}
    _check_resumed_once(spec, _store_runs(store), 8)


def test_laws_and_compute_optimal_take_samples_seen():
    from scalelab.laws import ChinchillaLaw, compute_optimal

    # Hoffmann et al. 2022's fitted law (E, A, B, alpha, beta), on the samples-seen axis
    E, A, B, alpha, beta = 1.69, 406.4, 410.7, 0.34, 0.28
    n, d = np.meshgrid(np.geomspace(1e7, 1e10, 6), np.geomspace(1e9, 1e12, 6))
    table = pd.DataFrame({"params": n.ravel(), "samples_seen": d.ravel(),
                          "samples": 1e9})  # U fixed: many epochs on the right
    table["val_loss"] = E + A / table["params"] ** alpha + B / table["samples_seen"] ** beta
    law = ChinchillaLaw(n_bootstrap=0).fit(table, samples="samples_seen")
    np.testing.assert_allclose(law.params_[["E", "A", "B", "alpha", "beta"]],
                               [E, A, B, alpha, beta], rtol=1e-3)
    optimum = compute_optimal(law, [1e21])
    assert list(optimum.columns) == ["params", "samples_seen", "loss"]
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))  # Hoffmann et al. eq. 4
    row = optimum.iloc[0]
    assert row["params"] == pytest.approx(G * (1e21 / 6) ** (beta / (alpha + beta)), rel=1e-2)
    assert 6 * row["params"] * row["samples_seen"] == pytest.approx(1e21, rel=1e-12)
