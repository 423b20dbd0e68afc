"""Benchmarks are scripts that print their figures; here each runs once, small, as a smoke
test (no assertion on time: only that it runs and prints the figures it promises)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"

CASES = {
    "bench_laws.py": (["--stride", "450", "--repeats", "1"], ["speed-up", "objective"]),
    "bench_fit_size.py": (["--sizes", "1e3", "2e4", "--old-max", "1e3"],
                          ["peak mb", "old/new", "objective"]),
    "bench_law_fits.py": (["--repeats", "1", "--scipy-stride", "450", "--skip-large"],
                          ["lbfgs/gauss-newton", "scipy/gauss-newton", "objective"]),
    "bench_calibration.py": (["--quick", "--repeats", "1"], ["ece", "crps"]),
    "bench_train.py": (["--families", "edsr", "swinir", "diffusion", "irn", "--steps", "2",
                        "--rounds", "1", "--field-size", "16", "--kernels"],
                       ["samples/s", "per-region evaluation", "learned kernels"]),
    "bench_branches.py": (["--seeds", "2", "--steps", "40", "--width", "4"],
                          ["inside spread", "saved"]),
    "bench_farseer.py": (["--layouts", "farseer", "--seeds", "1", "--n-bootstrap", "5"],
                         ["farseerlaw", "chinchillalaw", "leave out", "chose"]),
    "bench_predict.py": (["--layouts", "over-training", "--seeds", "1", "--n-bootstrap", "5"],
                         ["over-training", "persist", "cov", "direct"]),
    "bench_sweep.py": (["--runs", "2", "--steps", "5", "--repeats", "1", "--field-size", "16"],
                       ["runs/h"]),
    "bench_gridded.py": (["--size", "0.05", "--samples", "64", "--steps", "2"],
                         ["peak rss", "gb on disk", "deleted"]),
}


def test_every_benchmark_has_a_smoke_case():
    assert {p.name for p in BENCH.glob("bench_*.py")} <= set(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(CASES))
def test_benchmark_runs_and_prints_its_figures(script):
    args, expected = CASES[script]
    result = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout.lower()
    for word in expected:
        assert word in out, (word, result.stdout[-2000:])


def _gpu_check():
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", BENCH / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_plans_every_step_and_records_failures_without_stopping(tmp_path):
    """benchmarks/gpu_check.sh on a machine without a GPU: the dry run writes the plan; a
    step that fails or outlives its limit is recorded and the check goes on."""
    import json

    out = tmp_path / "check.json"
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--dry-run", "--output",
                           str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert list(report["steps"]) == ["gpu-tests", "bench-train", "bench-families", "bench-sweep",
                                     "crps-cuda"]
    assert {s["status"] for s in report["steps"].values()} == {"planned"}
    assert sum(s["limit_s"] for s in report["steps"].values()) <= 7 * 60
    families = report["steps"]["bench-families"]["command"]
    assert {"swinir", "diffusion", "unet", "srcnn"} <= set(families)
    train = report["steps"]["bench-train"]["command"]
    assert {"--device", "cuda", "--compile"} <= set(train)

    check = _gpu_check()
    failed = check.run_step("x", [sys.executable, "-c", "print('half'); raise SystemExit(3)"], 60)
    assert failed["status"] == "failed" and failed["returncode"] == 3
    assert "half" in failed["output_tail"]
    slow = check.run_step("x", [sys.executable, "-c", "import time; time.sleep(30)"], 0.5)
    assert slow["status"] == "timeout" and slow["returncode"] is None
    missing = check.run_step("x", [str(tmp_path / "no-such-program")], 5)
    assert missing["status"] == "failed"

    # the figures are read from what the benchmarks print
    sweep = check.parse("bench-sweep", "sweep of 16 runs (...)\n"
                        "           one at a time:    80.0 s       720 runs/hour\n"
                        " one at a time, 1 thread:    90.0 s       640 runs/hour\n"
                        "                  packed:    20.0 s      2880 runs/hour\n")
    assert sweep["packed"] == {"seconds": 20.0, "runs_per_hour": 2880}
    assert sweep["packed_vs_one_at_a_time"] == 4.0
    assert check.parse("gpu-tests", "6 passed, 1 skipped in 3.2s") == {"passed": 6,
                                                                       "skipped": 1}
    train = check.parse("bench-train", (
        "device: NVIDIA H100\n"
        "family   width depth     params GFLOP/sample |   fp32 samples/s  TFLOP/s  % peak | "
        "  bf16+NHWC samples/s  TFLOP/s  % peak | speed-up\n"
        "edsr        16     2      14080        0.010 |   1000.0   0.0300   0.01% | "
        "  2500.0   0.0750   0.02% | 2.50×\n"))
    row, = train["rows"]
    assert row["fp32_samples_per_s"] == 1000.0 and row["bf16+NHWC_samples_per_s"] == 2500.0
    assert row["speed_up"] == [2.5] and row["params"] == 14080


@pytest.mark.slow
def test_gpu_check_crps_step_runs_on_a_cpu(tmp_path):
    import json

    out = tmp_path / "check.json"
    done = subprocess.run([sys.executable, str(BENCH / "gpu_check.py"), "--only", "crps-cuda",
                           "--device", "cpu", "--output", str(out)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    step = json.loads(out.read_text())["steps"]["crps-cuda"]
    assert step["status"] == "ok", step
    assert step["figures"]["device"] == "cpu" and step["figures"]["max_abs_difference"] < 1e-5
