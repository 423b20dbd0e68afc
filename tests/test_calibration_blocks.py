"""The cache-blocked top-label path: block boundaries, ties, edges, dtypes and late bad rows.

Values are checked against netcal and uncertainty-calibration (Kumar et al.) run here,
and bin counts against numpy's own searchsorted on the documented edges.
"""

import calibration as kumar  # uncertainty-calibration (Kumar, Liang & Ma 2019)
import numpy as np
import pytest
from netcal.metrics import ECE as NetcalECE

from scalelab import ScalelabError
from scalelab.calibration import calibration_error, ece, reliability_curve

RTOL = 1e-6
ROWS = 70_001  # several blocks of rows and a ragged last one


def _probs(n=ROWS, classes=10, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, classes)) * 2.0
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    labels = (probs.cumsum(1) > rng.random((n, 1)) ** 1.2).argmax(1)
    return probs.astype(dtype), labels


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_many_blocks_match_netcal_and_kumar(dtype):
    probs, labels = _probs(dtype=dtype)
    ours = ece(probs, labels)
    assert ours == pytest.approx(NetcalECE(bins=15).measure(probs, labels), rel=RTOL)
    assert ours == pytest.approx(kumar.get_ece(probs, labels), rel=RTOL)
    assert calibration_error(probs, labels, kind="top_label") == pytest.approx(
        kumar.get_calibration_error(probs, labels, mode="top-label"), rel=RTOL)


def test_layouts_other_than_c_order_give_the_same_value():
    probs, labels = _probs(n=20_003, seed=1)
    reference = NetcalECE(bins=15).measure(probs, labels)
    assert ece(np.asfortranarray(probs), labels) == pytest.approx(reference, rel=RTOL)
    wide = np.zeros((probs.shape[0], 2 * probs.shape[1]))
    wide[:, ::2] = probs
    assert ece(wide[:, ::2], labels) == pytest.approx(reference, rel=RTOL)


def test_ties_at_the_maximum_take_the_first_class_like_argmax():
    rng = np.random.default_rng(2)
    n = 30_000
    # quantised probabilities: many rows whose maximum is shared by two or more classes
    counts = rng.multinomial(8, np.full(4, 0.25), size=n)
    probs = counts / 8.0
    labels = rng.integers(0, 4, n)
    tied = (probs == probs.max(1, keepdims=True)).sum(1) > 1
    assert tied.mean() > 0.2
    assert ece(probs, labels) == pytest.approx(NetcalECE(bins=15).measure(probs, labels),
                                               rel=RTOL)
    assert ece(probs, labels) == pytest.approx(kumar.get_ece(probs, labels), rel=RTOL)
    curve = reliability_curve(probs, labels, bins=15)
    correct = probs.argmax(1) == labels
    assert curve.accuracy[curve.count > 0] @ curve.count[curve.count > 0] == correct.sum()


@pytest.mark.parametrize("bins", [15, 25])  # 25: fl(p·B) rounds up across an edge
def test_width_bins_of_values_on_and_beside_the_edges(bins):
    edges = np.arange(1, bins + 1) / bins
    values = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, 2)[:-1],
                             [0.0, 5e-324, np.nextafter(1.0, 0)]])
    values = np.tile(values, 2000)  # several blocks
    outcome = np.arange(values.size) % 3 == 0
    curve = reliability_curve(values, outcome.astype(np.int64), bins=bins, binary="p_positive")
    expected = np.bincount(np.searchsorted(edges, values, side="left"), minlength=bins)
    np.testing.assert_array_equal(curve.count, expected)
    correct = np.bincount(np.searchsorted(edges, values[outcome], side="left"), minlength=bins)
    np.testing.assert_allclose(curve.accuracy * curve.count, correct)


@pytest.mark.parametrize("row, value, message", [
    (ROWS - 1, np.nan, "NaN"),
    (45_000, 1.5, r"\[0, 1\]"),
    (60_000, -0.25, r"got values in \[-0.25"),
])
def test_a_bad_value_in_a_late_block_is_reported_for_the_whole_array(row, value, message):
    probs, labels = _probs()
    probs[row, 3] = value
    with pytest.raises(ScalelabError, match=message):
        ece(probs, labels)
    with pytest.raises(ScalelabError, match=message):
        calibration_error(probs, labels, kind="top_label")


def test_a_row_off_its_sum_in_the_last_block_and_bad_labels_say_so():
    probs, labels = _probs()
    probs[-1] *= 1.01
    with pytest.raises(ScalelabError, match="sum to 1"):
        ece(probs, labels)
    probs, labels = _probs()
    labels[-1] = 10
    with pytest.raises(ScalelabError, match="class indices"):
        ece(probs, labels)
    probs[5, 0] = np.nan  # both wrong: the values are named first, as before
    with pytest.raises(ScalelabError, match="NaN"):
        ece(probs, labels)


@pytest.mark.parametrize("debias, p", [(True, 2), (False, 1)])
def test_equal_mass_bins_with_points_on_the_edges_match_kumar(debias, p):
    rng = np.random.default_rng(3)
    n = 40_000
    values = rng.integers(1, 200, n) / 200.0  # repeated values: edges fall on data points
    outcome = (rng.random(n) < values ** 1.2).astype(np.int64)
    ours = calibration_error(values, outcome, p=p, debias=debias, binary="p_positive")
    reference = kumar.lower_bound_scaling_ce(values, outcome, p=p, debias=debias,
                                             binning_scheme=kumar.get_equal_bins)
    assert ours == pytest.approx(reference, rel=RTOL)
    from scalelab.calibration.classification import bin_edges
    edges = bin_edges(values, 15, "mass")
    assert np.isin(edges[:-1], values).sum() >= 5  # the case under test
