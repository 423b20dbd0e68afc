"""`scalelab sweep wandb` writes a sweep W&B accepts (its own schema) with a program/command
that W&B's own agent code turns into a command line; that command runs the trial through the
same training code, records it in the spec's store and logs it as the W&B run the agent made.
All offline: W&B's Agent builds and starts the command as it would for a controller's
'run' order."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

import scalelab
from scalelab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def exported_sweep(tmp_path, capsys):
    store = tmp_path / "out" / "runs.db"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "agent", "method": "random", "run_cap": 4,
        "metric": {"name": "val_loss", "goal": "minimize"},
        "early_terminate": {"type": "hyperband", "min_iter": 1},
        "parameters": {"width": {"values": [4, 6]},
                       "lr": {"distribution": "log_uniform_values", "min": 1e-3, "max": 1e-2},
                       "train": {"parameters": {"steps": {"value": 4},
                                                "eval_every": {"value": 2}}},
                       "depth": {"value": 1}, "field_size": {"value": 16},
                       "samples": {"value": 32}, "val_samples": {"value": 16},
                       "batch_size": {"value": 16}},
        "scalelab": {"store": str(store), "wandb": {"project": "agent-test"}},
    }))
    out = tmp_path / "sweep.yaml"
    assert main(["sweep", "wandb", str(spec), "scalelab.max_attempts=1", "-o", str(out)]) == 0
    capsys.readouterr()
    return spec, store, yaml.safe_load(out.read_text())


def test_exported_sweep_passes_wandb_schema_and_names_the_agent_command(tmp_path, capsys):
    import jsonschema

    spec, _, config = exported_sweep(tmp_path, capsys)
    schema = json.loads((ROOT / "tests/data/wandb_sweeps/schema.json").read_text())
    jsonschema.validate(config, schema)
    assert config["program"] == "scalelab"
    assert config["command"] == ["${env}", "scalelab", "agent-run", str(spec.absolute()),
                                 "scalelab.max_attempts=1", "${args_no_hyphens}"]
    assert config["early_terminate"] == {"type": "hyperband", "min_iter": 1}


@pytest.mark.slow
def test_wandb_agent_runs_a_trial_through_scalelab_into_the_store(tmp_path, capsys,
                                                                   monkeypatch):
    from wandb.wandb_agent import Agent

    spec, store, config = exported_sweep(tmp_path, capsys)
    if shutil.which("scalelab") is None:  # the console script sits beside the interpreter
        monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}"
                                   f"{os.environ['PATH']}")
    if shutil.which("scalelab") is None:
        pytest.skip("the scalelab command is not installed (pip install -e .)")
    for name in ("WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):  # the agent sets them
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SWEEP_ID", "sw33p")
    monkeypatch.setenv("WANDB_PROJECT", "agent-test")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
    monkeypatch.chdir(tmp_path)

    # what W&B's controller sends an agent for one trial: a value for every parameter,
    # nested groups flattened into the run's config as W&B does
    trial = {"width": 6, "lr": 0.0031622776601683794, "steps": 4, "eval_every": 2,
             "depth": 1, "field_size": 16, "samples": 32, "val_samples": 16, "batch_size": 16}
    agent = Agent(api=None, queue=None, sweep_id="sw33p")
    agent._sweep_command = config["command"]  # as Agent.run reads it from the sweep
    agent._command_run({"type": "run", "run_id": "trial01", "program": config["program"],
                        "args": {k: {"value": v} for k, v in trial.items()}})
    process = agent._run_processes["trial01"]
    assert process.wait(timeout=600) == 0

    table = scalelab.load_runs(store)
    assert table["run_id"].nunique() == 1
    run = table.iloc[-1]
    assert run["status"] == "finished" and run["width"] == 6 and run["steps"] == 4
    assert run["lr"] == pytest.approx(trial["lr"], rel=1e-12)
    assert list(table["step"]) == [0, 2, 4]
    # the trial is the W&B run the agent made (its id), logged offline as it trained
    folders = sorted((store.parent / "wandb").glob("offline-run-*-trial01"))
    assert len(folders) == 1
    from_wandb = scalelab.load_runs(folders[0])
    assert list(from_wandb["step"]) == [0, 2, 4]
    assert from_wandb["val_loss"].to_numpy() == pytest.approx(table["val_loss"].to_numpy(),
                                                              rel=1e-12)
    # the store records the spec as the trial ran it
    with scalelab.runs.StoreReader(store) as reader:
        (_, saved), = reader.sweeps()
    assert "width=6" in saved["overrides"] and "scalelab.max_attempts=1" in saved["overrides"]


def test_agent_run_needs_every_swept_value(tmp_path, capsys):
    spec, store, _ = exported_sweep(tmp_path, capsys)
    assert main(["agent-run", str(spec), "width=4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "give every swept parameter" in err[0]
    assert not store.exists()
