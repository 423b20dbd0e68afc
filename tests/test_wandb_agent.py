"""`scalelab sweep wandb` writes a sweep W&B accepts (its own schema) with a program/command
that W&B's own agent code turns into a command line; that command runs the trial through the
same training code, records it in the spec's store and logs it as the W&B run the agent made.
All offline: W&B's Agent builds and starts the command as it would for a controller's
'run' order, and W&B's own controller code (the ``sweeps`` package that ``wandb sweep
--controller`` and W&B's server use; vendored unchanged in tests/data/wandb_sweeps/vendor
when not installed) chooses the trials of a spec with nested parameter groups."""

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
    assert config["command"] == ["${env}", "scalelab", "agent-run", str(spec),
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


VENDOR = ROOT / "tests/data/wandb_sweeps/vendor"


def wandb_controller():
    """W&B's sweep controller code: ``sweeps.next_run`` (grid, random, bayes search)."""
    import warnings

    with warnings.catch_warnings():  # its pydantic v1-style config, at import
        warnings.simplefilter("ignore")
        try:
            import sweeps
        except ImportError:
            sweeps = None
        if not hasattr(sweeps, "next_run"):
            # not installed (it pins numpy < 2, so not a test dependency), or the
            # repository's own sweeps/ folder of specs taken for it: the vendored copy
            sys.modules.pop("sweeps", None)
            sys.path.insert(0, str(VENDOR))
            try:
                import sweeps
            finally:
                sys.path.remove(str(VENDOR))
    return sweeps


NESTED = {
    "name": "nested", "method": "grid",
    "metric": {"name": "val_loss", "goal": "minimize"},
    "parameters": {
        "model": {"parameters": {"width": {"values": [4, 6]}, "depth": {"value": 1}}},
        "data": {"parameters": {"samples": {"value": 32}, "val_samples": {"value": 16},
                                "field_size": {"value": 16}}},
        "train": {"parameters": {"steps": {"value": 4}, "eval_every": {"value": 2},
                                 "batch_size": {"value": 16},
                                 "optim": {"parameters": {"lr": {"value": 3e-3}}}}},
    },
    "scalelab": {"store": "out/runs.db", "wandb": {"project": "nested"}},
}


def _as_wandb_sends(run) -> dict:
    """A controller's trial as an agent receives it: through W&B's server, as JSON."""
    return json.loads(json.dumps(run.config))


def test_wandb_controller_trials_of_a_nested_spec_are_read_by_agent_run(tmp_path, capsys,
                                                                       monkeypatch):
    """W&B's controller hands a trial a nested group as one mapping (model={'width': 4,
    'depth': 1}); agent-run answered "unknown parameter 'model'"."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    from scalelab.sweep import load_spec

    sweeps = wandb_controller()
    monkeypatch.chdir(tmp_path)
    random_spec = {**NESTED, "method": "random", "run_cap": 3}
    random_spec["parameters"] = {**NESTED["parameters"], "train": {"parameters": {
        **NESTED["parameters"]["train"]["parameters"],
        "optim": {"parameters": {"lr": {"distribution": "log_uniform_values",
                                        "min": 1e-4, "max": 1e-2}}}}}}
    for raw in (NESTED, random_spec):
        Path("spec.yaml").write_text(yaml.safe_dump(raw))
        assert main(["sweep", "wandb", "spec.yaml", "-o", "sweep.yaml"]) == 0
        config = yaml.safe_load(Path("sweep.yaml").read_text())
        assert not sweeps.schema_violations_from_proposed_config(config)
        done = []
        for _ in range(2):
            trial = sweeps.next_run(config, done)
            args = _as_wandb_sends(trial)
            assert set(args) == {"model", "data", "train"}  # nested groups, one mapping each
            values = create_sweep_command_args({"args": args})["args_no_hyphens"]
            assert "model={'depth': 1, 'width': %d}" % args["model"]["value"]["width"] in values  # Python's repr
            spec = load_spec(config["command"][3], assignments=values)
            (run,) = spec.runs
            model, train = args["model"]["value"], args["train"]["value"]
            assert (run.width, run.depth, run.samples, run.steps) == (
                model["width"], model["depth"], 32, 4)
            assert run.lr == pytest.approx(train["optim"]["lr"], rel=1e-12)
            done.append(sweeps.SweepRun(name=f"r{len(done)}", state=sweeps.RunState.finished,
                                        config=trial.config,
                                        summary_metrics={"val_loss": 1.0}))
        if raw["method"] == "grid":  # the grid's two points, each once
            assert sorted(r.config["model"]["value"]["width"] for r in done) == [4, 6]
    capsys.readouterr()


def test_exported_command_names_the_spec_as_given_and_a_per_agent_store(tmp_path, capsys,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("spec.yaml").write_text(yaml.safe_dump(NESTED))
    assert main(["sweep", "wandb", "spec.yaml", "-o", "sweep.yaml", "--store",
                 "out/agent-$SCALELAB_AGENT/runs.db"]) == 0
    assert "give agents on one machine their own with --store" in capsys.readouterr().out
    config = yaml.safe_load(Path("sweep.yaml").read_text())
    assert config["command"] == ["${env}", "scalelab", "agent-run", "--store",
                                 "out/agent-$SCALELAB_AGENT/runs.db", "spec.yaml",
                                 "${args_no_hyphens}"]
    # an agent without the variable: one sentence, nothing written
    monkeypatch.delenv("SCALELAB_AGENT", raising=False)
    assert main(["agent-run", "--store", "out/agent-$SCALELAB_AGENT/runs.db", "spec.yaml",
                 "model={'width': 4, 'depth': 1}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "names $SCALELAB_AGENT, which is not set here" in err[0]
    assert not Path("out").exists()


@pytest.mark.slow
def test_wandb_controller_and_agents_run_a_nested_spec_into_their_own_stores(
        tmp_path, capsys, monkeypatch):
    """End to end: W&B's controller chooses the grid's trials of a nested spec, W&B's
    agent code starts the exported command for each (two agents on one machine at once,
    each with its own store), and each trial is trained and recorded."""
    from wandb.wandb_agent import Agent

    sweeps = wandb_controller()
    if shutil.which("scalelab") is None:  # the console script sits beside the interpreter
        monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}"
                                   f"{os.environ['PATH']}")
    if shutil.which("scalelab") is None:
        pytest.skip("the scalelab command is not installed (pip install -e .)")
    for name in ("WANDB_RUN_ID", "WANDB_SWEEP_PARAM_PATH"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SWEEP_ID", "n3st")
    monkeypatch.setenv("WANDB_PROJECT", "nested")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
    monkeypatch.chdir(tmp_path)
    Path("spec.yaml").write_text(yaml.safe_dump(NESTED))
    assert main(["sweep", "wandb", "spec.yaml", "-o", "sweep.yaml", "--store",
                 "out/agent-$SCALELAB_AGENT/runs.db"]) == 0
    capsys.readouterr()
    config = yaml.safe_load(Path("sweep.yaml").read_text())

    done, agents = [], {}
    for agent_name in ("a", "b"):
        trial = sweeps.next_run(config, done)
        done.append(sweeps.SweepRun(name=f"trial-{agent_name}", state=sweeps.RunState.running,
                                    config=trial.config))
        monkeypatch.setenv("SCALELAB_AGENT", agent_name)  # what each agent's shell sets
        agent = Agent(api=None, queue=None, sweep_id="n3st")
        agent._sweep_command = config["command"]
        agent._command_run({"type": "run", "run_id": f"trial-{agent_name}",
                            "program": config["program"], "args": _as_wandb_sends(trial)})
        agents[agent_name] = (agent._run_processes[f"trial-{agent_name}"], trial)
    widths = {}
    for agent_name, (process, trial) in agents.items():
        assert process.wait(timeout=600) == 0
        store = tmp_path / f"out/agent-{agent_name}/runs.db"
        table = scalelab.load_runs(store)
        assert table["run_id"].nunique() == 1 and list(table["step"]) == [0, 2, 4]
        run = table.iloc[-1]
        model = trial.config["model"]["value"]
        assert (run["width"], run["depth"], run["samples"], run["steps"]) == (
            model["width"], model["depth"], 32, 4)
        assert run["lr"] == pytest.approx(3e-3) and run["status"] == "finished"
        widths[agent_name] = int(run["width"])
        folders = sorted((store.parent / "wandb").glob(f"offline-run-*-trial-{agent_name}"))
        assert len(folders) == 1  # the W&B run the agent made, beside its store
        assert list(scalelab.load_runs(folders[0])["step"]) == [0, 2, 4]
    assert sorted(widths.values()) == [4, 6]  # the controller's two grid points
