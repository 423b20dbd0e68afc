"""Sweep specs in the W&B format: grid and random expansion, distributions, validation."""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from scalelab import SpecError
from scalelab.sweep import parse_spec

BASE = {"field_size": {"value": 16}, "steps": {"value": 10}, "eval_every": {"value": 5}}


def spec(parameters, method="grid", **extra):
    return {"method": method, "parameters": {**BASE, **parameters}, **extra}


def test_grid_is_the_product_of_values_and_nested_groups_flatten():
    s = parse_spec(spec({"model": {"parameters": {"width": {"values": [4, 8, 16]}}},
                         "samples": {"values": [64, 256]}, "seed": {"value": 3}}))
    assert len(s) == 6
    assert sorted((c.width, c.samples) for c in s.runs) == sorted(
        (w, d) for w in (4, 8, 16) for d in (64, 256))
    assert all(c.seed == 3 for c in s.runs)
    assert len({c.run_id for c in s.runs}) == 6
    # a repeated value does not make a second run; run_cap keeps the first ones
    assert len(parse_spec(spec({"width": {"values": [4, 4, 8]}}))) == 2
    assert len(parse_spec(spec({"width": {"values": [4, 8, 16]}}, run_cap=2))) == 2


def test_random_search_is_reproducible_and_follows_its_distributions():
    raw = spec({"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
                "weight_decay": {"distribution": "uniform", "min": 0.0, "max": 0.5},
                "width": {"distribution": "int_uniform", "min": 2, "max": 5},
                "samples": {"distribution": "q_uniform", "min": 64, "max": 512, "q": 64},
                "loss_variant": {"values": ["mse", "l1"], "probabilities": [0.8, 0.2]}},
               method="random", run_cap=400, scalelab={"seed": 7})
    first, again = parse_spec(raw), parse_spec(raw)
    assert len(first) == 400
    assert [c.run_id for c in first.runs] == [c.run_id for c in again.runs]
    other = parse_spec({**raw, "scalelab": {"seed": 8}})
    assert [c.run_id for c in other.runs] != [c.run_id for c in first.runs]

    lr = np.array([c.lr for c in first.runs])
    # log_uniform_values: log(lr) uniform on [log min, log max] — against scipy's loguniform
    assert stats.kstest(lr, stats.loguniform(1e-4, 1e-1).cdf).pvalue > 1e-3
    assert stats.kstest([c.weight_decay for c in first.runs],
                        stats.uniform(0, 0.5).cdf).pvalue > 1e-3
    widths = [c.width for c in first.runs]
    assert set(widths) == {2, 3, 4, 5}  # both ends included, as W&B's int_uniform
    samples = np.array([c.samples for c in first.runs])
    assert set(samples % 64) == {0} and samples.min() >= 64 and samples.max() <= 512
    l1 = sum(c.loss_variant == "l1" for c in first.runs)
    assert stats.binomtest(l1, 400, 0.2).pvalue > 1e-3


@pytest.mark.parametrize("raw, expected", [
    (spec({"lr": {"distribution": "uniform", "min": 0.1, "max": 0.2}}),
     "parameters.lr has a distribution, which method grid cannot enumerate"),
    (spec({"lr": {"distribution": "uniform", "min": 0.1, "max": 0.2}}, method="random"),
     "method random needs run_cap"),
    (spec({"lr": {"distribution": "normalish", "min": 0, "max": 1}}, method="random",
          run_cap=2), "parameters.lr.distribution 'normalish' is not supported"),
    (spec({"lr": {"distribution": "uniform", "min": 0.2, "max": 0.1}}, method="random",
          run_cap=2), "parameters.lr.min must be below max"),
    (spec({"lr": {"distribution": "log_uniform_values", "min": 0, "max": 1}},
          method="random", run_cap=2), "min must be positive for log_uniform_values"),
    (spec({"width": {"vlaues": [4]}}), "unknown key in parameters.width 'vlaues'"),
    (spec({"loss_variant": {"values": ["mse", "l1"], "probabilities": [0.5, 0.6]}}),
     "probabilities must be a list of 2 non-negative numbers summing to 1"),
    (spec({"width": {"values": [4]}}, method="bayes"), "method 'bayes' is not supported"),
    (spec({"width": {"value": 4}}, run_cap=0), "run_cap must be a positive integer"),
    (spec({"width": {"value": 4}}, metric={"name": "val_loss", "goal": "up"}),
     "metric.goal must be minimize or maximize"),
    (spec({"width": {"value": 4}}, scalelab={"devices": "gpu"}), "scalelab.devices must be"),
    (spec({"width": {"value": 4}}, scalelab={"runs_per_gpu": 0}),
     "scalelab.runs_per_gpu must be an integer >= 1"),
    (spec({"width": {"value": 4}}, scalelab={"address": "auto"}),
     "scalelab.address is only used by the ray executor"),
    (spec({"width": {"value": 4}}, scalelab={"wandb": {"init_timeout": -1}}),
     "scalelab.wandb.init_timeout must be a positive number"),
    (spec({"width": {"value": 4}}, scalelab={"executor": "slurm"}),
     "scalelab.executor 'slurm' is unknown"),
    (spec({"model": {"parameters": {}}}), "parameters.model.parameters must be a non-empty"),
    (spec({"width": {"value": "wide"}}), "width must be int, got 'wide'"),
])
def test_bad_specs_name_the_key_in_one_sentence(raw, expected):
    with pytest.raises(SpecError) as err:
        parse_spec(raw, source="s.yaml")
    message = str(err.value)
    assert message.startswith("s.yaml: ") and expected in message
    assert "\n" not in message


def test_shipped_specs_are_valid(example_data_cwd):
    from pathlib import Path

    from scalelab.sweep import load_spec

    root = Path(__file__).resolve().parents[1] / "sweeps"
    specs = sorted(root.glob("*.yaml"))
    assert specs
    for path in specs:
        s = load_spec(path)
        assert len(s) > 0 and math.isfinite(len(s))


def test_exported_specs_are_valid_wandb_sweep_configs(tmp_path, example_data_cwd):
    """Every shipped spec, exported for W&B, passes W&B's own sweep schema (wandb/sweeps
    config/schema.json, copied in tests/data/wandb_sweeps with its source)."""
    import json
    import subprocess
    import sys

    import jsonschema
    import yaml

    root = Path(__file__).resolve().parents[1]
    schema = json.loads((root / "tests/data/wandb_sweeps/schema.json").read_text())
    for spec in sorted((root / "sweeps").glob("*.yaml")):
        raw = yaml.safe_load(spec.read_text())
        # the file as is has scalelab's own section, which W&B's schema refuses
        with pytest.raises(jsonschema.ValidationError, match="scalelab"):
            jsonschema.validate(raw, schema)
        out = tmp_path / f"{spec.stem}.wandb.yaml"
        done = subprocess.run([sys.executable, "-m", "scalelab.cli", "sweep", "wandb", str(spec),
                               "-o", str(out)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        exported = yaml.safe_load(out.read_text())
        jsonschema.validate(exported, schema)
        assert exported["parameters"] == raw["parameters"]
