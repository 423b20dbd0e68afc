"""Family comparison at matched compute and the scaling laws of calibration, on tables whose
laws are known in closed form; and on the real tiny sweep of the report tests."""

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import brentq

import scalelab
from scalelab._errors import ScalelabError
from scalelab.laws import PowerLaw
from scalelab.report.calibration_fits import calibration_laws
from scalelab.report.families import compare_families, loss_envelope

LAWS = {"cnn": (0.10, 10.0, 0.20), "transformer": (0.05, 100.0, 0.35)}  # E, A, alpha


def _law(flops, e, a, alpha):
    return e + a * flops ** -alpha


def _curves(noise=0.0, seed=0):
    """Per family three runs whose curves follow the family's law in compute (the smaller
    runs stop earlier), so the envelope is the law itself."""
    rng = np.random.default_rng(seed)
    rows = []
    for family, (e, a, alpha) in LAWS.items():
        for i, end in enumerate((1e8, 1e10, 1e12)):
            for flops in np.geomspace(1e6, end, 12):
                value = _law(flops, e, a, alpha) * np.exp(noise * rng.standard_normal())
                rows.append({"run_id": f"{family}{i}", "family": family, "flops": flops,
                             "step": flops, "val_crps": value})
    return pd.DataFrame(rows)


def test_loss_envelope_is_the_best_value_reached_at_each_budget():
    runs = pd.DataFrame({"run_id": ["a"] * 3 + ["b"] * 3, "flops": [1, 10, 100, 1, 10, 100.0],
                         "y": [5.0, 2.0, 1.5, 4.0, 3.0, 1.0]})
    env = loss_envelope(runs, "y", n_budgets=3)
    np.testing.assert_allclose(env["flops"], [1, 10, 100])
    np.testing.assert_allclose(env["loss"], [4.0, 2.0, 1.0])


@pytest.mark.parametrize("noise", [0.0, 0.01])
def test_crossover_of_families_matches_the_closed_form(noise):
    comparison = compare_families(_curves(noise=noise), y="val_crps", n_bootstrap=100)
    for family, (e, a, alpha) in LAWS.items():
        params = comparison.laws[family].params_
        assert params["alpha"] == pytest.approx(alpha, rel=0.1)
    # the laws cross where 0.1 + 10 C^−0.2 = 0.05 + 100 C^−0.35
    truth = np.exp(brentq(lambda lc: _law(np.exp(lc), *LAWS["cnn"])
                          - _law(np.exp(lc), *LAWS["transformer"]), np.log(1e6), np.log(1e13)))
    assert list(comparison.segments["family"]) == ["cnn", "transformer"]
    (loser, winner, cross), = comparison.switches
    assert (loser, winner) == ("cnn", "transformer")
    if noise == 0:  # exact laws: the crossing found is the closed form's
        assert cross.crossover == pytest.approx(truth, rel=0.01)
        assert cross.lower == pytest.approx(truth, rel=0.02)
        assert cross.upper == pytest.approx(truth, rel=0.02)
    else:  # 1 % noise on every point of three runs per family
        assert cross.crossover == pytest.approx(truth, rel=0.25)
        assert cross.lower <= cross.crossover <= cross.upper
    text = " ".join(comparison.sentences())
    assert "transformer overtakes cnn at C ≈" in text and "90% interval" in text


def test_compare_families_needs_two_families():
    runs = _curves()
    with pytest.raises(ScalelabError, match="needs runs of two or more families"):
        compare_families(runs[runs["family"] == "cnn"], y="val_crps")


def _ensemble_table():
    """Final rows of ensembles whose calibration follows known laws in N."""
    params = np.array([1e3, 3e3, 1e4, 3e4, 1e5, 3e5])
    crps = 0.05 + 3.0 * params ** -0.4
    gap = 0.02 + 5.0 * params ** -0.3  # spread-skill ratio below 1 by this much
    departure = 40.0 * params ** -0.5  # the rank histogram's departure from flat
    return pd.DataFrame({"run_id": [f"r{i}" for i in range(6)], "step": 100, "params": params,
                         "samples": 1024, "loss_variant": "crps_fair", "val_crps": crps,
                         "val_spread_skill": 1.0 - gap, "val_rank_departure": departure})


def test_calibration_laws_recover_the_laws_and_backtest_them():
    laws = calibration_laws(_ensemble_table(), n_bootstrap=20)
    assert set(laws) == {"val_crps", "val_spread_skill", "val_rank_departure"}
    truths = {"val_crps": (0.05, 3.0, 0.4), "val_spread_skill": (0.02, 5.0, 0.3),
              "val_rank_departure": (0.0, 40.0, 0.5)}
    for metric, (e, a, alpha) in truths.items():
        fit = laws[metric]["crps_fair"]
        assert isinstance(fit.law, PowerLaw)
        assert fit.law.params_["alpha"] == pytest.approx(alpha, rel=0.05)
        assert fit.law.params_["E"] == pytest.approx(e, abs=2e-3)
        bt = fit.backtest.iloc[-1]
        assert bt["target"] == 3e5 and bt["are"] < 0.02  # an exact law extrapolates exactly
        band = fit.predict_interval(3e6)
        assert band["prediction"].iloc[0] == pytest.approx(e + a * 3e6 ** -alpha, rel=0.02)


def test_calibration_laws_need_ensembles():
    table = _ensemble_table().drop(columns=["val_crps", "val_spread_skill", "val_rank_departure"])
    with pytest.raises(ScalelabError, match="no run in this table is stochastic"):
        calibration_laws(table)


def test_calibration_laws_of_the_tiny_sweep(tiny_store):
    laws = calibration_laws(scalelab.load_runs(tiny_store), n_bootstrap=20)
    for metric in ("val_crps", "val_spread_skill", "val_rank_departure"):
        assert set(laws[metric]) == {"mse", "crps_fair"}
        for fit in laws[metric].values():
            assert fit.samples == 512
            assert isinstance(fit.law, PowerLaw) or isinstance(fit.law, str)
            assert isinstance(fit.backtest, (pd.DataFrame, str))


@pytest.mark.slow
def test_tiny_families_sweep_runs_and_is_compared(tmp_path):
    """The shipped families spec, shrunk: every family trains, the store holds their curves,
    and the report's families page compares them at matched compute."""
    from pathlib import Path

    import yaml

    from scalelab.report import write_report
    from scalelab.sweep import parse_spec, run_sweep

    raw = yaml.safe_load((Path(__file__).parents[1] / "sweeps" / "families.yaml").read_text())
    params = raw["parameters"]
    params["model"]["parameters"]["width"] = {"values": [4, 6, 8]}
    params["data"]["parameters"].update(samples={"value": 32}, val_samples={"value": 8})
    params.update(steps={"value": 12}, eval_every={"value": 3},
                  options={"value": {"window": 4, "sampler_steps": 2}})
    raw["scalelab"] = {"workers": 2, "store": str(tmp_path / "runs.db")}
    spec = parse_spec(raw)
    assert {c.family for c in spec.runs} == {"edsr", "unet", "swinir", "diffusion"}
    outcome = run_sweep(spec, progress=False, tracking=False)
    assert outcome.counts == {"finished": 12}
    runs = scalelab.load_runs(tmp_path / "runs.db")
    comparison = compare_families(runs, y="val_crps", n_bootstrap=20)
    assert set(comparison.envelopes) == {"edsr", "unet", "swinir", "diffusion"}
    assert comparison.sentences()
    write_report(runs, tmp_path / "report.pdf", spec=raw, n_bootstrap=20, png=True)
    assert list(tmp_path.glob("report_families*.png"))  # one page per loss variant


def test_calibration_laws_in_the_distinct_samples_at_the_largest_model():
    """x="samples": laws in U, fitted at the largest N; a smaller model's runs are left out."""
    samples = np.array([256, 512, 1024, 2048, 4096, 8192], dtype=float)
    rows = []
    for n, scale in ((1e4, 2.0), (1e5, 1.0)):  # the largest N is the one fitted
        crps = 0.03 + scale * 4.0 * samples ** -0.5
        rows.append(pd.DataFrame({"run_id": [f"n{n:g}u{u:g}" for u in samples], "step": 100,
                                  "params": n, "samples": samples, "loss_variant": "crps_fair",
                                  "val_crps": crps, "val_spread_skill": 0.9,
                                  "val_rank_departure": 10.0 * samples ** -0.5}))
    laws = calibration_laws(pd.concat(rows, ignore_index=True), x="samples", n_bootstrap=20)
    fit = laws["val_crps"]["crps_fair"]
    assert fit.x == "samples" and fit.params == 1e5 and fit.samples is None
    assert fit.law.params_["alpha"] == pytest.approx(0.5, rel=0.02)
    assert fit.law.params_["E"] == pytest.approx(0.03, abs=1e-3)
    band = fit.predict_interval(32768)
    assert band["prediction"].iloc[0] == pytest.approx(0.03 + 4.0 * 32768 ** -0.5, rel=0.01)
    assert fit.backtest_text(short=True).startswith("backtest at U = 8.19e+03")
    with pytest.raises(ScalelabError, match="x must be 'params'"):
        calibration_laws(rows[0], x="flops")


def test_calibration_laws_stays_the_function_after_the_analysis_imported_its_module():
    """scalelab.report.calibration_laws is the function, also once report.analysis has run
    (a submodule of the same name used to replace it on the package)."""
    import scalelab.report as report
    from scalelab.report import analysis  # noqa: F401 - imports the laws' module

    assert callable(report.calibration_laws)
    assert report.calibration_laws(_ensemble_table(), n_bootstrap=0)["val_crps"]


def _two_variant_families():
    """Two loss variants, each with two families whose envelopes follow known laws; variant
    "b" swaps the families' laws and reports its loss in units ten times larger, so a
    comparison that mixed the variants would find neither variant's switch."""
    rows = []
    for variant, swap, unit in (("a", False, 1.0), ("b", True, 10.0)):
        for family, law in LAWS.items():
            e, a, alpha = LAWS[{"cnn": "transformer", "transformer": "cnn"}[family]] if swap \
                else law
            for i, end in enumerate((1e8, 1e10, 1e12)):
                for flops in np.geomspace(1e6, end, 12):
                    rows.append({"run_id": f"{variant}{family}{i}", "family": family,
                                 "loss_variant": variant, "flops": flops, "step": flops,
                                 "status": "finished",
                                 "val_loss": unit * _law(flops, e, a, alpha)})
    return pd.DataFrame(rows)


def test_analysis_compares_the_families_of_each_loss_variant_apart():
    """Analysis.families: one comparison per loss variant, computed in analyse() (not while
    a page draws), each finding its own variant's crossover (the closed form)."""
    import matplotlib.pyplot as plt

    from scalelab.report.analysis import LEVEL, analyse
    from scalelab.report.context import ReportContext
    from scalelab.report.families import FamilyComparison
    from scalelab.report.pages import page_families

    ctx = ReportContext.build(_two_variant_families(), y="val_loss")
    analysis = analyse(ctx, n_bootstrap=20)
    assert set(analysis.families) == {"a", "b"}
    truth = np.exp(brentq(lambda lc: _law(np.exp(lc), *LAWS["cnn"])
                          - _law(np.exp(lc), *LAWS["transformer"]), np.log(1e6), np.log(1e13)))
    for variant, order in (("a", ("cnn", "transformer")), ("b", ("transformer", "cnn"))):
        comparison = analysis.families[variant]
        assert isinstance(comparison, FamilyComparison) and comparison.level == LEVEL
        (loser, winner, cross), = comparison.switches
        assert (loser, winner) == order
        assert cross.crossover == pytest.approx(truth, rel=0.02)
    pages = page_families(ctx, analysis)
    assert [name for name, _ in pages] == ["families_a", "families_b"]
    texts = [" ".join(t.get_text() for t in fig.texts) for _, fig in pages]
    assert "transformer overtakes cnn" in texts[0] and "cnn overtakes transformer" in texts[1]
    for _, fig in pages:
        plt.close(fig)

