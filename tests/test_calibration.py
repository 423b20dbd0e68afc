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
