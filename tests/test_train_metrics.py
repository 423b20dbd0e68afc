"""Validation metrics against independent computations: scikit-image, numpy, closed forms."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from scalelab.train import metrics


@pytest.fixture
def pair():
    rng = np.random.default_rng(3)
    target = rng.gamma(0.6, 1.5, size=(5, 2, 24, 20))  # heavy-ish tail, non-square images
    pred = target + rng.normal(0, 0.3, size=target.shape)
    return pred, target


def test_psnr_matches_scikit_image(pair):
    pred, target = pair
    data_range = float(target.max() - target.min())
    expected = peak_signal_noise_ratio(target, pred, data_range=data_range)
    got = metrics.psnr(torch.from_numpy(pred), torch.from_numpy(target), data_range)
    assert got == pytest.approx(expected, rel=1e-12)
    row = metrics.deterministic_metrics(torch.from_numpy(pred), torch.from_numpy(target), data_range)
    assert row["val_psnr"] == pytest.approx(expected, rel=1e-12)


def test_ssim_matches_scikit_image_per_image_mean(pair):
    pred, target = pair
    data_range = float(target.max() - target.min())
    expected = np.mean([structural_similarity(target[n, c], pred[n, c], data_range=data_range)
                        for n in range(target.shape[0]) for c in range(target.shape[1])])
    got = metrics.ssim(torch.from_numpy(pred), torch.from_numpy(target), data_range)
    assert got == pytest.approx(expected, rel=1e-10)
    # float32 input (what a run evaluates) agrees to float32 rounding of the input
    got32 = metrics.ssim(torch.from_numpy(pred).float(), torch.from_numpy(target).float(), data_range)
    assert got32 == pytest.approx(expected, abs=1e-5)


def test_ssim_of_identical_images_is_one(pair):
    _, target = pair
    t = torch.from_numpy(target)
    assert metrics.ssim(t, t, 1.0) == pytest.approx(1.0, abs=1e-12)


def test_mse_mae_rmse_match_numpy(pair):
    pred, target = pair
    row = metrics.deterministic_metrics(torch.from_numpy(pred), torch.from_numpy(target), 1.0)
    assert row["val_mse"] == pytest.approx(np.mean((pred - target) ** 2), rel=1e-12)
    assert row["val_mae"] == pytest.approx(np.mean(np.abs(pred - target)), rel=1e-12)
    assert row["val_rmse"] == pytest.approx(np.sqrt(np.mean((pred - target) ** 2)), rel=1e-12)


@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0])
def test_quantile_matches_numpy_percentile(pair, q):
    pred, _ = pair
    assert metrics.quantile(torch.from_numpy(pred), q) == pytest.approx(
        np.percentile(pred, 100 * q), rel=1e-12)


def test_quantiles_with_ties_and_small_arrays():
    values = np.array([3.0, 1.0, 1.0, 2.0, 2.0, 2.0, 7.0])
    got = metrics.quantiles(torch.from_numpy(values), [0.3, 0.99, 0.999])
    np.testing.assert_allclose(got, np.percentile(values, [30, 99, 99.9]), rtol=1e-12)


def test_percentile_bias_matches_numpy(pair):
    pred, target = pair
    row = metrics.deterministic_metrics(torch.from_numpy(pred), torch.from_numpy(target), 1.0)
    for key, p in (("val_p99_bias", 99), ("val_p999_bias", 99.9)):
        q_pred, q_true = np.percentile(pred, p), np.percentile(target, p)
        assert row[key] == pytest.approx((q_pred - q_true) / abs(q_true), rel=1e-10)
    # a prediction twice the truth overshoots every percentile by 100 %
    t = torch.from_numpy(target)
    assert metrics.percentile_bias(2 * t, t, 99.9) == pytest.approx(1.0, rel=1e-12)


def _numpy_radial_spectrum(fields):
    """Reference: loop over every wavevector, bin by the rounded radius."""
    h, w = fields.shape[-2:]
    power = (np.abs(np.fft.fft2(fields.reshape(-1, h, w))) ** 2).mean(0)
    kmax = min(h, w) // 2
    sums, counts = np.zeros(kmax), np.zeros(kmax)
    for i in range(h):
        for j in range(w):
            ky = i if i <= h // 2 else i - h
            kx = j if j <= w // 2 else j - w
            if h % 2 == 0 and i == h // 2:
                ky = -h // 2
            if w % 2 == 0 and j == w // 2:
                kx = -w // 2
            k = int(np.rint(np.hypot(kx, ky)))
            if k < kmax:
                sums[k] += power[i, j]
                counts[k] += 1
    return (sums / counts)[1:]


def test_radial_spectrum_matches_numpy_loop(pair):
    _, target = pair
    np.testing.assert_allclose(metrics.radial_spectrum(torch.from_numpy(target)).numpy(),
                               _numpy_radial_spectrum(target), rtol=1e-10)


def test_spectrum_error_closed_forms(pair):
    _, target = pair
    t = torch.from_numpy(target)
    # scaling by c multiplies every E(k) by c²: the distance is log10(c²)
    assert metrics.spectrum_error(3.0 * t, t) == pytest.approx(math.log10(9.0), rel=1e-10)
    # a circular shift leaves the power spectrum unchanged
    assert metrics.spectrum_error(torch.roll(t, (5, 3), dims=(-2, -1)), t) == pytest.approx(0, abs=1e-12)
    ref = metrics.reference(t)
    row = metrics.deterministic_metrics(0.5 * t, t, 1.0, ref)
    assert row["val_spectrum_error"] == pytest.approx(abs(math.log10(0.25)), rel=1e-10)


def test_ensemble_metrics_crps_matches_scoringrules_fair():
    import scoringrules

    rng = np.random.default_rng(5)
    centre = rng.normal(size=(3, 1, 8, 8))
    target = centre + rng.normal(size=centre.shape)  # truth and members exchangeable
    ens = centre[:, None] + rng.normal(size=(3, 6, 1, 8, 8))
    row = metrics.ensemble_metrics(torch.from_numpy(ens), torch.from_numpy(target), threshold=1.0)
    expected = np.mean(scoringrules.crps_ensemble(target, np.moveaxis(ens, 1, -1), estimator="fair"))
    assert row["val_crps"] == pytest.approx(expected, rel=1e-10)
    # exceedance probability as the fraction of members above the threshold; Brier by hand
    prob = (ens > 1.0).mean(1).ravel()
    event = (target > 1.0).ravel()
    assert row["val_exceed_brier"] == pytest.approx(np.mean((prob - event) ** 2), rel=1e-12)
    # spread-skill ratio √((M+1)/M · mean var) / RMSE of the ensemble mean, by hand
    m = ens.shape[1]
    spread = (m + 1) / m * ens.var(axis=1, ddof=1).mean()
    skill = ((ens.mean(axis=1) - target) ** 2).mean()
    assert row["val_spread_skill"] == pytest.approx(math.sqrt(spread / skill), rel=1e-10)
    assert set(row) >= {"val_rank_delta", "val_exceed_ece"}


def test_ensemble_metrics_record_the_rank_departure_of_the_per_image_histograms():
    """val_rank_departure is rank_histogram_departure of one histogram per image (whose sum
    is val_rank_hist), by hand: the cross-image products of the images' frequencies."""
    rng = np.random.default_rng(6)
    target = rng.normal(size=(6, 1, 8, 8))
    ens = 0.5 * rng.normal(size=(6, 4, 1, 8, 8))  # underdispersed: U-shaped ranks
    row = metrics.ensemble_metrics(torch.from_numpy(ens), torch.from_numpy(target), threshold=1.0)
    ranks = (ens < target[:, None]).sum(1).reshape(6, -1)  # no ties in continuous data
    counts = np.stack([np.bincount(r, minlength=5) for r in ranks])
    np.testing.assert_array_equal(counts.sum(0), row["val_rank_hist"])
    g = counts / counts.sum(1, keepdims=True) - 1 / 5
    cross = sum(g[i] @ g[j] for i in range(6) for j in range(6) if i != j) / 30
    assert row["val_rank_departure"] == pytest.approx(math.sqrt(5 * cross), rel=1e-10)
    assert 1 < row["val_rank_neff"] < 6 * 64 * 1.5
    # one image: its pixels' ranks are taken as independent (n_eff = the pixels)
    one = metrics.ensemble_metrics(torch.from_numpy(ens[:1]), torch.from_numpy(target[:1]),
                                   threshold=1.0)
    k = counts[0]
    chi2 = 5 * (k * (k - 1)).sum() / (64 * 63) - 1  # the multinomial's unbiased estimate
    assert one["val_rank_departure"] == pytest.approx(math.sqrt(max(chi2, 0)), rel=1e-10)
    assert one["val_rank_neff"] == 64


def _keys_matrix(n: int, scale: int, a: float = -0.75) -> np.ndarray:
    """The (n·scale × n) matrix of cubic convolution (Keys 1981, eq. 15, with a = −0.75) from
    n cell centres to n·scale, the edges replicated: the formula, written out in numpy."""
    def kernel(d):
        d = abs(d)
        if d <= 1:
            return (a + 2) * d**3 - (a + 3) * d**2 + 1
        return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a if d < 2 else 0.0

    out = np.zeros((n * scale, n))
    for i in range(n * scale):
        x = (i + 0.5) / scale - 0.5
        x0 = int(np.floor(x))
        for tap in range(x0 - 1, x0 + 3):
            out[i, min(max(tap, 0), n - 1)] += kernel(x - tap)
    return out


def test_bicubic_upsampling_is_keys_cubic_convolution():
    """bicubic_upsample against the cubic-convolution formula applied along each axis; only
    the target's channel (the first) is upsampled, not the predictors after it."""
    rng = np.random.default_rng(8)
    lr = rng.gamma(0.8, 1.0, size=(2, 1, 6, 5))
    extra = rng.normal(size=lr.shape)
    up = metrics.bicubic_upsample(torch.from_numpy(np.concatenate([lr, extra], 1)), (24, 20), 1)
    assert up.shape == (2, 1, 24, 20)
    rows, cols = _keys_matrix(6, 4), _keys_matrix(5, 4)
    expected = np.einsum("ij,ncjk,lk->ncil", rows, lr, cols)
    np.testing.assert_allclose(up.numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("variant", ["mse", "crps_fair"])
def test_bicubic_reference_scores_by_hand(variant):
    """evaluate_bicubic: MSE and MAE of the bicubic field by numpy; the CRPS of a point
    forecast is its absolute error (Gneiting & Raftery 2007), and so is the fair CRPS of
    M identical members, the ensemble loss's value."""
    from scalelab.losses import get_loss
    from scalelab.train.loop import evaluate_bicubic

    rng = np.random.default_rng(7)
    lr = torch.from_numpy(rng.gamma(0.8, 1.0, size=(5, 1, 4, 4)))
    hr = torch.from_numpy(rng.gamma(0.8, 1.0, size=(5, 1, 16, 16)))
    loss = get_loss(variant)
    members = 4 if variant == "crps_fair" else 1
    row = evaluate_bicubic(loss, lr, hr, data_range=float(hr.max() - hr.min()), members=members,
                           batch_size=2)
    up = torch.nn.functional.interpolate(lr, size=(16, 16), mode="bicubic",
                                         align_corners=False).numpy()
    error = up - hr.numpy()
    assert row["val_bicubic_mse"] == pytest.approx(np.mean(error**2), rel=1e-10)
    assert row["val_bicubic_mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-10)
    expected_loss = np.mean(error**2) if variant == "mse" else np.mean(np.abs(error))
    assert row["val_bicubic_loss"] == pytest.approx(expected_loss, rel=1e-6)
    if members > 1:
        assert row["val_bicubic_crps"] == pytest.approx(np.mean(np.abs(error)), rel=1e-10)
    else:
        assert "val_bicubic_crps" not in row
