"""`scalelab run` on bad input: one sentence naming the file and the key, exit 2, no run."""

import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """
name: tiny
method: grid
parameters:
  width: {values: [4]}
  field_size: {value: 16}
  samples: {value: 8}
  steps: {value: 2}
  eval_every: {value: 1}
scalelab:
  store: STORE
"""


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "scalelab.cli", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("parameters: {width: {values: [4, 8]}\n  bad", "YAML syntax error at line"),
        (GOOD.replace("width:", "widht:"), "unknown parameter 'widht'"),
        (GOOD.replace("[4]", "[-4]"), "width must be a positive integer, got -4"),
        (GOOD + "  executor: moon\n", "scalelab.executor 'moon' is unknown"),
        (GOOD.replace("width: {values: [4]}", "loss_variant: {value: nope}"),
         "loss_variant 'nope': unknown loss 'nope'; valid choices are mse, l1"),
        (GOOD.replace("scalelab:", "colour: red\nscalelab:"), "unknown top-level key 'colour'"),
        (GOOD.replace("{value: 16}", "{value: 18}"), "scale 4 does not divide field_size 18"),
        (GOOD.replace("{values: [4]}", "{values: []}"), "values must be a non-empty list"),
    ],
)
def test_bad_spec_is_one_sentence_and_runs_nothing(tmp_path, text, expected):
    store = tmp_path / "out" / "runs.db"
    spec = tmp_path / "bad.yaml"
    spec.write_text(text.replace("STORE", str(store)))
    result = run_cli("run", str(spec))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"scalelab: error: {spec}")
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert not store.exists()


def test_missing_spec_file(tmp_path):
    result = run_cli("run", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "no such sweep spec file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_report_of_missing_store(tmp_path):
    result = run_cli("report", str(tmp_path / "missing.db"))
    assert result.returncode == 2
    assert "no such run store" in result.stderr


def test_foreign_file_as_store_is_left_untouched(tmp_path):
    foreign = tmp_path / "runs.db"
    foreign.write_text("my thesis, do not overwrite\n")
    spec = tmp_path / "s.yaml"
    spec.write_text(GOOD.replace("STORE", str(foreign)))
    result = run_cli("run", str(spec), "--no-wandb", "--quiet")
    assert result.returncode == 2
    assert "not a SQLite file" in result.stderr
    assert foreign.read_text() == "my thesis, do not overwrite\n"


@pytest.mark.parametrize("options, expected", [
    (["--workers", "-1"], "--workers (scalelab.workers) must be a positive integer or 'auto', "
                          "got -1"),
    (["--workers", "0"], "--workers (scalelab.workers) must be a positive integer or 'auto', "
                         "got 0"),
    (["--executor", "slurm"], "--executor (scalelab.executor) 'slurm' is unknown"),
])
@pytest.mark.parametrize("command", [["run"], ["sweep", "run"]])
def test_command_line_options_are_validated_with_the_spec(tmp_path, command, options, expected):
    store = tmp_path / "out" / "runs.db"
    spec = tmp_path / "s.yaml"
    spec.write_text(GOOD.replace("STORE", str(store)))
    result = run_cli(*command, str(spec), *options, "--no-wandb", "--quiet")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"scalelab: error: {spec}: "), result.stderr
    assert expected in lines[0]
    assert not store.exists()
