"""Every option of every family, field, degradation, loss term and schedule declares its
valid range where it is declared (its kind's record), and a value outside it is refused
by ``scalelab sweep plan`` with one sentence naming the key — never inside the run
(issue 25: these were accepted by the plan and failed in the run)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from scalelab._declare import Opt
from scalelab._errors import SpecError
from scalelab.cli import main
from scalelab.config import RunConfig

BASE = ("name: ranges\nmethod: grid\nparameters:\n  width: {value: 4}\n  samples: {value: 16}\n"
        "  field_size: {value: 16}\n  val_samples: {value: 8}\n  steps: {value: 4}\n"
        "  eval_every: {value: 2}\n  batch_size: {value: 4}\n{extra}"
        "scalelab:\n  workers: 1\n  store: reports/ranges/runs.db\n")

# (id, parameter lines, words the sentence names)
CASES = [
    ("grf-slope-nan", "options: {value: {slope: .nan}}", ["options.slope", "finite", "nan"]),
    ("precip-wet-fraction", "field: {value: precip}\noptions: {value: {wet_fraction: 1.5}}",
     ["options.wet_fraction", "(0, 1)", "1.5"]),
    ("precip-sigma", "field: {value: precip}\noptions: {value: {sigma: -1}}",
     ["options.sigma", "positive", "-1"]),
    ("turbulence-viscosity", "field: {value: turbulence}\noptions: {value: {viscosity: -1}}",
     ["options.viscosity", "positive", "-1"]),
    ("turbulence-time", "field: {value: turbulence}\noptions: {value: {time: 1e9}}",
     ["options.time", "[0, 100]"]),
    ("blur-sigma", "degradation: {value: gaussian}\noptions: {value: {blur_sigma: -1}}",
     ["options.blur_sigma", "positive", "-1"]),
    ("blur-sigma-too-wide", "degradation: {value: gaussian}\noptions: {value: {blur_sigma: 5}}",
     ["options.blur_sigma", "too wide", "field_size 16"]),
    ("lr-noise-negative", "options: {value: {lr_noise_std: -1}}", ["options.lr_noise_std", ">= 0"]),
    ("lr-noise-inf", "options: {value: {lr_noise_std: .inf}}",
     ["options.lr_noise_std", "finite", "inf"]),
    ("threshold-text", "options: {value: {threshold: abc}}", ["options.threshold", "'abc'"]),
    ("decay-fraction", "schedule: {value: wsd}\noptions: {value: {decay_fraction: -1}}",
     ["options.decay_fraction", "(0, 1]"]),
    ("decay-fraction-not-wsd", "options: {value: {decay_fraction: 0.3}}",
     ["options.decay_fraction", "schedule wsd", "schedule cosine"]),
    ("targets-null", "", ["scalelab.targets", "None"]),
    ("targets-mapping-word", "", ["scalelab.targets", "'x' is not a number"]),
    ("seed-huge", "seed: {value: 1e29}", ["seed", "2^63"]),
    ("seed-negative", "seed: {value: -1}", ["seed", "-1"]),
    ("diffusion-sigma-order", "family: {value: diffusion}\n"
     "options: {value: {sigma_min: 10, sigma_max: 1}}", ["sigma_min", "sigma_max"]),
    ("diffusion-p-mean-nan", "family: {value: diffusion}\noptions: {value: {p_mean: .nan}}",
     ["diffusion option p_mean", "finite"]),
    ("diffusion-s-churn", "family: {value: diffusion}\noptions: {value: {s_churn: -40}}",
     ["diffusion option s_churn", ">= 0", "-40"]),
    ("diffusion-sampler-steps", "family: {value: diffusion}\n"
     "options: {value: {sampler_steps: 100000000}}", ["diffusion option sampler_steps"]),
    ("unet-depth", "family: {value: unet}\ndepth: {value: 6}",
     ["depth 6", "field_size must be a multiple of 64", "16"]),
    ("diffusion-depth", "family: {value: diffusion}\ndepth: {value: 5}",
     ["depth 5", "multiple of 32"]),
    ("swinir-mlp-ratio", "family: {value: swinir}\noptions: {value: {mlp_ratio: .inf}}",
     ["swinir option mlp_ratio", "inf"]),
    ("field-size-one", "scale: {value: 1}\nfield_size: {value: 1}", ["field_size", ">= 8"]),
    ("loss-weight-overflow", "loss_variant: {value: '1e400*mse'}",
     ["loss_variant '1e400*mse'", "finite", "inf"]),
    ("loss-weight-inf", "loss_variant: {value: 'inf*mse'}", ["loss_variant 'inf*mse'"]),
    ("loss-setting-overflow", "loss_variant: {value: 'huber(huber_delta=1e400)'}",
     ["huber_delta", "inf"]),
    ("loss-quantile-tau", "loss_variant: {value: 'quantile(tau=1)'}", ["tau", "(0, 1)"]),
]


SECTION = {"targets-null": "  targets: [null]\n",
           "targets-mapping-word": "  targets: [{params: x}]\n"}


def _spec(extra: str, section: str = "") -> str:
    """The base spec with the case's parameter lines (a key of the base given again replaces it)."""
    text = BASE.replace("{extra}", "".join(f"  {line}\n" for line in extra.splitlines()))
    for line in extra.splitlines():
        key = line.split(":")[0]
        text = re.sub(rf"  {key}: {{value: \d+}}\n(?=(.|\n)*  {key}: )", "", text, count=1)
    return text + section


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_sweep_plan_refuses_a_value_out_of_its_declared_range(case, tmp_path, capsys,
                                                              monkeypatch):
    name, extra, words = case
    spec = tmp_path / "spec.yaml"
    spec.write_text(_spec(extra, SECTION.get(name, "")))
    monkeypatch.chdir(tmp_path)
    try:
        rc = main(["sweep", "plan", str(spec)])
    except SystemExit as exit_:
        rc = exit_.code
    out, err = capsys.readouterr()
    assert rc == 2, out + err
    assert "Traceback" not in out + err and not out.strip()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("scalelab: error: "), err
    sentence = lines[0].removeprefix("scalelab: error: ")
    assert re.search(r"[.]$", sentence) and not re.search(r"[a-z]\. [A-Z]", sentence), sentence
    for word in words:
        assert word in sentence, f"{word!r} not in {sentence!r}"
    assert {p.name for p in tmp_path.rglob("*")} == {"spec.yaml"}  # nothing left behind


def test_the_base_spec_and_values_inside_the_ranges_plan(tmp_path, capsys, monkeypatch):
    extra = ("field: {value: precip}\noptions: {value: {wet_fraction: 0.5, sigma: 2, slope: -1, "
             "lr_noise_std: 0.1, blur_sigma: 1, threshold: 0.5, decay_fraction: 1}}\n"
             "degradation: {value: gaussian}\nschedule: {value: wsd}\nseed: {value: 12345}")
    spec = tmp_path / "spec.yaml"
    spec.write_text(_spec(extra))
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "plan", str(spec)]) == 0, capsys.readouterr().err


def _records():
    """Every declared option: (where, key, Opt)."""
    from scalelab.data.names import DEGRADATION_OPTIONS_DECLARED, SOURCES
    from scalelab.losses.names import TERMS
    from scalelab.models.names import FAMILIES
    from scalelab.registry import TRAIN_OPTIONS_DECLARED

    for family in FAMILIES:
        yield from ((f"family {family.name}", k, o) for k, o in family.options.items())
    for source in SOURCES:
        if source.kind == "synthetic":
            yield from ((f"field {source.name}", k, o) for k, o in source.options.items())
    yield from (("degradation", k, o) for k, o in DEGRADATION_OPTIONS_DECLARED.items())
    yield from (("training", k, o) for k, o in TRAIN_OPTIONS_DECLARED.items())
    for term in TERMS:
        yield from ((f"loss {term.name}", k, o) for k, o in term.options.items())


def test_every_declared_option_has_a_valid_default_and_refuses_nan_and_words():
    """Each option's default lies in its own range, and NaN, infinity, a word (for a number)
    and a value past each declared bound are refused with a sentence naming the key."""
    count = 0
    for where, key, opt in _records():
        count += 1
        assert isinstance(opt, Opt)
        assert opt.valid(opt.default), (where, key, opt.default)
        bad = [math.nan, math.inf, -math.inf, [1]] if opt.kind in ("number", "integer") else []
        if opt.kind in ("number", "integer"):
            bad.append("abc")
        if opt.low is not None:
            bad.append(opt.low - 1 if not opt.low_open else opt.low)
        if opt.high is not None:
            bad.append(opt.high + 1 if not opt.high_open else opt.high)
        if opt.kind == "integer":
            bad.append(1.5)
        if opt.kind == "choice":
            bad += ["nope", 3]
        for value in bad:
            with pytest.raises(SpecError, match=re.escape(key)):
                opt.check(value, key, where)
    assert count >= 25


def test_validate_names_the_key_of_a_bad_option_without_a_spec():
    with pytest.raises(SpecError, match="options.wet_fraction"):
        RunConfig(field="precip", options={"wet_fraction": 0.0}).validate()
    RunConfig(field="grf", options={"wet_fraction": 7}).validate()  # not the grf's: not read


def test_targets_are_parsed_once_from_text_or_mapping():
    from scalelab.config import SweepSettings

    settings = SweepSettings.from_section(
        {"targets": ["params=1e6,samples=1e4", {"compute": 1e15}, {"params": "2e5"}]}, "s.yaml")
    assert settings.targets == [{"params": 1e6, "samples": 1e4}, {"compute": 1e15},
                                {"params": 2e5}]
    mapped = SweepSettings.from_section({"targets": {"params": [1e6, 2e6]}}, "s.yaml")
    assert mapped.targets == [{"params": 1e6}, {"params": 2e6}]
