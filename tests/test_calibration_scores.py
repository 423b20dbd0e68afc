"""Ensemble scores checked against scoringrules, properscoring, scipy and closed forms."""

import subprocess
import sys

import numpy as np
import properscoring as ps
import pytest
import scoringrules as sr
from scipy import stats

from scalelab import ScalelabError
from scalelab.calibration import (
    crps_ensemble,
    interval_coverage,
    pit,
    quantile_score,
    rank_histogram,
    rank_histogram_departure,
    rank_histogram_flatness,
    spread_skill_ratio,
)

RTOL = 1e-6


def _field(members=9, shape=(12, 16), seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    ens = rng.standard_normal((members, *shape)).astype(dtype)
    obs = (0.5 + 1.3 * rng.standard_normal(shape)).astype(dtype)
    return obs, ens


def test_import_does_not_pull_torch():
    code = "import sys, scalelab.calibration; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("estimator", ["nrg", "fair", "pwm"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_crps_matches_scoringrules(estimator, axis):
    obs, ens = _field()
    ens = np.moveaxis(ens, 0, axis)
    ours = crps_ensemble(obs, ens, axis=axis, estimator=estimator)
    theirs = sr.crps_ensemble(obs, ens, m_axis=axis, estimator=estimator, backend="numpy")
    np.testing.assert_allclose(ours, theirs, rtol=RTOL)


def test_crps_nrg_matches_properscoring_on_float32():
    obs, ens = _field(members=50, shape=(20, 33), dtype=np.float32)
    ours = crps_ensemble(obs, ens, axis=0)
    assert ours.dtype == np.float32
    theirs = ps.crps_ensemble(obs.astype(np.float64), np.moveaxis(ens, 0, -1).astype(np.float64))
    np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=1e-6)


def test_crps_of_one_member_is_absolute_error():
    obs, ens = _field(members=1)
    np.testing.assert_allclose(crps_ensemble(obs, ens, axis=0), np.abs(ens[0] - obs), rtol=RTOL)


def test_crps_chunks_cover_a_field_larger_than_one_buffer():
    obs, ens = _field(members=20, shape=(3, 20000), seed=3)  # several chunks per row
    theirs = sr.crps_ensemble(obs, ens, m_axis=0, estimator="fair", backend="numpy")
    np.testing.assert_allclose(crps_ensemble(obs, ens, axis=0, estimator="fair"), theirs,
                               rtol=RTOL)


def test_afair_matches_lang_et_al_pairwise_definition():
    rng = np.random.default_rng(5)
    members, alpha = 6, 0.95
    ens, obs = rng.standard_normal((members, 40)), rng.standard_normal(40)
    eps = (1 - alpha) / members
    total = np.zeros(40)
    for j in range(members):
        for k in range(members):
            if j != k:
                total += (np.abs(ens[j] - obs) + np.abs(ens[k] - obs)
                          - (1 - eps) * np.abs(ens[j] - ens[k]))
    expected = total / (2 * members * (members - 1))
    np.testing.assert_allclose(crps_ensemble(obs, ens, estimator="afair", alpha=alpha), expected,
                               rtol=RTOL)


def test_afair_limits_are_fair_and_standard():
    obs, ens = _field()
    np.testing.assert_allclose(crps_ensemble(obs, ens, estimator="afair", alpha=1.0),
                               sr.crps_ensemble(obs, ens, m_axis=0, estimator="fair"), rtol=RTOL)
    np.testing.assert_allclose(crps_ensemble(obs, ens, estimator="afair", alpha=0.0),
                               sr.crps_ensemble(obs, ens, m_axis=0, estimator="nrg"), rtol=RTOL)


def test_crps_reduction_with_latitude_weights():
    obs, ens = _field(shape=(4, 12, 16))
    per_point = sr.crps_ensemble(obs, ens, m_axis=0, estimator="fair")
    lat = np.linspace(-80, 80, 12)
    weights = np.cos(np.deg2rad(lat))[:, None]
    ours = crps_ensemble(obs, ens, axis=0, estimator="fair", reduce_axes=(1, 2), weights=weights)
    full = np.broadcast_to(weights, (12, 16))
    expected = (per_point * full).sum(axis=(1, 2)) / full.sum()
    np.testing.assert_allclose(ours, expected, rtol=RTOL)
    assert isinstance(crps_ensemble(obs, ens, reduce_axes="all"), float)


def test_crps_torch_stays_a_tensor_and_agrees():
    torch = pytest.importorskip("torch")
    obs, ens = _field()
    out = crps_ensemble(torch.from_numpy(obs), torch.from_numpy(ens), axis=0, estimator="fair")
    assert isinstance(out, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), sr.crps_ensemble(obs, ens, m_axis=0, estimator="fair"),
                               rtol=RTOL)
    mean = crps_ensemble(torch.from_numpy(obs), torch.from_numpy(ens), reduce_axes="all")
    assert float(mean) == pytest.approx(float(sr.crps_ensemble(obs, ens, m_axis=0).mean()),
                                        rel=RTOL)


@pytest.mark.parametrize("call, message", [
    (lambda o, e: crps_ensemble(o, e[:1], estimator="fair"), "at least 2"),
    (lambda o, e: crps_ensemble(o, e, axis=1), "does not match"),
    (lambda o, e: crps_ensemble(o, e, estimator="energy"), "unknown estimator"),
    (lambda o, e: crps_ensemble(np.where(o > 0, np.nan, o), e), "NaN"),
    (lambda o, e: crps_ensemble(o, np.where(e > 2, np.nan, e)), "NaN"),
    (lambda o, e: crps_ensemble(o, e, reduce_axes="all", weights=-np.ones(16)), "non-negative"),
    (lambda o, e: crps_ensemble(o, e, estimator="afair", alpha=2), "alpha"),
])
def test_crps_bad_input(call, message):
    obs, ens = _field()
    with pytest.raises(ScalelabError, match=message):
        call(obs, ens)


def test_spread_skill_ratio_of_consistent_ensemble_is_one():
    rng = np.random.default_rng(1)
    members, n = 3, 400_000
    centre = rng.standard_normal(n)
    ens = centre + rng.standard_normal((members, n))  # obs and members exchangeable
    obs = centre + rng.standard_normal(n)
    assert spread_skill_ratio(obs, ens) == pytest.approx(1.0, abs=0.01)
    # without the (M+1)/M factor it would read sqrt(3/4) ≈ 0.87
    ens_mean = ens.mean(0)
    plain = np.sqrt(ens.var(0, ddof=1).mean() / ((ens_mean - obs) ** 2).mean())
    assert plain == pytest.approx(np.sqrt(members / (members + 1)), abs=0.01)


def test_spread_skill_ratio_per_axis_matches_closed_form():
    obs, ens = _field(members=5, shape=(6, 50))
    ours = spread_skill_ratio(obs, ens, axis=0, reduce_axes=1)
    expected = np.sqrt(6 / 5 * ens.var(0, ddof=1).mean(1) / ((ens.mean(0) - obs) ** 2).mean(1))
    np.testing.assert_allclose(ours, expected, rtol=RTOL)


def test_rank_histogram_counts_and_flatness_against_scipy():
    obs, ens = _field(members=7, shape=(30, 40))
    counts = rank_histogram(obs, ens, axis=0)
    manual = np.bincount((ens < obs).sum(0).ravel(), minlength=8)
    np.testing.assert_array_equal(counts, manual)
    flat = rank_histogram_flatness(counts)
    reference = stats.chisquare(counts)
    assert flat.chi2 == pytest.approx(reference.statistic, rel=RTOL)
    assert flat.p_value == pytest.approx(reference.pvalue, rel=RTOL)
    assert flat.dof == 7


def test_rank_histogram_of_consistent_ensemble_is_flat_and_of_underdispersed_is_u_shaped():
    rng = np.random.default_rng(2)
    ens, obs = rng.standard_normal((9, 50_000)), rng.standard_normal(50_000)
    assert rank_histogram_flatness(rank_histogram(obs, ens)).p_value > 1e-3
    narrow = rank_histogram(obs, 0.5 * ens)
    assert narrow[0] > 2 * narrow[4] and narrow[-1] > 2 * narrow[4]
    assert rank_histogram_flatness(narrow).delta > 10


def _rank_probabilities(members: int, spread: float) -> np.ndarray:
    """P(rank = k) of an observation y ~ N(0, 1) among M members ~ N(0, spread²), by
    quadrature: ∫ C(M, k) Φ(y/s)^k (1 − Φ(y/s))^(M−k) φ(y) dy (independent of the code)."""
    from scipy import integrate, special

    def density(y, k):
        below = stats.norm.cdf(y / spread)
        return special.comb(members, k) * below**k * (1 - below) ** (members - k) * \
            stats.norm.pdf(y)

    return np.array([integrate.quad(density, -np.inf, np.inf, args=(k,))[0]
                     for k in range(members + 1)])


def test_rank_departure_does_not_grow_with_the_sample_size_as_delta_does():
    """An underdispersed ensemble (members' spread 0.6 of the truth's): the departure's χ²
    divergence matches the closed form at 10³ and at 10⁵ ranks, while δ grows 100×; a
    calibrated ensemble gives 0 at both sizes."""
    members, spread = 4, 0.6
    p = _rank_probabilities(members, spread)
    truth = (members + 1) * ((p - 1 / (members + 1)) ** 2).sum()  # χ²(p‖u)
    rng = np.random.default_rng(0)
    found, deltas = {}, {}
    for n, repeats in ((10**3, 40), (10**5, 4)):
        div, delta, calibrated = [], [], []
        for _ in range(repeats):
            obs = rng.standard_normal(n)
            counts = rank_histogram(obs, spread * rng.standard_normal((members, n)))
            div.append(rank_histogram_departure(counts).divergence)
            delta.append(rank_histogram_flatness(counts).delta)
            calibrated.append(rank_histogram_departure(
                rank_histogram(obs, rng.standard_normal((members, n)))).divergence)
        found[n], deltas[n] = np.mean(div), np.mean(delta)
        # an unbiased estimate: within 4 standard errors of the closed form, and of 0
        assert abs(found[n] - truth) < 4 * np.std(div) / np.sqrt(repeats) + 1e-4
        assert abs(np.mean(calibrated)) < 4 * np.std(calibrated) / np.sqrt(repeats) + 1e-6
    assert found[10**5] == pytest.approx(truth, rel=0.02)
    assert found[10**3] == pytest.approx(found[10**5], rel=0.1)
    # δ estimates 1 + n·χ²/M: a hundred times larger at a hundred times the ranks
    for n in found:
        assert deltas[n] == pytest.approx(1 + n * truth / members, rel=0.1)
    departure = rank_histogram_departure(counts)
    assert departure.departure == pytest.approx(np.sqrt(departure.divergence))
    assert departure.n == departure.n_eff == 10**5


def test_rank_departure_of_correlated_groups_finds_their_effective_size():
    """A calibrated ensemble whose groups (images) each repeat one rank over 100 pixels:
    taken as independent ranks, the histogram departs from flat by its noise, whose
    expectation is (K − 1)(1/groups − 1/n) in χ² (closed form); per-group histograms give 0
    and n_eff = the number of groups."""
    rng = np.random.default_rng(1)
    groups, pixels, members = 400, 100, 4
    pooled, grouped, n_eff = [], [], []
    for _ in range(20):
        obs = np.repeat(rng.standard_normal(groups)[:, None], pixels, axis=1)
        ens = np.repeat(rng.standard_normal((members, groups))[:, :, None], pixels, axis=2)
        per_group = rank_histogram(obs, ens, axis=0, per=0)
        assert per_group.shape == (groups, members + 1)
        np.testing.assert_array_equal(per_group.sum(0), rank_histogram(obs, ens, axis=0))
        found = rank_histogram_departure(per_group)
        assert found.n == groups * pixels
        grouped.append(found.divergence)
        n_eff.append(found.n_eff)
        pooled.append(rank_histogram_departure(per_group.sum(0)).divergence)
    n = groups * pixels
    expected = members * (1 / groups - 1 / n)
    assert np.mean(pooled) == pytest.approx(expected, abs=4 * np.std(pooled) / np.sqrt(20))
    assert abs(np.mean(grouped)) < 4 * np.std(grouped) / np.sqrt(20)
    assert np.median(n_eff) == pytest.approx(groups, rel=0.1)
    with pytest.raises(ScalelabError, match="rank_histogram_departure: counts must"):
        rank_histogram_departure([3, -1, 2])
    with pytest.raises(ScalelabError, match="per must be an axis"):
        rank_histogram(obs, ens, axis=0, per=5)


def test_rank_histogram_breaks_ties_uniformly():
    ens = np.zeros((4, 20_000))
    counts = rank_histogram(np.zeros(20_000), ens, seed=0)
    assert counts.sum() == 20_000
    assert rank_histogram_flatness(counts).p_value > 1e-3  # all tied: uniform over 5 ranks


def test_rank_histogram_weights():
    obs, ens = _field(members=4, shape=(10, 8))
    weights = np.arange(1, 11, dtype=float)[:, None]
    counts = rank_histogram(obs, ens, weights=weights)
    ranks = (ens < obs).sum(0)
    expected = np.bincount(ranks.ravel(), np.broadcast_to(weights, ranks.shape).ravel(), 5)
    np.testing.assert_allclose(counts, expected)


def test_pit_is_uniform_for_consistent_ensemble():
    rng = np.random.default_rng(4)
    values = pit(rng.standard_normal(20_000), rng.standard_normal((5, 20_000)), seed=1)
    assert values.min() >= 0 and values.max() <= 1
    assert stats.kstest(values, "uniform").pvalue > 1e-3


def test_interval_coverage_matches_closed_form():
    obs, ens = _field(members=11, shape=(40, 30))
    lower, upper = np.quantile(ens, [0.05, 0.95], axis=0)
    expected = ((obs >= lower) & (obs <= upper)).mean()
    assert interval_coverage(obs, ens, level=0.9) == pytest.approx(expected, rel=RTOL)


def test_quantile_score_matches_scoringrules():
    rng = np.random.default_rng(6)
    levels = np.array([0.1, 0.5, 0.9])
    obs, fc = rng.standard_normal(200), rng.standard_normal((200, 3))
    ours = quantile_score(obs, fc, levels, axis=-1)
    for i, level in enumerate(levels):
        np.testing.assert_allclose(ours[:, i], sr.quantile_score(obs, fc[:, i], level), rtol=RTOL)
