"""Data: spectra, precipitation statistics, degradation operators, splits, the xarray reader."""

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch
import xarray as xr

from scalelab._errors import ScalelabError
from scalelab.data import (
    GriddedSource, degrade, example_path, gaussian_random_field, make_pairs, make_test_pairs,
    precipitation_field, radial_power_spectrum, turbulence_field,
)


@pytest.mark.parametrize("slope", [5 / 3, 3.0])
def test_grf_spectrum_has_requested_slope(slope):
    fields = gaussian_random_field(64, 64, slope=slope, seed=1)
    k, spectrum = radial_power_spectrum(fields)
    fit = np.polyfit(np.log(k[1:24].numpy()), np.log(spectrum[1:24].numpy()), 1)
    assert fit[0] == pytest.approx(-slope, abs=0.15)


@pytest.mark.parametrize("wet_fraction,sigma", [(0.3, 1.0), (0.1, 1.5)])
def test_precip_dry_fraction_and_tail(wet_fraction, sigma):
    rain = precipitation_field(400, 32, wet_fraction=wet_fraction, sigma=sigma, seed=2).double()
    assert (rain >= 0).all()
    assert float((rain > 0).double().mean()) == pytest.approx(wet_fraction, abs=0.02)
    # closed-form tail of the censored log-normal: P(R > r) = 1 − Φ(log(m r + e^{σz}) / σ)
    z = scipy.stats.norm.ppf(1 - wet_fraction)
    m = np.exp(sigma**2 / 2) * scipy.stats.norm.sf(z - sigma) / wet_fraction - np.exp(sigma * z)
    for r in (1.0, 3.0, 6.0):
        expected = scipy.stats.norm.sf(np.log(m * r + np.exp(sigma * z)) / sigma)
        assert float((rain > r).double().mean()) == pytest.approx(expected, rel=0.25, abs=2e-4)


def test_turbulence_conserves_energy_and_enstrophy_without_viscosity():
    def invariants(omega):
        w = omega[:, 0].numpy()
        k = np.fft.fftfreq(32) * 32
        k2 = np.add.outer(k**2, k**2)
        k2[0, 0] = 1
        w_hat = np.fft.fft2(w)
        return (np.abs(w_hat) ** 2 / k2).sum((1, 2)), (w**2).sum((1, 2))
    start = turbulence_field(2, 32, seed=3, time=1e-9, viscosity=0.0, normalise=False,
                             dtype=torch.float64)
    later = turbulence_field(2, 32, seed=3, time=0.5, viscosity=0.0, normalise=False,
                             dtype=torch.float64)
    for a, b in zip(invariants(start), invariants(later)):
        np.testing.assert_allclose(b, a, rtol=2e-3)
    assert (later - start).abs().max() > 0.1  # the flow did evolve


def test_block_mean_conserves_the_mean_exactly():
    hr = precipitation_field(4, 32, seed=0, dtype=torch.float64)
    for scale in (2, 4, 8):
        lr = degrade(hr, scale, "block_mean")
        torch.testing.assert_close(lr.mean((-2, -1)), hr.mean((-2, -1)), rtol=0, atol=1e-14)


def test_bicubic_matches_pil_antialiased_resize():
    from PIL import Image

    hr = gaussian_random_field(1, 32, seed=4)[0, 0]
    ours = degrade(hr[None, None], 4, "bicubic")[0, 0].numpy()
    pil = np.asarray(Image.fromarray(hr.numpy(), mode="F").resize((8, 8), Image.Resampling.BICUBIC))
    np.testing.assert_allclose(ours, pil, atol=2e-3)


def test_gaussian_matches_scipy_blur_then_subsample():
    hr = gaussian_random_field(2, 32, seed=5, dtype=torch.float64)
    ours = degrade(hr, 4, "gaussian", blur_sigma=1.5)
    ref = np.stack([scipy.ndimage.gaussian_filter(f[0].numpy(), 1.5, mode="mirror")[::4, ::4]
                    for f in hr])
    np.testing.assert_allclose(ours[:, 0].numpy(), ref, atol=1e-12)


def test_noise_is_added_with_the_requested_std():
    hr = torch.zeros(64, 1, 32, 32)
    lr = degrade(hr, 2, "block_mean", noise_std=0.5, generator=torch.Generator().manual_seed(0))
    assert float(lr.std()) == pytest.approx(0.5, rel=0.02)


@pytest.mark.parametrize("field", ["grf", "precip", "dem"])
def test_splits_are_fixed_and_do_not_change_with_d(field):
    (lr_a, hr_a), (_, val_a) = make_pairs(field, 8, 6, 32, 4, "bicubic", options={})
    (lr_b, hr_b), (_, val_b) = make_pairs(field, 16, 6, 32, 4, "bicubic", options={})
    assert torch.equal(val_a, val_b) and torch.equal(hr_a, hr_b[:8])
    lr_test, hr_test = make_test_pairs(field, 6, 32, 4, "bicubic")
    assert lr_test.shape == (6, 1, 8, 8) and not torch.equal(hr_test, val_a)


def test_gridded_reader_on_shipped_real_dem():
    path = example_path()
    raw = xr.open_dataset(path)["elevation"].values.astype(float)
    source = GriddedSource(path, "elevation")
    assert source.split_dim_ == "lon"
    train_block = raw[:, source.blocks_["train"]]
    assert source.mean_ == pytest.approx(train_block.mean()) and source.std_ == pytest.approx(train_block.std())
    crops = source.samples("val", 5, 16, seed=1).double() * source.std_ + source.mean_
    val_block = raw[:, source.blocks_["val"]]
    for crop in crops[:, 0].numpy():  # every crop is a real window of the validation block
        windows = np.lib.stride_tricks.sliding_window_view(val_block, (16, 16))
        assert np.isclose(windows, crop, atol=1e-3).all(axis=(-2, -1)).any()


def test_gridded_reader_splits_along_time_and_on_images():
    from skimage import data as images

    time = np.arange(10)
    ds = xr.Dataset({"t2m": (("time", "y", "x"), np.random.default_rng(0).normal(size=(10, 12, 12)) + time[:, None, None])},
                    coords={"time": time})
    source = GriddedSource(ds, "t2m")
    assert source.split_dim_ == "time" and source.blocks_["train"] == slice(0, 7)
    assert source.mean_ == pytest.approx(ds.t2m.values[:7].mean())
    camera = xr.DataArray(images.camera().astype(float), dims=("y", "x"), name="camera")
    assert GriddedSource(camera).samples("test", 3, 64).shape == (3, 1, 64, 64)


def test_bad_inputs_name_the_choices():
    ds = xr.Dataset({"pr": (("y", "x"), np.zeros((8, 8)))})
    with pytest.raises(ScalelabError, match="no variable 'tas'; valid choices are pr"):
        GriddedSource(ds, "tas")
    with pytest.raises(ScalelabError, match="does not exist"):
        GriddedSource("/nonexistent.nc", "pr")
    with pytest.raises(ScalelabError, match="unknown degradation 'lanczos'; valid choices are block_mean"):
        degrade(torch.zeros(1, 1, 8, 8), 2, "lanczos")
    with pytest.raises(ScalelabError, match="scale 3 does not divide"):
        degrade(torch.zeros(1, 1, 8, 8), 3)
    with pytest.raises(ScalelabError, match="unknown field 'era5'; valid choices are grf"):
        make_pairs("era5", 2, 2, 8, 2)
    with pytest.raises(ScalelabError, match="needs options.path"):
        make_pairs("gridded", 2, 2, 8, 2)
