"""Learning-rate sensitivity across scale (Wortsman et al. 2023) and its mitigations.

The sensitivity is checked against its closed form on a synthetic loss-vs-LR curve, the
optimum's law against a table drawn from a known exponent, diverged runs against what
they must count as; μP and qk-layernorm build, follow their rules and train; the report's
page renders from a table whose runs vary in lr, and is absent from one whose runs do not.
"""

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from scalelab import ScalelabError
from scalelab._errors import SpecError, TableError
from scalelab.config import RunConfig
from scalelab.laws.lr_sensitivity import LRSensitivity, lr_sensitivity_by, sensitivity


def _gap_integral(lo, hi, m, c, h):
    """∫_lo^hi min(c·(u − m)², h) du, in closed form (r = √(h/c) where the cap begins)."""
    r = math.sqrt(h / c)

    def antiderivative(u):  # of min(c·(u−m)², h), continuous
        t = u - m
        if t < -r:
            return h * (t + r) - c * r**3 / 3
        if t > r:
            return h * (t - r) + c * r**3 / 3
        return c * t**3 / 3

    return antiderivative(hi) - antiderivative(lo)


def test_sensitivity_matches_the_closed_form_with_diverged_runs_at_the_initial_loss():
    # ℓ(η) = ℓ* + c·(log10 η − m)², runs beyond the cap diverged (NaN): they count as ℓ0
    best, c, m, initial = 0.2, 0.05, -2.3, 0.45
    a, b = 1e-4, 1e-1
    u = np.linspace(math.log10(a), math.log10(b), 3001)
    loss = best + c * (u - m) ** 2
    loss[loss > initial] = np.nan  # diverged
    expected = _gap_integral(math.log10(a), math.log10(b), m, c, initial - best) / 3.0
    got = sensitivity(10**u, loss, initial, estimator="trapezoid")
    assert got == pytest.approx(expected, rel=1e-5)
    assert sensitivity(10**u, loss, initial, estimator="mean") == pytest.approx(expected,
                                                                               rel=2e-3)
    # by hand, ℓ0 = 1: the diverged run counts as 1.0; gaps to the best, 0.2, averaged
    assert sensitivity([1e-4, 1e-3, 1e-2, 1e-1, 1.0], [0.5, 0.3, 0.2, 0.4, np.nan],
                       1.0) == pytest.approx((0.3 + 0.1 + 0 + 0.2 + 0.8) / 5)
    # a range keeps the rates inside it only
    assert sensitivity([1e-4, 1e-3, 1e-2, 1e-1, 1.0], [0.5, 0.3, 0.2, 0.4, np.nan], 1.0,
                       lr_range=(1e-3, 1e-1)) == pytest.approx((0.1 + 0 + 0.2) / 3)


def synthetic_runs(b=0.5, a=0.3, sizes=(1e3, 4e3, 1.6e4, 6.4e4), noise=0.002, seed=1,
                   diverge_above=60.0, setting=None):
    """Curve rows (a step-0 row, then the final one) of runs on a log-spaced LR grid with a
    parabolic loss around η*(N) = a·N^(−b); runs past ``diverge_above``·η* diverged."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in sizes:
        opt = a * n ** -b
        for lr in np.logspace(-4, -1, 7):
            rid = f"{setting}-{n:g}-{lr:.3g}"
            status = "diverged" if lr > diverge_above * opt else "finished"
            base = {"run_id": rid, "params": n, "lr": lr, "status": status,
                    "parametrization": setting or "standard"}
            rows.append({**base, "step": 0, "val_loss": 1.0})
            if status == "finished":
                loss = 0.3 + 0.05 * (np.log10(lr) - np.log10(opt)) ** 2 + rng.normal(0, noise)
                rows.append({**base, "step": 100, "val_loss": loss})
    return pd.DataFrame(rows)


def test_optimum_and_its_law_recover_a_known_exponent():
    runs = synthetic_runs(b=0.5, a=0.3)
    fit = LRSensitivity().fit(runs)
    truth = 0.3 * fit.optima_["size"] ** -0.5
    assert np.allclose(fit.optima_["lr_opt"], truth, rtol=0.1)
    assert fit.optima_["bracketed"].all()
    assert (fit.optima_["lr_lower"] <= truth * 1.05).all()
    assert (fit.optima_["lr_upper"] >= truth * 0.95).all()
    # over draws of the noise: b recovered, its 90% interval and the extrapolation's cover
    exponents, covered, predicted = [], [], []
    for seed in range(10):
        fit = LRSensitivity().fit(synthetic_runs(b=0.5, a=0.3, seed=seed))
        lo, hi = fit.conf_int().loc["b"]
        exponents.append(fit.params_["b"])
        covered.append(lo < 0.5 < hi and hi - lo < 0.2)
        at = fit.predict(params=1e6).iloc[0]  # 15× the largest size
        predicted.append(at["lr_lower"] < 0.3 * 1e6 ** -0.5 < at["lr_upper"])
    assert np.mean(exponents) == pytest.approx(0.5, abs=0.015)
    assert np.max(np.abs(np.array(exponents) - 0.5)) < 0.05
    assert sum(covered) >= 8 and sum(predicted) >= 8
    # a flat optimum (b = 0: what μP is for) is recovered as such
    flat = LRSensitivity().fit(synthetic_runs(b=0.0, a=3e-3))
    assert abs(flat.params_["b"]) < 0.05
    assert "b = " in flat.summary() and "sensitivity" in flat.summary()


def test_diverged_runs_are_kept_flagged_and_counted_at_their_initial_loss():
    runs = synthetic_runs(diverge_above=20.0)
    # one run diverged before its first evaluation: no row with a step at all
    runs = pd.concat([runs, pd.DataFrame([{"run_id": "early", "params": 1e3, "lr": 0.3,
                                           "status": "diverged", "step": np.nan,
                                           "val_loss": np.nan,
                                           "parametrization": "standard"}])])
    fit = LRSensitivity().fit(runs)
    diverged = fit.runs_[fit.runs_["diverged"]]
    assert len(diverged) == (runs.drop_duplicates("run_id")["status"] == "diverged").sum() > 2
    assert (diverged["capped"] == diverged["initial"]).all()
    assert "early" in set(diverged["run"]) and diverged["initial"].eq(1.0).all()
    assert fit.optima_["diverged"].sum() == len(diverged)
    # they enter the sensitivity: at ℓ0 = 1, not left out
    g = fit.points_[fit.points_["size"] == 6.4e4]
    assert fit.optima_.iloc[-1]["sensitivity"] == pytest.approx(
        sensitivity(g["lr"], g["capped"], 1.0, fit.lr_range_))
    finished_only = LRSensitivity().fit(runs[runs["status"] == "finished"])
    assert fit.optima_.iloc[-1]["sensitivity"] > finished_only.optima_.iloc[-1]["sensitivity"]


def test_settings_that_vary_at_one_size_are_refused_or_split():
    runs = pd.concat([synthetic_runs(setting="standard"),
                      synthetic_runs(b=0.0, a=3e-3, setting="mup")])
    with pytest.raises(TableError, match="differ in parametrization"):
        LRSensitivity().fit(runs)
    fits = lr_sensitivity_by(runs, "parametrization")
    assert fits["standard"].params_["b"] == pytest.approx(0.5, abs=0.05)
    assert abs(fits["mup"].params_["b"]) < 0.05
    with pytest.raises(TableError, match="3 or more learning rates"):
        LRSensitivity().fit(runs[(runs["lr"] < 5e-4) & (runs["parametrization"] == "mup")])
    with pytest.raises(ScalelabError, match="lr_range"):
        LRSensitivity(lr_range=(1e-1, 1e-3)).fit(synthetic_runs())


def test_estimator_contract():
    from scalelab._errors import NotFittedError
    from scalelab.laws import LRSensitivity as exported

    est = exported(window=1, n_bootstrap=20)
    with pytest.raises(NotFittedError):
        est.predict(params=1e5)
    assert est.get_params() == {"lr_range": None, "window": 1, "estimator": "mean",
                                "n_bootstrap": 20, "level": 0.9, "seed": 0}
    first = est.fit(synthetic_runs(b=0.5))
    assert first is est and est.clone().get_params() == est.get_params()
    refit = est.fit(synthetic_runs(b=0.2, a=0.01, seed=3))  # fresh: nothing of the first fit
    fresh = exported(window=1, n_bootstrap=20).fit(synthetic_runs(b=0.2, a=0.01, seed=3))
    pd.testing.assert_series_equal(refit.params_, fresh.params_)
    with pytest.raises(ScalelabError, match="window must be"):
        exported(window=0).fit(synthetic_runs())


# -- the mitigations ----------------------------------------------------------------------
TINY = dict(field="precip", field_size=16, samples=64, val_samples=16, batch_size=8,
            steps=6, eval_every=3, depth=1)


def test_mup_scales_hidden_rates_and_readout_and_trains():
    torch = pytest.importorskip("torch")
    from scalelab.models.mup import Readout, lr_multipliers
    from scalelab.train import train
    from scalelab.train.loop import make_model, make_optimizer

    cfg = RunConfig(family="edsr", width=16, parametrization="mup", base_width=4, **TINY)
    model = make_model(cfg.validate())
    scales = lr_multipliers(model)
    assert scales["body.0.conv1.weight"] == scales["body_tail.weight"] == 0.25
    assert scales["head.weight"] == scales["body.0.conv1.bias"] == 1.0  # input, bias
    readout = model.upsample[0]
    assert isinstance(readout, Readout) and readout.multiplier == 0.25
    assert scales["upsample.0.layer.weight"] == 1.0
    groups = {g["lr_multiplier"]: g["lr"] for g in make_optimizer(cfg, model).param_groups}
    assert groups == {1.0: cfg.lr, 0.25: cfg.lr * 0.25}
    # at its base width μP is the standard network, output for output
    torch.manual_seed(0)
    base_mup = make_model(RunConfig(family="edsr", width=4, parametrization="mup",
                                    base_width=4, **TINY))
    torch.manual_seed(0)
    standard = make_model(RunConfig(family="edsr", width=4, **TINY))
    x = torch.randn(2, 1, 4, 4)
    assert torch.equal(base_mup(x), standard(x))
    result = train(cfg)
    assert result.status == "finished" and math.isfinite(result.rows[-1]["val_loss"])
    # the id of a run that sets neither is that of the versions before these options
    assert RunConfig().run_id == "89b19ea7ccc3"
    assert cfg.run_id != RunConfig(family="edsr", width=16, **TINY).run_id


def test_swinir_qk_norm_and_mup_build_and_train():
    pytest.importorskip("torch")
    from scalelab.models import count_params
    from scalelab.train import train
    from scalelab.train.loop import make_model

    base = dict(family="swinir", width=16, options={"heads": 2, "window": 4}, **TINY)
    plain = count_params(make_model(RunConfig(**base)))
    normed_cfg = RunConfig(**{**base, "options": {**base["options"], "qk_norm": True}},
                           parametrization="mup", base_width=8)
    normed = make_model(normed_cfg.validate())
    # two LayerNorms (scale and bias) of C/h = 8 channels in each of depth × blocks attentions
    assert count_params(normed) == plain + 1 * 2 * (2 * 2 * 8)
    attn = normed.groups[0].layers[0].attn
    assert attn.q_norm is not None and attn.scale == pytest.approx(4 ** 0.5 / 8)  # √d_base/d
    result = train(normed_cfg)
    assert result.status == "finished" and math.isfinite(result.rows[-1]["val_loss"])


@pytest.mark.parametrize("change, words", [
    (dict(base_width=0), "needs base_width"),
    (dict(optimizer="sgd"), "optimizer adam or adamw"),
    (dict(family="diffusion", width=8, depth=1), "not diffusion"),
    (dict(family="swinir", options={"heads": 4}, base_width=6), "at base_width 6"),
])
def test_mup_is_refused_where_it_cannot_apply(change, words):
    cfg = RunConfig(**{**dict(family="edsr", width=16, parametrization="mup", base_width=4,
                              field_size=16), **change})
    with pytest.raises(SpecError, match=words):
        cfg.validate()
    with pytest.raises(SpecError, match="qk_norm must be true or false"):
        RunConfig(family="swinir", width=16, options={"qk_norm": "yes"}).validate()


# -- the report's page ----------------------------------------------------------------------
def test_page_renders_per_setting_and_only_where_lr_varies(tmp_path):
    matplotlib.use("Agg")
    from scalelab.report.context import ReportContext
    from scalelab.report.lr_sensitivity import page_lr_sensitivity

    runs = pd.concat([synthetic_runs(setting="standard"),
                      synthetic_runs(b=0.05, a=5e-3, setting="mup", seed=2)])
    runs["samples"] = 1024
    ctx = ReportContext.build(runs, targets=["params=1e6"])
    pages = page_lr_sensitivity(ctx)
    assert [name for name, _ in pages] == ["lr_sensitivity"]
    fig = pages[0][1]
    text = " ".join(t.get_text() for t in fig.texts)
    assert "parametrization standard: η*(N)" in text and "parametrization mup" in text
    assert "Exponent of η*(N)" in text and "diverged" in text
    out = tmp_path / "lr.png"
    fig.savefig(out, dpi=60)
    image = matplotlib.image.imread(out)
    assert image[..., :3].std() > 0.03
    # one learning rate per size: no page at all
    one = runs[runs["lr"] == runs["lr"].unique()[3]]
    assert page_lr_sensitivity(ReportContext.build(one)) == []


def test_page_of_a_random_search_mixes_settings_that_form_no_grid():
    matplotlib.use("Agg")
    from scalelab.report.context import ReportContext
    from scalelab.report.lr_sensitivity import analyse_lr, page_lr_sensitivity

    runs = synthetic_runs()
    rng = np.random.default_rng(0)
    decay = {rid: float(rng.uniform(0, 0.1)) for rid in runs["run_id"].unique()}
    runs["weight_decay"] = runs["run_id"].map(decay)  # drawn with the rate, as random_lr.yaml
    with pytest.raises(TableError, match="differ in weight_decay"):
        LRSensitivity().fit(runs)
    assert LRSensitivity().fit(runs, ignore="weight_decay").params_["b"] == pytest.approx(
        0.5, abs=0.05)
    ctx = ReportContext.build(runs)
    found = analyse_lr(ctx)
    assert found.by == [] and found.mixed == ["weight_decay"]
    fig = page_lr_sensitivity(ctx, lr_analysis=found)[0][1]
    assert "also differ in weight_decay" in " ".join(t.get_text() for t in fig.texts)
