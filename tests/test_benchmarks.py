"""Benchmarks are scripts that print their figures; here each runs once, small, as a smoke
test (no assertion on time: only that it runs and prints the figures it promises)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"

CASES = {
    "bench_laws.py": (["--stride", "450", "--repeats", "1"], ["speed-up", "objective"]),
    "bench_law_fits.py": (["--repeats", "1", "--scipy-stride", "450"], ["before/now", "objective"]),
    "bench_calibration.py": (["--quick", "--repeats", "1"], ["ece", "crps"]),
    "bench_train.py": (["--families", "edsr", "--steps", "2", "--rounds", "1",
                        "--field-size", "16"], ["samples/s"]),
    "bench_predict.py": (["--synthetic"], ["mean are", "persistence", "covered"]),
    "bench_sweep.py": (["--runs", "2", "--steps", "5", "--repeats", "1", "--field-size", "16"],
                       ["runs/h"]),
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
