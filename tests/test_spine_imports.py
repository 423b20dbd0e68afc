"""Analysis never needs torch: the analysis parts import without it."""

import subprocess
import sys


def test_analysis_parts_do_not_import_torch():
    code = ("import sys, scalelab, scalelab.laws, scalelab.calibration, scalelab.report, "
            "scalelab.table; assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_run_result_imports_without_torch():
    """Train and sweep share RunResult; a driver without torch can unpickle it."""
    code = ("import sys; from scalelab.result import RunResult; "
            "assert RunResult('a', 'failed').host; assert 'torch' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
