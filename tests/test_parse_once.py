"""Values are parsed and checked once, where they enter (issue 24, point 1): a sweep checks
each run's config once after expansion, parses its loss expression once, and the
training loop and the loss take both as given."""

from __future__ import annotations

from collections import Counter

import pytest

import scalelab.losses.names as loss_names
from scalelab.config import RunConfig
from scalelab.sweep.executors import execute_run
from scalelab.sweep.runner import run_sweep
from scalelab.sweep.spec import parse_spec


class InProcess:
    """Runs each config in this process (so the counts below see the training too)."""

    name = "local"

    def run(self, queue, on_start=None, on_event=None, tracking=None):
        while queue:
            cfg = queue.popleft()
            if on_start is not None:
                on_start(cfg, "cpu")
            yield cfg, execute_run(cfg, device="cpu")


@pytest.fixture
def counts(monkeypatch):
    seen = {"validate": Counter(), "parse": Counter()}
    validate, parse = RunConfig.validate, loss_names._parse

    def counting_validate(self, source="the spec"):
        seen["validate"][self.run_id] += 1
        return validate(self, source)

    def counting_parse(expression, source):
        seen["parse"][expression] += 1
        return parse(expression, source)

    monkeypatch.setattr(RunConfig, "validate", counting_validate)
    monkeypatch.setattr(loss_names, "_parse", counting_parse)
    return seen


def test_a_sweep_checks_each_run_once_and_parses_its_loss_once(tmp_path, counts):
    spec = parse_spec({
        "name": "once",
        "parameters": {
            "width": {"values": [4, 6]}, "loss_variant": {"values": ["mse", "l1+0.1*gradient"]},
            "samples": {"value": 8}, "val_samples": {"value": 4}, "field_size": {"value": 8},
            "scale": {"value": 2}, "steps": {"value": 2}, "eval_every": {"value": 1},
            "batch_size": {"value": 2}},
        "scalelab": {"store": str(tmp_path / "runs.db")},
    })
    assert len(spec.runs) == 4
    assert all(cfg.validated for cfg in spec.runs)
    outcome = run_sweep(spec, progress=False, tracking=False, executor=InProcess())
    assert outcome.counts == {"finished": 4}
    # each run's config was checked exactly once, and nothing else was
    assert counts["validate"] == Counter({cfg.run_id: 1 for cfg in spec.runs})
    # each expression parsed once per run that uses it (two runs each), in the spec and
    # never again in the loop or the loss
    assert counts["parse"] == Counter({"mse": 2, "l1+0.1*gradient": 2})


def test_a_config_given_to_train_directly_is_checked_there_once(counts):
    from scalelab.train import train

    cfg = RunConfig(width=4, samples=8, val_samples=4, field_size=8, scale=2, steps=1,
                    eval_every=1, batch_size=2, loss_variant="huber")
    assert not cfg.validated
    assert train(cfg).status == "finished"
    assert sum(counts["validate"].values()) == 1 and counts["parse"] == Counter({"huber": 1})
    # a validated config is taken as given, also on another device
    checked = RunConfig(width=4, field_size=8, loss_variant="l1").validate()
    moved = checked.on_device("cpu")
    assert moved.validated and moved.loss is checked.loss and moved.run_id == checked.run_id


def test_the_ensemble_rule_is_the_config_check_alone():
    from scalelab._errors import SpecError
    from scalelab.train.loop import make_loss

    with pytest.raises(SpecError, match="scores an ensemble, so ensemble_members must be at "
                                        "least 2"):
        RunConfig(loss_variant="crps_fair").validate()
    loss = make_loss(RunConfig(loss_variant="crps_fair", ensemble_members=2).validate())
    assert loss.needs_ensemble and loss.variant == "crps_fair"


def test_the_spec_is_one_typed_object_and_the_report_takes_its_pieces(tmp_path):
    """SweepSpec(name, path, runs, settings, metric): the settings and the metric are typed
    once; the report reads them, never the document (here spoiled after parsing)."""
    import pandas as pd

    from scalelab.config import Metric, SweepSettings
    from scalelab.report.context import ReportContext

    spec = parse_spec({
        "name": "typed", "metric": {"name": "val_mae", "goal": "minimize"},
        "parameters": {"width": {"values": [4, 8]}, "field_size": {"value": 8}},
        "scalelab": {"store": str(tmp_path / "runs.db"), "result": "best",
                     "targets": ["params=1e6", {"compute": 1e15}], "workers": 3},
    })
    assert isinstance(spec.settings, SweepSettings) and spec.metric == Metric("val_mae")
    assert spec.settings.targets == [{"params": 1e6}, {"compute": 1e15}]
    assert spec.store == tmp_path / "runs.db" and spec.report == tmp_path / "report.pdf"
    spec.raw.update(metric={"name": "spoiled"}, scalelab={"result": "spoiled"})
    runs = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "step": [1, 2, 1, 2],
                         "params": [100, 100, 400, 400], "samples": [8] * 4,
                         "val_mae": [0.5, 0.6, 0.4, 0.3], "status": ["finished"] * 4})
    ctx = ReportContext.build(runs, spec=spec)
    assert (ctx.y, ctx.result, ctx.targets) == ("val_mae", "best", spec.settings.targets)
    assert sorted(ctx.final["val_mae"]) == [0.3, 0.5]  # each run's best, not its last


def test_one_rule_of_finished_runs():
    """finished counts, a table or row without a status counts, diverged and failed do not;
    the report's left-out sentence and the calibration laws use the same rule."""
    import pandas as pd

    from scalelab.report.context import usable_rows
    from scalelab.runs import finished_runs

    table = pd.DataFrame({"run_id": list("abcde"), "val_loss": [1.0, 2.0, 3.0, 4.0, 5.0],
                          "params": [1, 2, 3, 4, 5], "samples": [1] * 5,
                          "status": ["finished", None, "diverged", "failed", "finished"]})
    assert list(finished_runs(table)["run_id"]) == ["a", "b", "e"]
    assert list(finished_runs(table.drop(columns="status"))["run_id"]) == list("abcde")
    kept, dropped = usable_rows(table, "val_loss")
    assert list(kept["run_id"]) == ["a", "b", "e"]
    assert dropped == ["left out 2 of 5 runs: not finished (1 diverged, 1 failed)."]
