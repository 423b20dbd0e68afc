"""The command line's conventions: key=value overrides (applied before validation and recorded
with the spec in the store), --version, `runs list` with a metric column, --sort, --sweep and a
checked --status, `scalelab run` taking every option of `sweep run`, early_terminate refused by
scalelab's own executors, and `sync` finding the key of `wandb login`."""

import os
import re

import pytest
import yaml

from scalelab._errors import SpecError
from scalelab.cli import _parser, main
from scalelab.config import RunConfig
from scalelab.sweep import load_spec
from scalelab.sweep.spec import parse_assignment
from scalelab.sweep.store import RunStore

SPEC = {
    "name": "ov", "method": "grid", "metric": {"name": "val_mse", "goal": "minimize"},
    "parameters": {
        "model": {"parameters": {"width": {"values": [4, 8]}, "depth": {"value": 1}}},
        "samples": {"value": 64}, "field_size": {"value": 16}, "steps": {"value": 4},
        "eval_every": {"value": 2},
    },
    "scalelab": {"workers": 1},
}


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({**SPEC, "scalelab": {**SPEC["scalelab"],
                                                          "store": str(tmp_path / "runs.db")}}))
    return path


@pytest.mark.parametrize("text, key, value", [
    ("width=64", ["width"], 64),
    ("model.width=64", ["model", "width"], 64),
    ("lr=1e-3", ["lr"], 1e-3),  # YAML 1.1 reads 1e-3 as text; a number here
    ("lr=2.5E+2", ["lr"], 250.0),
    ("samples=[256,512]", ["samples"], [256, 512]),
    ("compile=true", ["compile"], True),
    ("loss_variant=mse+0.1*spectral", ["loss_variant"], "mse+0.1*spectral"),
    ("options={path: a.nc, variable: tas}", ["options"], {"path": "a.nc", "variable": "tas"}),
    ("scalelab.wandb.project=p", ["scalelab", "wandb", "project"], "p"),
    ("name=", ["name"], ""),
    # Hydra's comma list (a sweep over it); commas inside brackets or quotes are kept
    ("width=4,8", ["width"], [4, 8]),
    ("lr=1e-3,1e-2", ["lr"], [1e-3, 1e-2]),
    ("name='a,b'", ["name"], "a,b"),
    ("options={path: a.nc, variable: tas}", ["options"], {"path": "a.nc", "variable": "tas"}),
    # what W&B's agent writes for a nested group: Python's repr (None, True, 1e-05)
    ("model={'depth': 2, 'compile': True, 'x': None, 'lr': 1e-05}", ["model"],
     {"depth": 2, "compile": True, "x": None, "lr": 1e-05}),
    ("options.path=/x.nc", ["options", "path"], "/x.nc"),
])
def test_override_grammar(text, key, value):
    assert parse_assignment(text) == (key, value)


@pytest.mark.parametrize("text, words", [
    ("width", "is not a KEY=VALUE override"),
    ("=4", "is not a KEY=VALUE override"),
    ("model..width=4", "is not a KEY=VALUE override"),
    ("samples=[256,", "is not valid YAML"),
    ("width=4,", "has an empty item in its comma list"),
])
def test_bad_overrides_are_one_sentence(text, words):
    with pytest.raises(SpecError, match=re.escape(words)):
        parse_assignment(text, "s.yaml")


def test_overrides_change_the_spec_before_validation(spec_file):
    spec = load_spec(spec_file, assignments=["width=16", "samples=[32,64]", "lr=1e-3",
                                             "scalelab.max_attempts=5", "metric.name=val_mae"])
    assert sorted((c.width, c.samples) for c in spec.runs) == [(16, 32), (16, 64)]
    assert {c.lr for c in spec.runs} == {1e-3} and {c.depth for c in spec.runs} == {1}
    assert spec.settings.max_attempts == 5 and spec.metric.name == "val_mae"
    # the nested group is where the parameter is changed: no second 'width'
    assert spec.raw["parameters"]["model"]["parameters"]["width"] == {"value": 16}
    assert "width" not in spec.raw["parameters"]
    assert load_spec(spec_file, assignments=["model.width=12"]).runs[0].width == 12
    assert load_spec(spec_file).raw.get("overrides") is None  # the file is unchanged

    # validated like the file: one sentence naming the key
    for text, words in [("width=-4", "width must be a positive integer, got -4"),
                        ("widht=4", "unknown parameter 'widht'"),
                        ("steps=abc", "steps must be int, got 'abc'"),
                        ("scalelab.workers=0", "scalelab.workers must be a positive integer"),
                        ("data.samples=4", "no parameter group 'data' (groups: model)")]:
        with pytest.raises(SpecError, match=re.escape(words)):
            load_spec(spec_file, assignments=[text])


def test_overrides_are_recorded_with_the_spec_in_the_store(spec_file, tmp_path):
    spec = load_spec(spec_file, assignments=["width=6", "steps=3"])
    store = RunStore(tmp_path / "runs.db")
    try:
        store.add_sweep(spec.name, spec.raw, spec.runs)  # what run_sweep records
        (name, saved), = store.sweeps()
    finally:
        store.close()
    assert saved["overrides"] == ["width=6", "steps=3"]
    assert saved["parameters"]["model"]["parameters"]["width"] == {"value": 6}
    assert saved["parameters"]["steps"] == {"value": 3}


def test_bad_override_on_the_command_line_runs_nothing(spec_file, tmp_path, capsys):
    assert main(["run", str(spec_file), "width=0", "--no-wandb", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "width must be a positive integer, got 0" in err[0]
    assert not (tmp_path / "runs.db").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == "scalelab 0.1.0"


def options_of(parser) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings} | {
        action.dest for action in parser._actions if not action.option_strings}


def test_run_takes_every_option_of_sweep_run():
    sub = next(a for a in _parser()._actions if a.dest == "command").choices
    sweep_run = next(a for a in sub["sweep"]._actions if a.dest == "sweep_command").choices["run"]
    assert options_of(sweep_run) <= options_of(sub["run"])


@pytest.fixture
def listed_store(tmp_path):
    """A store with one finished, one running (two rows so far) and one pending run."""
    path = tmp_path / "runs.db"
    done, running, pending = (RunConfig(width=w) for w in (4, 8, 16))
    store = RunStore(path)
    try:
        store.add_sweep("a", {"name": "a", "metric": {"name": "val_mse"}}, [done, running])
        store.add_sweep("b", {"name": "b"}, [pending])
        for cfg in (done, running):
            store.mark_running(cfg.run_id)
        store.record_result(done.run_id, "finished",
                            [{"step": 0, "val_mse": 0.9}, {"step": 10, "val_mse": 0.2}], {})
        store.add_rows(running.run_id, [{"step": 0, "val_mse": 0.8}, {"step": 5, "val_mse": 0.5}])
    finally:
        store.close()
    return path, done, running, pending


def listing(capsys, *args) -> list[dict]:
    assert main(["runs", "list", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    return [dict(zip(header, line.split())) for line in lines[1:]]


def test_runs_list_shows_latest_step_and_metric_sorts_and_filters(listed_store, capsys):
    path, done, running, pending = listed_store
    rows = listing(capsys, str(path), "--sweep", "a")  # the sweep's metric: val_mse
    assert {r["run_id"]: (r["status"], r["step"], r["val_mse"]) for r in rows} == {
        done.run_id: ("finished", "10", "0.2"), running.run_id: ("running", "5", "0.5")}
    rows = listing(capsys, str(path), "--sort=-width")
    assert [r["width"] for r in rows] == ["16", "8", "4"]
    assert rows[0]["step"] == "-"  # a pending run has no row yet
    rows = listing(capsys, str(path), "--sort", "val_mse", "--metric", "val_mse")
    assert [r["run_id"] for r in rows] == [done.run_id, running.run_id, pending.run_id]
    rows = listing(capsys, str(path), "--status", "running")
    assert [r["run_id"] for r in rows] == [running.run_id]


@pytest.mark.parametrize("args, words", [
    (["--status", "bogus"], "--status 'bogus' is not a run status; valid statuses are "
                            "pending, running, finished, diverged, failed."),
    (["--sweep", "zz"], "no sweep named 'zz'; the store's sweeps are a, b."),
    (["--sort", "colour"], "--sort 'colour' is not a column of the listing"),
])
def test_runs_list_refuses_bad_options_in_one_sentence(listed_store, capsys, args, words):
    path = listed_store[0]
    assert main(["runs", "list", str(path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]


def test_early_terminate_is_validated_kept_for_wandb_and_refused_by_scalelab(
        spec_file, tmp_path, capsys):
    raw = yaml.safe_load(spec_file.read_text())
    spec_file.write_text(yaml.safe_dump({**raw, "early_terminate": {"type": "hyperband",
                                                                    "min_iter": 2}}))
    assert main(["sweep", "run", str(spec_file), "--no-wandb", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "early_terminate (W&B's hyperband)" in err[0]
    assert "scalelab sweep wandb" in err[0]
    assert not (tmp_path / "runs.db").exists()
    out = tmp_path / "w.yaml"
    assert main(["sweep", "wandb", str(spec_file), "-o", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["early_terminate"] == {"type": "hyperband",
                                                                  "min_iter": 2}
    for bad, words in [({"type": "asha"}, "must be W&B's hyperband"),
                       ({"type": "hyperband"}, "needs min_iter, or max_iter with s"),
                       ({"type": "hyperband", "min_iter": 2, "eta": 1}, "eta must be above 1")]:
        spec_file.write_text(yaml.safe_dump({**raw, "early_terminate": bad}))
        with pytest.raises(SpecError, match=re.escape(words)):
            load_spec(spec_file)


def test_sync_finds_the_key_of_wandb_login_in_netrc(tmp_path, monkeypatch):
    """`wandb login` saves the key in ~/.netrc; W&B's own lookup finds it there."""
    from scalelab.runs.tracking import wandb_api_key

    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine api.wandb.ai\n  login user\n  password {'a' * 40}\n")
    netrc.chmod(0o600)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("NETRC", str(netrc))
    assert wandb_api_key() == "a" * 40
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    assert wandb_api_key() is None
    monkeypatch.setenv("WANDB_API_KEY", "b" * 40)
    assert wandb_api_key() == "b" * 40
    assert os.environ["WANDB_API_KEY"] == "b" * 40


GRIDDED = {
    "name": "g", "method": "grid",
    "parameters": {
        "model": {"parameters": {"width": {"values": [4, 8]}, "depth": {"value": 1}}},
        "data": {"parameters": {
            "field": {"value": "gridded"}, "field_size": {"value": 8}, "scale": {"value": 2},
            "samples": {"value": 16},
            "options": {"value": {"path": "data/era5_like.nc", "variable": "t2m",
                                  "transform": "zscore"}}}},
        "steps": {"value": 2}},
}


@pytest.fixture
def gridded_spec(example_data_cwd):
    """A spec of gridded data (data/era5_like.nc in the working folder) and a copy of the file."""
    import shutil

    (example_data_cwd / "other").mkdir()
    shutil.copy(example_data_cwd / "data/era5_like.nc", example_data_cwd / "other/b.nc")
    path = example_data_cwd / "g.yaml"
    path.write_text(yaml.safe_dump({**GRIDDED, "scalelab": {"store": "runs.db"}}))
    return path


def test_overrides_reach_keys_inside_a_mapping_value(gridded_spec):
    """options.path=... (a key inside the options mapping, through the data group) and
    path=... (the one mapping that holds path) were refused; a comma list sweeps it."""
    for text in ("options.path=other/b.nc", "data.options.path=other/b.nc", "path=other/b.nc"):
        spec = load_spec(gridded_spec, assignments=[text])
        assert {c.options["path"] for c in spec.runs} == {"other/b.nc"}, text
        assert {c.options["variable"] for c in spec.runs} == {"t2m"}  # the other keys kept
        assert "options" not in spec.raw["parameters"]  # changed where the spec has it
    spec = load_spec(gridded_spec, assignments=["options.path=data/era5_like.nc,other/b.nc"])
    assert sorted((c.width, c.options["path"]) for c in spec.runs) == [
        (4, "data/era5_like.nc"), (4, "other/b.nc"), (8, "data/era5_like.nc"), (8, "other/b.nc")]
    spec = load_spec(gridded_spec, assignments=["options.split.train=0.6",
                                                "options.split.val=0.2", "~options.transform"])
    assert spec.runs[0].options == {"path": "data/era5_like.nc", "variable": "t2m",
                                    "split": {"train": 0.6, "val": 0.2}}
    # a missing file named this way is the spec's sentence, before any run
    with pytest.raises(SpecError, match=re.escape("gridded data file 'nowhere.nc' does not "
                                                  "exist")):
        load_spec(gridded_spec, assignments=["options.path=nowhere.nc"])
    with pytest.raises(SpecError, match=re.escape("'width.depth=2' sets a key inside width, "
                                                  "whose value is not a mapping in the spec")):
        load_spec(gridded_spec, assignments=["width.depth=2"])


def test_comma_list_sweeps_and_hydra_add_and_delete(spec_file):
    spec = load_spec(spec_file, assignments=["width=4,8,16"])
    assert sorted(c.width for c in spec.runs) == [4, 8, 16]
    assert spec.raw["parameters"]["model"]["parameters"]["width"] == {"values": [4, 8, 16]}
    spec = load_spec(spec_file, assignments=["samples=32,64", "lr=1e-3,1e-2"])
    assert sorted({(c.samples, c.lr) for c in spec.runs}) == [
        (32, 1e-3), (32, 1e-2), (64, 1e-3), (64, 1e-2)]
    assert len(spec.runs) == 8  # × the spec's two widths
    assert load_spec(spec_file, assignments=["scalelab.devices=0,1"]).settings.devices == [0, 1]
    # +key=value adds a key the spec lacks; ++key=value sets it either way
    spec = load_spec(spec_file, assignments=["+lr=3e-3", "+scalelab.seed=7", "++samples=32"])
    assert {c.lr for c in spec.runs} == {3e-3} and {c.samples for c in spec.runs} == {32}
    assert spec.raw["scalelab"]["seed"] == 7
    # ~key deletes it (the run takes RunConfig's default); ~key=value only if it is that
    default = RunConfig().samples
    for text in ("~samples", "~samples=64", "~parameters.samples"):
        assert {c.samples for c in load_spec(spec_file, assignments=[text]).runs} == {default}
    spec = load_spec(spec_file, assignments=["~model.depth", "~scalelab.workers"])
    assert {c.depth for c in spec.runs} == {RunConfig().depth} and "workers" not in \
        spec.raw["scalelab"]
    for text, words in [
            ("+samples=32", "'+samples=32' adds the parameter samples, which the spec already "
                            "has; write samples=32 (or ++samples=32) to change it."),
            ("+scalelab.workers=2", "adds the key scalelab.workers, which the spec already has"),
            ("~lr", "'~lr' deletes the parameter lr, which the spec does not have."),
            ("~samples=65", "'~samples=65' deletes the parameter samples only if it is 65, but "
                            "it is 64; write ~samples to delete it whatever it is."),
            ("~metric.goal.x", "sets a key inside metric.goal, which is not a mapping"),
            ("model=3", "model is a group of parameters (depth, width)"),
            ("path=/x.nc", "path is not a run parameter but a key of options; write "
                           "options.path=/x.nc."),
            ("+~x=1", "is not a KEY=VALUE override")]:
        with pytest.raises(SpecError) as err:
            load_spec(spec_file, assignments=[text])
        message = str(err.value)
        one = message.replace("e.g. ", "")  # one sentence: no full stop before its end
        assert words in message and one.count(". ") == 0 and "\n" not in message, message


def test_a_group_given_as_a_mapping_sets_its_parameters(spec_file):
    """W&B's agent gives a nested group's values as one mapping: model={'width': 6, ...}."""
    spec = load_spec(spec_file, assignments=["model={'width': 6, 'depth': 2}"])
    assert [(c.width, c.depth) for c in spec.runs] == [(6, 2)]
    assert spec.raw["parameters"]["model"] == {"parameters": {"width": {"value": 6},
                                                              "depth": {"value": 2}}}
