"""Calibration metrics checked against uncertainty-calibration, netcal, sklearn and properscoring."""

import calibration as kumar  # uncertainty-calibration (Kumar, Liang & Ma 2019)
import numpy as np
import properscoring as ps
import pytest
from netcal.metrics import ECE as NetcalECE
from netcal.metrics import MCE as NetcalMCE
from sklearn.metrics import brier_score_loss, log_loss

from scalelab import ScalelabError
from scalelab.calibration import (
    bootstrap_ci,
    brier_score,
    calibration_error,
    ece,
    nll,
    plot_reliability,
    reliability_curve,
)

RTOL = 1e-6


def _classifier(n=4000, classes=6, seed=0, temperature=2.0):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, classes)) * temperature
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    # labels drawn from a sharper distribution than probs: miscalibrated on purpose
    sharp = probs ** 1.5 / (probs ** 1.5).sum(1, keepdims=True)
    labels = (sharp.cumsum(1) > rng.random((n, 1))).argmax(1)
    return probs, labels


def _calibrated_binary(n=20_000, seed=1):
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, n)
    return p, (rng.random(n) < p).astype(np.int64)


def test_top_label_ece_matches_netcal_and_kumar():
    probs, labels = _classifier()
    ours = ece(probs, labels)
    assert ours == pytest.approx(NetcalECE(bins=15).measure(probs, labels), rel=RTOL)
    assert ours == pytest.approx(kumar.get_ece(probs, labels), rel=RTOL)


def test_max_norm_matches_netcal_mce():
    probs, labels = _classifier(seed=2)
    assert ece(probs, labels, bins=10, norm="max") == pytest.approx(
        NetcalMCE(bins=10).measure(probs, labels), rel=RTOL)


def test_marginal_and_mass_binned_ece_match_kumar():
    probs, labels = _classifier(seed=3)
    assert ece(probs, labels, kind="marginal") == pytest.approx(
        kumar.get_ece(probs, labels, mode="marginal"), rel=RTOL)
    assert ece(probs, labels, binning="mass", bins=10) == pytest.approx(
        kumar.get_ece_em(probs, labels, num_bins=10), rel=RTOL)
    assert ece(probs, labels, norm="l2") == pytest.approx(
        kumar.lower_bound_scaling_ce(probs, labels, p=2, debias=False, mode="top-label",
                                     binning_scheme=kumar.get_equal_prob_bins), rel=RTOL)


@pytest.mark.parametrize("kind, mode", [("marginal", "marginal"), ("top_label", "top-label")])
def test_debiased_l2_matches_kumar(kind, mode):
    probs, labels = _classifier(seed=4)
    assert calibration_error(probs, labels, kind=kind) == pytest.approx(
        kumar.get_calibration_error(probs, labels, mode=mode), rel=RTOL)
    assert calibration_error(probs, labels, kind=kind, debias=False, p=1) == pytest.approx(
        kumar.get_calibration_error(probs, labels, p=1, debias=False, mode=mode), rel=RTOL)


def test_binary_exceedance_probabilities_match_references():
    rng = np.random.default_rng(5)
    p = rng.random(3000)
    y = (rng.random(3000) < p ** 1.3).astype(np.int64)
    assert calibration_error(p, y, binary="p_positive") == pytest.approx(
        kumar.get_calibration_error(p, y), rel=RTOL)
    assert ece(p, y, binary="p_positive") == pytest.approx(kumar.get_ece(p, y), rel=RTOL)
    assert ece(p, y, binary="p_positive") == pytest.approx(NetcalECE(15).measure(p, y), rel=RTOL)


def test_discrete_probabilities_use_unique_bins_like_kumar():
    rng = np.random.default_rng(6)
    p = rng.choice([0.1, 0.35, 0.6, 0.9], 5000)
    y = (rng.random(5000) < p + 0.03).astype(np.int64)
    assert calibration_error(p, y, binning="unique", binary="p_positive") == pytest.approx(
        kumar.get_calibration_error(p, y), rel=RTOL)


def test_debiased_error_near_zero_for_calibrated_model_while_plugin_is_positive():
    p, y = _calibrated_binary()
    plugin = calibration_error(p, y, debias=False, bins=50, binary="p_positive")
    debiased = calibration_error(p, y, bins=50, binary="p_positive")
    assert plugin > 0.01
    assert debiased < 0.3 * plugin
    assert ece(p, y, binary="p_positive", bins=50) > 0.005


def test_debiased_l1_is_below_plugin_for_calibrated_model():
    p, y = _calibrated_binary(seed=7)
    plugin = calibration_error(p, y, p=1, debias=False, bins=10, binary="p_positive")
    debiased = calibration_error(p, y, p=1, bins=10, binary="p_positive", seed=0)
    assert debiased < plugin


def test_confidence_of_one_falls_in_last_bin_and_zero_in_first():
    probs = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.3, 0.7]])
    labels = np.array([0, 0, 1, 1])
    curve = reliability_curve(probs, labels, bins=10)
    assert curve.count.shape == (10,) and curve.count.sum() == 4
    assert curve.count[-1] == 2  # the two confidences of exactly 1.0
    assert curve.count[4] == 1  # 0.5 sits on the edge 0.5: right-closed bin (0.4, 0.5]
    p = np.array([0.0, 0.0, 1.0])
    assert reliability_curve(p, np.array([0, 1, 1]), bins=5, binary="p_positive").count[0] == 2
    assert np.isfinite(nll(p, np.array([0, 1, 1]), binary="p_positive"))


def test_binary_input_must_say_what_it_holds():
    p, y = _calibrated_binary(n=100)
    with pytest.raises(ScalelabError, match="ambiguous"):
        ece(p, y)
    with pytest.raises(ScalelabError, match="binary="):
        ece(np.stack([1 - p, p], 1), y, binary="p_positive")
    with pytest.raises(ScalelabError, match="kind="):
        ece(p, y, binary="p_positive", kind="top_label")


@pytest.mark.parametrize("probs, labels, message", [
    (np.array([[0.5, 0.6], [0.5, 0.5]]), np.array([0, 1]), "sum to 1"),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), np.array([0, 1]), r"\[0, 1\]"),
    (np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([0, 2]), "class indices"),
    (np.array([[0.5, 0.5], [np.nan, 0.5]]), np.array([0, 1]), "NaN"),
    (np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([0, 1, 1]), "shape"),
])
def test_bad_input(probs, labels, message):
    with pytest.raises(ScalelabError, match=message):
        ece(probs, labels)


def test_brier_and_nll_match_sklearn_and_properscoring():
    probs, labels = _classifier(seed=8)
    onehot = np.eye(probs.shape[1])[labels]
    assert brier_score(probs, labels) == pytest.approx(((probs - onehot) ** 2).sum(1).mean(),
                                                       rel=RTOL)
    assert nll(probs, labels) == pytest.approx(log_loss(labels, probs), rel=RTOL)
    p, y = _calibrated_binary(n=2000)
    assert brier_score(p, y, binary="p_positive") == pytest.approx(brier_score_loss(y, p), rel=RTOL)
    assert brier_score(p, y, binary="p_positive") == pytest.approx(ps.brier_score(y, p).mean(),
                                                                   rel=RTOL)
    assert nll(p, y, binary="p_positive") == pytest.approx(log_loss(y, p), rel=RTOL)


def test_torch_inputs_are_accepted():
    torch = pytest.importorskip("torch")
    probs, labels = _classifier(seed=9)
    assert ece(torch.from_numpy(probs), torch.from_numpy(labels)) == pytest.approx(
        ece(probs, labels), rel=RTOL)


def test_bootstrap_interval_brackets_the_estimate():
    probs, labels = _classifier(n=1500, seed=10)
    interval = bootstrap_ci(ece, probs, labels, resamples=50, seed=0, bins=10)
    assert interval.estimate == pytest.approx(ece(probs, labels, bins=10))
    assert interval.low < interval.estimate < interval.high


def test_reliability_plot_draws():
    probs, labels = _classifier(seed=11)
    ax = plot_reliability(reliability_curve(probs, labels), label="model")
    assert ax.get_xlabel() == "confidence"


# ---------------------------------------------------------------------------- recalibrators
def _overconfident_binary(n=3000, seed=12):
    rng = np.random.default_rng(seed)
    truth = rng.beta(2, 2, n)
    y = (rng.random(n) < truth).astype(np.int64)
    logit = np.log(truth / (1 - truth))
    return 1 / (1 + np.exp(-2.0 * logit - 0.3)), y  # over-confident and shifted


def test_temperature_scaling_satisfies_the_nll_stationarity_condition():
    from scalelab.calibration import TemperatureScaling

    rng = np.random.default_rng(13)
    logits = rng.standard_normal((3000, 5)) * 3
    sharp = np.exp(logits / 2.5)
    labels = ((sharp / sharp.sum(1, keepdims=True)).cumsum(1) > rng.random((3000, 1))).argmax(1)
    model = TemperatureScaling().fit(logits, labels)
    assert model.temperature_ == pytest.approx(2.5, rel=0.15)
    probs = model.predict_proba(logits)
    # d NLL / dT = 0  ⇔  Σ_i z_{i,y_i} = Σ_i Σ_k p_ik z_ik  (closed form of the optimum)
    true_logit = logits[np.arange(3000), labels].sum()
    assert (probs * logits).sum() == pytest.approx(true_logit, rel=1e-6)


def test_platt_matches_statsmodels_and_kumar():
    import statsmodels.api as sm

    from scalelab.calibration import PlattScaling

    p, y = _overconfident_binary()
    model = PlattScaling().fit(p, y)
    logit = np.log(p / (1 - p))
    reference = sm.Logit(y, sm.add_constant(logit)).fit(disp=0, tol=1e-12)
    assert model.intercept_ == pytest.approx(reference.params[0], rel=RTOL)
    assert model.slope_ == pytest.approx(reference.params[1], rel=RTOL)
    kumar_platt = kumar.get_platt_scaler(p, y)
    np.testing.assert_allclose(model.predict_proba(p), kumar_platt(p), rtol=1e-4)  # lbfgs tol


def test_histogram_binning_and_scaling_binning_match_kumar():
    from scalelab.calibration import HistogramBinning, ScalingBinning

    p, y = _overconfident_binary(seed=14)
    test_p = np.random.default_rng(15).random(500)
    reference = kumar.HistogramCalibrator(len(p), 10)
    reference.train_calibration(p, y)
    np.testing.assert_allclose(HistogramBinning(bins=10).fit(p, y).predict_proba(test_p),
                               reference.calibrate(test_p), rtol=RTOL)
    ours = ScalingBinning(bins=10).fit(p, y).predict_proba(test_p)
    reference = kumar.PlattBinnerCalibrator(len(p), 10)
    reference.train_calibration(p, y)
    np.testing.assert_allclose(ours, reference.calibrate(test_p), rtol=1e-4)  # Platt via lbfgs
    assert np.unique(ours).size <= 10


def test_isotonic_matches_sklearn():
    from sklearn.isotonic import IsotonicRegression

    from scalelab.calibration import IsotonicCalibrator

    p, y = _overconfident_binary(seed=16)
    p = np.round(p, 3)  # ties in p, pooled like sklearn does
    test_p = np.linspace(0, 1, 301)
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p, y)
    np.testing.assert_allclose(IsotonicCalibrator().fit(p, y).predict_proba(test_p),
                               reference.predict(test_p), rtol=RTOL, atol=1e-12)


def test_recalibration_lowers_calibration_error():
    from scalelab.calibration import PlattScaling

    p, y = _overconfident_binary(n=20_000, seed=17)
    half = 10_000
    fixed = PlattScaling().fit(p[:half], y[:half]).predict_proba(p[half:])
    before = ece(p[half:], y[half:], binary="p_positive")
    assert ece(fixed, y[half:], binary="p_positive") < 0.5 * before


def test_unfitted_recalibrator_says_so():
    from scalelab.calibration import IsotonicCalibrator

    with pytest.raises(ScalelabError, match="not fitted"):
        IsotonicCalibrator().predict_proba(np.array([0.5]))
