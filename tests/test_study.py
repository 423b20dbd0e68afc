"""The real-scale study (benchmarks/study.py, gpu_study.sh) and the backtest it reports
(bench_predict.backtest_largest)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _module(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _law(n, d):  # a Chinchilla-form loss: E + A·N^−α + B·D^−β
    return 0.02 + 2.0 * n ** -0.3 + 30.0 * d ** -0.45


def _budget_table(noise=0.002, seed=0):
    """Ten sizes over two decades, each a trunk and three cooldown branches (D = 8k, 16k,
    32k samples seen), one row per run; the unannealed trunks are 30% worse than the law."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(np.geomspace(1e3, 1e5, 10)):
        trunk = f"t{i}"
        rows.append({"run_id": trunk, "parent": None, "cooldowns": "[0.25, 0.5, 1.0]",
                     "params": n, "samples": 4096, "samples_seen": 32000.0, "step": 1000,
                     "loss_variant": "mse", "status": "finished",
                     "val_loss": 1.3 * _law(n, 32000.0)})
        for j, d in enumerate((8000.0, 16000.0, 32000.0)):
            rows.append({"run_id": f"b{i}{j}", "parent": trunk, "cooldowns": "[0.25, 0.5, 1.0]",
                         "params": n, "samples": 4096, "samples_seen": d, "step": int(d / 32),
                         "loss_variant": "mse", "status": "finished",
                         "val_loss": _law(n, d) * (1 + noise * rng.standard_normal())})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("ratio, kept_sizes", [(10.0, 5), (30.0, 3)])
def test_backtest_largest_holds_out_the_largest_model_and_scores_persistence(ratio, kept_sizes):
    backtest_largest = _module("bench_predict").backtest_largest
    table = _budget_table()
    sizes = np.geomspace(1e3, 1e5, 10)
    kept = sizes[sizes <= 1e5 / ratio * 1.0001]
    assert kept.size == kept_sizes
    b = backtest_largest(table, ratio, n_bootstrap=20)

    # the target: the largest model at the longest budget; its branch alone is the truth
    branch_at_top = table[(table.run_id == "b92")]["val_loss"].item()
    assert b["target"] == {"params": pytest.approx(1e5), "samples_seen": 32000.0}
    assert b["truth"] == pytest.approx(branch_at_top, rel=1e-12)
    assert b["distance"] == pytest.approx(1e5 / kept[-1])
    assert b["sizes_kept"] == kept_sizes and b["runs_kept"] == 3 * kept_sizes  # no trunks
    # persistence: the largest model kept, at the same budget
    persistence = table[(table.params == kept[-1]) & (table.samples_seen == 32000.0)
                        & table.parent.notna()]["val_loss"].item()
    assert b["persistence"] == pytest.approx(persistence, rel=1e-12)
    assert b["persistence_are"] == pytest.approx(abs(persistence - branch_at_top) / branch_at_top)
    assert b["persistence_are"] > 0.05  # the law falls over the distance
    # the law's prediction: close to the closed form, well inside persistence's error
    assert b["are"] == pytest.approx(abs(b["prediction"] - branch_at_top) / branch_at_top)
    assert b["are"] < b["persistence_are"] / 3 and b["beats_persistence"]
    assert b["lower"] <= b["prediction"] <= b["upper"]
    assert b["covered"] == (b["lower"] <= branch_at_top <= b["upper"])


def test_gpu_study_fails_fast_without_a_gpu(tmp_path):
    """On a machine torch sees no CUDA device on, gpu_study.sh stops in seconds with one
    sentence and starts nothing (no store, no data, no results)."""
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env["CUDA_VISIBLE_DEVICES"] = ""
    done = subprocess.run(["bash", str(BENCH / "gpu_study.sh")], capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "sees no CUDA device" in done.stderr and "--cpu" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_profiles_span_the_decades_the_study_promises():
    """Parameter counts of the sweeps' smallest and largest networks (built, counted):
    each sweep of the CPU study spans ≥ 1.5 decades, of the GPU study ≥ 2, reaching ~10⁷;
    the EDSR sweeps (and every GPU sweep) keep ≥ 3 sizes below N_max/30 for the 30×
    backtest."""
    from scalelab.models.build import count_params
    from scalelab.train.loop import make_model

    study = _module("study")
    for name, decades in (("cpu", 1.5), ("gpu", 2.0), ("smoke", 0.9)):
        profile = study.PROFILES[name]
        for sweep in profile.sweeps:
            if sweep.resolution:  # the same sizes as the precipitation sweep, +2 input channels
                continue
            spec = study.load(profile, sweep, Path("/tmp/never-written/runs.db"))
            counts = {}
            for cfg in spec.runs:
                if cfg.width not in counts:
                    counts[cfg.width] = count_params(make_model(cfg))  # as runs count N
            n = np.array(sorted(counts.values()), dtype=float)
            assert np.log10(n[-1] / n[0]) >= decades, (name, sweep.name, n)
            if "edsr" in sweep.name or name == "gpu":
                assert (n <= n[-1] / 30).sum() >= study.MIN_SIZES, (name, sweep.name, n)
            if name == "gpu" and "edsr" in sweep.name:
                assert 5e6 < n[-1] < 2e7
            roles = {cfg.role for cfg in spec.runs}
            assert roles == {"trunk", "branch"}  # WSD budgets for D
    assert not Path("/tmp/never-written").exists()


@pytest.mark.slow
def test_smoke_study_writes_the_table_and_its_backtests(tmp_path):
    """study.py --smoke end to end on one sweep: the runs table as CSV (and Parquet), the
    backtests at 10× and 30× in the JSON, consistent with the table."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "disabled"}
    env.pop("OUT", None)
    done = subprocess.run([sys.executable, str(BENCH / "study.py"), "--smoke", "--only",
                           "precip-edsr", "--store", str(tmp_path / "runs.db"), "--results",
                           str(tmp_path / "results"), "--n-bootstrap", "20"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "precip-edsr 28/28" in done.stdout
    table = pd.read_csv(tmp_path / "results" / "study_smoke.csv")
    assert table["run_id"].nunique() == 28 and set(table["study_sweep"]) == {"precip-edsr"}
    if importlib.util.find_spec("pyarrow"):
        parquet = pd.read_parquet(tmp_path / "results" / "study_smoke.parquet")
        assert len(parquet) == len(table)
    report = json.loads((tmp_path / "results" / "study_smoke_backtest.json").read_text())
    assert report["sweeps"] == {"precip-edsr": "finished"} and report["runs"] == 28
    final = table.sort_values("step").groupby("run_id").tail(1)
    branches = final[final["parent"].notna()]
    top = branches[branches["params"] == branches["params"].max()]
    truth = top.loc[top["samples_seen"].idxmax(), "val_loss"]
    assert [b["ratio"] for b in report["backtests"]] == [10.0, 30.0]
    for b in report["backtests"]:
        assert "error" not in b, b
        assert b["truth"] == pytest.approx(truth, rel=1e-5)
        assert b["distance"] >= b["ratio"]
        assert b["are"] == pytest.approx(abs(b["prediction"] - truth) / truth, rel=1e-4)
