"""Real gridded data end to end: formats, CF axes, paired sources, transforms, splits, masks, errors."""

import math
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from scalelab._errors import ScalelabError, SpecError
from scalelab.data import GriddedSource, make_pairs, make_run_data, make_test_pairs
from scalelab.data.cf import find_axes, latitude_weights, open_dataset
from scalelab.data.options import check_field_options, layout_for
from scalelab.train import fieldmetrics, metrics

DAYS = 40


def cf_dataset(days=DAYS, ny=16, nx=24, calendar=None, seed=0, global_grid=False):
    """A small CF dataset: t2m = day index + noise (so a patch tells its day), tp >= 0, orography."""
    rng = np.random.default_rng(seed)
    if calendar:
        time = xr.date_range("2001-01-01", periods=days, calendar=calendar, use_cftime=True)
    else:
        time = pd.date_range("2001-01-01", periods=days, freq="D")
    if global_grid:
        lat = np.linspace(90, -90, ny)
        lon = np.arange(nx) * 360.0 / nx
    else:
        lat = 50.0 - 0.5 * np.arange(ny)
        lon = 5.0 + 0.5 * np.arange(nx)
    day = np.arange(days, dtype=float)[:, None, None]
    t2m = 270.0 + day + 0.1 * rng.standard_normal((days, ny, nx))
    tp = np.exp(rng.standard_normal((days, ny, nx))) * (rng.random((days, ny, nx)) < 0.4)
    ds = xr.Dataset(
        {"t2m": (("valid_time", "latitude", "longitude"), t2m.astype(np.float32),
                 {"units": "K", "standard_name": "air_temperature"}),
         "tp": (("valid_time", "latitude", "longitude"), tp.astype(np.float32), {"units": "mm"}),
         "orography": (("latitude", "longitude"), rng.random((ny, nx)).astype(np.float32) * 1000,
                       {"units": "m"})},
        coords={"valid_time": ("valid_time", time, {"standard_name": "time"}),
                "latitude": ("latitude", lat, {"units": "degrees_north"}),
                "longitude": ("longitude", lon, {"units": "degrees_east"})})
    return ds


def write(ds, path, fmt):
    if fmt == "netcdf3":
        ds.to_netcdf(path, engine="scipy")
    elif fmt == "netcdf4":
        ds.to_netcdf(path, engine="h5netcdf")
    else:
        ds.to_zarr(path, mode="w", zarr_format=int(fmt[-1]), consolidated=False)
    return str(path)


FORMATS = ["netcdf3", "netcdf4", "zarr2", "zarr3"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_gives_the_same_patches_as_xarray(tmp_path, fmt):
    ds = cf_dataset()
    path = write(ds, tmp_path / ("d.zarr" if fmt.startswith("zarr") else "d.nc"), fmt)
    source = GriddedSource(path, "t2m", normalise=False)
    assert source.split_dim_ == "valid_time" and source.grid_dims_ == ("latitude", "longitude")
    crops = source.samples("val", 6, 8, seed=3).numpy()[:, 0]
    values = ds.t2m.values[source.blocks_["val"]]
    windows = np.lib.stride_tricks.sliding_window_view(values, (8, 8), axis=(1, 2))
    for crop in crops:  # each crop is a real window of a validation day
        assert np.isclose(windows, crop, atol=1e-5).all(axis=(-2, -1)).any()
    reference = GriddedSource(ds, "t2m", normalise=False).samples("val", 6, 8, seed=3).numpy()
    np.testing.assert_allclose(crops, reference[:, 0], atol=1e-5)


def test_packed_int16_is_decoded_like_xarray(tmp_path):
    ds = cf_dataset()
    ds["t2m"].encoding.update({"dtype": "int16", "scale_factor": 0.01, "add_offset": 280.0,
                               "_FillValue": np.int16(-32767)})
    ds["t2m"][3, 2:5, 2:5] = np.nan
    for fmt in ("netcdf4", "zarr3"):
        path = write(ds, tmp_path / f"packed_{fmt}{'.zarr' if fmt.startswith('zarr') else '.nc'}", fmt)
        opened = open_dataset(path)
        from scalelab.data.cf import RawArray

        raw = RawArray(opened, "t2m")
        assert raw._stored is not None  # the direct reader, not xarray's
        engine = {"netcdf4": "h5netcdf", "zarr3": "zarr"}[fmt]
        decoded = xr.open_dataset(path, engine=engine, **({"consolidated": False} if fmt == "zarr3" else {}))["t2m"].values[3, 0:8, 0:8]
        np.testing.assert_allclose(raw[3, 0:8, 0:8], decoded, atol=1e-4)
        assert np.isnan(raw[3, 2:5, 2:5]).all()


def test_cf_axes_from_attributes_not_names_and_cftime_calendars(tmp_path):
    rng = np.random.default_rng(0)
    time = xr.date_range("2001-02-25", periods=10, calendar="noleap", use_cftime=True)
    da = xr.DataArray(rng.random((12, 10, 9)), dims=("b", "when", "a"),
                      coords={"when": ("when", time, {"axis": "T"}),
                              "b": ("b", np.arange(12.0), {"standard_name": "latitude"}),
                              "a": ("a", np.arange(9.0), {"standard_name": "longitude"})},
                      name="v")
    axes = find_axes(da)
    assert (axes.time, axes.y, axes.x, axes.geographic) == ("when", "b", "a", True)
    path = tmp_path / "noleap.nc"
    da.to_dataset().to_netcdf(path, engine="h5netcdf")
    opened = open_dataset(path)
    assert opened.indexes["when"].calendar == "noleap"
    # a date split on a noleap calendar: 2001-02-28 is followed by 2001-03-01
    source = GriddedSource(path, "v", options={"split": {"train": ["2001-02-25", "2001-02-28"],
                                                         "val": ["2001-03-01", "2001-03-06"]}})
    assert source.blocks_["train"] == slice(0, 4) and source.blocks_["val"] == slice(4, 10)
    # the crops are (y, x) = (b, a) whatever the stored order
    assert source.samples("train", 2, 8).shape == (2, 1, 8, 8)


def test_date_splits_never_show_validation_days_in_training():
    ds = cf_dataset()
    split = {"train": ["2001-01-01", "2001-01-20"], "val": ["2001-01-26", "2001-02-02"],
             "test": ["2001-02-03", "2001-02-09"]}
    source = GriddedSource(ds, "t2m", options={"split": split, "transform": "none"})
    days = {name: np.round(source.samples(name, 64, 8, seed=1).numpy().mean((1, 2, 3)) - 270)
            for name in ("train", "val", "test")}
    assert set(days["train"]) <= set(range(0, 20)) and len(set(days["train"])) > 10
    assert set(days["val"]) <= set(range(25, 33)) and set(days["test"]) <= set(range(33, 40))
    # default: contiguous blocks 70/15/15 of the time axis
    default = GriddedSource(ds, "t2m")
    assert default.blocks_ == {"train": slice(0, 28), "val": slice(28, 34), "test": slice(34, 40)}


def test_zscore_statistics_come_from_the_training_period_only():
    ds = cf_dataset()
    split = {"train": ["2001-01-01", "2001-01-20"], "val": ["2001-01-21", "2001-02-09"]}
    source = GriddedSource(ds, "t2m", options={"split": split})
    train = ds.t2m.values[:20].astype(np.float64)
    assert source.mean_ == pytest.approx(train.mean(), rel=1e-12)
    assert source.std_ == pytest.approx(train.std(), rel=1e-9)
    hr = source.samples("val", 4, 8)
    physical = source.to_physical(hr.double())
    assert float(physical.mean()) > 290  # validation days are warmer than any training day
    # stats_fields: an evenly spaced subset of the training days (here 5 of 20)
    few = GriddedSource(ds, "t2m", options={"split": split, "stats_fields": 5})
    picked = np.unique(np.linspace(0, 19, 5).round()).astype(int)
    assert few.mean_ == pytest.approx(ds.t2m.values[picked].astype(float).mean(), rel=1e-12)


def test_log1p_and_none_transforms_and_their_inverse():
    ds = cf_dataset()
    source = GriddedSource(ds, "tp", options={"transform": "log1p"})
    crops = source.samples("train", 5, 8, seed=2).double()
    raw = GriddedSource(ds, "tp", options={"transform": "none"}).samples("train", 5, 8, seed=2)
    np.testing.assert_allclose(crops.numpy(), np.log1p(raw.double().numpy()), rtol=1e-6)
    np.testing.assert_allclose(source.to_physical(crops).numpy(), raw.numpy(), rtol=1e-5,
                               atol=1e-6)


def test_predictors_and_static_fields_are_input_channels(tmp_path):
    ds = cf_dataset()
    path = write(ds, tmp_path / "d.nc", "netcdf4")
    options = {"path": path, "variable": "t2m", "predictors": ["tp"], "static": ["orography"],
               "transform": {"t2m": "none", "tp": "log1p", "orography": "none"}}
    (lr, hr), _ = make_pairs("gridded", 6, 4, 8, 2, "block_mean", options=options)
    assert lr.shape == (6, 3, 4, 4) and hr.shape == (6, 1, 8, 8)
    # channel 0: the target's block mean; 1: the predictor's (log1p); 2: the static field's
    torch.testing.assert_close(lr[:, :1], torch.nn.functional.avg_pool2d(hr, 2))
    tp = GriddedSource(ds, "tp", options={"transform": "log1p"}).samples("train", 6, 8)
    torch.testing.assert_close(lr[:, 1:2], torch.nn.functional.avg_pool2d(tp, 2))
    orography = torch.from_numpy(ds.orography.values).double()
    windows = orography.unfold(0, 8, 1).unfold(1, 8, 1).reshape(-1, 1, 8, 8)
    coarse = torch.nn.functional.avg_pool2d(windows, 2)[:, 0]  # every 8 × 8 window, averaged
    for patch in lr[:, 2].double():
        assert torch.isclose(coarse, patch, atol=1e-3).all(-1).all(-1).any()


def nested_pair(tmp_path, scale=2, drop_odd_days=False):
    """A fine file and a coarse file on a nested grid: coarse = block means, coords = centres."""
    fine = cf_dataset(ny=16, nx=16)
    coarse = fine[["t2m", "tp"]].coarsen(latitude=scale, longitude=scale).mean()
    if drop_odd_days:
        coarse = coarse.isel(valid_time=slice(0, None, 2))
    coarse["t2m"] = coarse["t2m"] + 0.0  # its own file, its own grid
    fine_path = write(fine, tmp_path / "fine.nc", "netcdf4")
    coarse_path = write(coarse, tmp_path / "coarse.nc", "netcdf3")
    return fine, fine_path, coarse_path


def test_paired_coarse_source_on_a_nested_grid_gives_the_coarse_values(tmp_path):
    fine, fine_path, coarse_path = nested_pair(tmp_path)
    options = {"path": fine_path, "variable": "t2m", "predictors": ["tp"],
               "lr_path": coarse_path, "transform": "none"}
    (lr, hr), _ = make_pairs("gridded", 8, 4, 8, 2, options=options)
    assert lr.shape == (8, 2, 4, 4)
    # the grids nest, patches start at multiples of the scale: LR is exactly the block mean
    torch.testing.assert_close(lr[:, :1], torch.nn.functional.avg_pool2d(hr, 2), atol=1e-4,
                               rtol=0)


def test_paired_sources_are_aligned_in_time_and_must_cover_the_domain(tmp_path):
    fine, fine_path, coarse_path = nested_pair(tmp_path, drop_odd_days=True)
    options = {"path": fine_path, "variable": "t2m", "lr_path": coarse_path, "transform": "none"}
    layout = layout_for("gridded", options)
    for block in layout.blocks.values():  # only the days the coarse source has
        assert (block % 2 == 0).all()
    (lr, hr), _ = make_pairs("gridded", 8, 4, 8, 2, options=options)
    torch.testing.assert_close(lr, torch.nn.functional.avg_pool2d(hr, 2), atol=1e-4, rtol=0)
    # a coarse source on a smaller domain: refused when the spec loads
    small = xr.open_dataset(coarse_path).isel(latitude=slice(1, None)).load()
    small.to_netcdf(tmp_path / "small.nc", engine="scipy")
    with pytest.raises(SpecError, match="does not cover|coarse grid covers"):
        check_field_options("gridded", {**options, "lr_path": str(tmp_path / "small.nc")},
                            "spec.yaml", field_size=8, scale=2)
    later = xr.open_dataset(coarse_path).load()
    later["valid_time"] = later["valid_time"] + np.timedelta64(365, "D")
    later.to_netcdf(tmp_path / "later.nc", engine="scipy")
    with pytest.raises(SpecError, match="shares no time step"):
        check_field_options("gridded", {**options, "lr_path": str(tmp_path / "later.nc")},
                            "spec.yaml", field_size=8, scale=2)


def test_latitude_weights_are_band_areas():
    lat = np.linspace(90, -90, 181)
    weights = latitude_weights(lat)
    assert weights.mean() == pytest.approx(1.0)
    # bands of 1° centred on the rows: area ∝ sin(φ+½°) − sin(φ−½°) = 2 cos φ sin ½°
    expected = 2 * np.cos(np.radians(lat[1:-1])) * np.sin(np.radians(0.5))
    pole = 1 - np.cos(np.radians(0.5))  # the cap above 89.5°
    total = expected.sum() + 2 * pole
    np.testing.assert_allclose(weights[1:-1], expected / total * 181, rtol=1e-12)
    assert weights[0] == pytest.approx(pole / total * 181)


def test_metrics_are_physical_masked_and_latitude_weighted(tmp_path):
    ds = cf_dataset(global_grid=True, ny=19, nx=36)
    ds["t2m"][:, :4, :] = np.nan  # a masked cap
    path = write(ds, tmp_path / "g.nc", "netcdf4")
    data = make_run_data("gridded", 8, 6, 16, 4, options={"path": path, "variable": "t2m"})
    _, hr = data.val
    assert data.masked and torch.isnan(hr).any() and not torch.isnan(data.val[0]).any()
    assert data.val_weights is not None and data.val_weights.shape == (6, 1, 16, 1)
    target = data.to_physical(hr.double())
    pred = target + torch.linspace(-1, 1, 16, dtype=torch.float64)[None, None, :, None]
    pred = torch.where(torch.isnan(pred), torch.zeros_like(pred), pred)
    row = fieldmetrics.deterministic_metrics(pred, target, 10.0, weights=data.val_weights)
    valid = ~torch.isnan(target)
    w = (data.val_weights.expand_as(target) * valid).numpy()
    err = np.nan_to_num((pred - target).numpy())
    assert row["val_mse"] == pytest.approx((w * err**2).sum() / w.sum(), rel=1e-12)
    assert row["val_mae"] == pytest.approx((w * np.abs(err)).sum() / w.sum(), rel=1e-12)
    assert row["val_psnr"] == pytest.approx(10 * math.log10(100 / row["val_mse"]))
    q = np.quantile(pred[valid].numpy(), 0.99)
    assert row["val_p99_bias"] == pytest.approx(
        (q - np.quantile(target[valid].numpy(), 0.99)) / abs(np.quantile(target[valid].numpy(), 0.99)))
    # no mask and no weights: exactly the plain metrics
    clean = torch.randn(3, 1, 16, 16, dtype=torch.float64)
    assert fieldmetrics.deterministic_metrics(clean + 0.1, clean, 4.0) == \
        metrics.deterministic_metrics(clean + 0.1, clean, 4.0)


def test_masked_pixels_add_nothing_to_the_loss():
    target = torch.tensor([[[[1.0, float("nan")], [3.0, 4.0]]]])
    pred = torch.tensor([[[[2.0, 100.0], [3.0, 4.0]]]])
    filled_pred, filled_target = fieldmetrics.fill_masked(pred, target)
    assert float(((filled_pred - filled_target) ** 2).sum()) == 1.0
    ens = pred.unsqueeze(1).repeat(1, 3, 1, 1, 1)
    filled_ens, _ = fieldmetrics.fill_masked(ens, target)
    assert torch.isfinite(filled_ens).all() and float(filled_ens[0, 2, 0, 0, 1]) == 0.0


def test_nan_policies_skip_and_error(tmp_path):
    ds = cf_dataset()
    ds["t2m"][:, :8, :] = np.nan  # the northern half is missing everywhere
    source = GriddedSource(ds, "t2m", options={"nan": "skip"})
    crops = source.samples("train", 10, 8)
    assert torch.isfinite(crops).all()
    with pytest.raises(ScalelabError, match="has missing values; set options.nan to mask"):
        GriddedSource(ds, "t2m", options={"nan": "error"}).samples("train", 10, 8)
    with pytest.raises(ScalelabError, match="without missing values at field_size 12"):
        source.samples("train", 2, 12)  # no 12-row patch fits in the 8 valid rows
    ds["t2m"][:] = np.nan
    path = write(ds.drop_vars("orography"), tmp_path / "allnan.nc", "netcdf4")
    with pytest.raises(ScalelabError, match="no finite value in the train split"):
        make_pairs("gridded", 2, 2, 8, 2, options={"path": path, "variable": "t2m",
                                                   "nan": "skip"})


def test_images_photos_and_lfw_faces():
    (lr, hr), (lr_val, hr_val) = make_pairs("photos", 6, 4, 64, 4, "bicubic",
                                            options={"color": True})
    assert lr.shape == (6, 3, 16, 16) and hr.shape == (6, 3, 64, 64)
    from scalelab.data.pairs import _source

    photos = _source("photos", {"color": True})
    physical = photos.to_physical(hr_val.double())
    assert float(physical.min()) >= -1e-6 and float(physical.max()) <= 1 + 1e-6
    from skimage import data as images

    chelsea, coffee = images.chelsea() / 255.0, images.coffee() / 255.0
    def found_in(crop, image):  # positions matching the corner pixel, then the whole crop
        for y, x in zip(*np.nonzero(np.isclose(image[:-63, :-63], crop[0, 0], atol=1e-5).all(-1))):
            if np.allclose(image[y:y + 64, x:x + 64], crop, atol=1e-5):
                return True
        return False

    for crop in physical.numpy():  # every validation crop comes from a validation photo
        crop = np.moveaxis(crop, 0, -1)
        assert found_in(crop, chelsea) or found_in(crop, coffee)
    lr_faces, hr_faces = make_test_pairs("faces", 5, 24, 4)
    assert hr_faces.shape == (5, 1, 24, 24) and lr_faces.shape == (5, 1, 6, 6)
    with pytest.raises(SpecError, match="larger than the smallest faces image"):
        check_field_options("faces", {}, "spec.yaml", field_size=32, scale=4)


def test_example_data_is_cf_compliant_and_the_same_in_netcdf_and_zarr(tmp_path):
    from scalelab.cli import main

    assert main(["example-data", "era5-like", str(tmp_path), "--days", "40",
                 "--resolution", "10"]) == 0
    nc = xr.open_dataset(tmp_path / "era5_like.nc", engine="h5netcdf")
    zr = xr.open_zarr(tmp_path / "era5_like.zarr", consolidated=False)
    with open(tmp_path / "era5_like.nc", "rb") as handle:
        assert handle.read(8) == b"\x89HDF\r\n\x1a\n"  # netCDF-4/HDF5
    assert dict(nc.sizes) == {"valid_time": 40, "latitude": 19, "longitude": 36}
    assert nc["valid_time"].attrs["standard_name"] == "time"
    assert nc["latitude"].attrs["units"] == "degrees_north"
    assert nc["t2m"].encoding["dtype"] == np.int16 and nc["t2m"].attrs["units"] == "K"
    assert nc["orography"].dims == ("latitude", "longitude")
    assert (nc["tp"].values >= 0).all() and 200 < float(nc["t2m"].mean()) < 300
    np.testing.assert_allclose(nc["t2m"].values, zr["t2m"].values)
    layout = layout_for("gridded", {"path": str(tmp_path / "era5_like.zarr"), "variable": "t2m"})
    assert layout.split_dim == "valid_time" and layout.lat_weighted


def test_every_spec_error_is_one_sentence_before_any_run(tmp_path):
    ds = cf_dataset()
    path = write(ds, tmp_path / "d.nc", "netcdf4")
    good = {"path": path, "variable": "t2m"}
    (tmp_path / "junk.nc").write_text("not a netCDF file")
    cases = [
        ({**good, "path": str(tmp_path / "missing.nc")}, "does not exist"),
        ({**good, "path": str(tmp_path / "junk.nc")}, "neither a netCDF-3 nor a netCDF-4"),
        ({**good, "variable": "tas"}, "no variable 'tas'; valid choices are t2m, tp, orography"),
        ({**good, "predictors": ["u10"]}, "options.predictors: the dataset has no variable 'u10'"),
        ({**good, "static": ["tp"]}, "a static field needs exactly the grid"),
        ({**good, "transform": {"t2m": "sqrt"}}, "options.transform.t2m must be one of"),
        ({**good, "transform": {"u10": "log1p"}}, "options.transform names 'u10'"),
        ({**good, "split": {"train": ["2001-01-01", "2001-01-20"],
                            "val": ["2001-01-15", "2001-01-30"]}}, "periods overlap"),
        ({**good, "split": {"train": ["1990-01-01", "1990-12-31"],
                            "val": ["2001-01-15", "2001-01-30"]}}, "holds no time step"),
        ({**good, "split": {"train": 0.8}}, "needs a 'val' entry"),
        ({**good, "nan": "drop"}, "options.nan must be one of mask, skip, error"),
        ({**good, "lr_path": path, "predictors": []}, None),  # the same grid: fine
    ]
    for options, message in cases:
        if message is None:
            check_field_options("gridded", options, "spec.yaml", field_size=8, scale=2)
            continue
        with pytest.raises(SpecError, match=message) as err:
            check_field_options("gridded", options, "spec.yaml", field_size=8, scale=2)
        text = str(err.value)
        assert text.startswith("spec.yaml: ") and text.count(". ") == 0 and "\n" not in text
    with pytest.raises(SpecError, match=r"field_size 32 is larger than the grid \(16 × 24\)"):
        check_field_options("gridded", good, "spec.yaml", field_size=32, scale=4)
    split_x = {"path": path, "variable": "t2m", "split_dim": "longitude"}
    with pytest.raises(SpecError, match="larger than the train block"):
        check_field_options("gridded", split_x, "spec.yaml", field_size=20, scale=4)
    undated = xr.Dataset({"z": (("y", "x"), np.zeros((8, 8)))})
    with pytest.raises(ScalelabError, match="has no time axis to split"):
        GriddedSource(undated, "z", options={"split": {"train": ["2001-01-01", "2001-01-02"],
                                                       "val": ["2001-01-03", "2001-01-04"]}})


@pytest.mark.parametrize("package, fmt", [("h5py", "netcdf4"), ("zarr", "zarr3")])
def test_a_missing_reader_gives_a_one_sentence_hint(tmp_path, monkeypatch, package, fmt):
    path = write(cf_dataset(), tmp_path / ("d.zarr" if fmt.startswith("zarr") else "d.nc"), fmt)
    monkeypatch.setitem(sys.modules, package, None)  # import fails as if not installed
    with pytest.raises(ScalelabError, match=f"needs the package {package}.*pip install {package}"):
        open_dataset(path)


def test_a_run_trains_on_predictors_and_static_fields_with_physical_metrics(tmp_path):
    from scalelab.config import RunConfig
    from scalelab.train import train

    ds = cf_dataset(days=30, global_grid=True, ny=19, nx=36)
    path = write(ds, tmp_path / "g.zarr", "zarr3")
    cfg = RunConfig(field="gridded", field_size=16, scale=4, width=4, depth=1, samples=32,
                    val_samples=16, batch_size=8, steps=4, eval_every=2, device="cpu",
                    options={"path": path, "variable": "t2m", "predictors": ["tp"],
                             "static": ["orography"], "transform": {"tp": "log1p"}})
    result = train(cfg)
    assert result.status == "finished" and [r["step"] for r in result.rows] == [0, 2, 4]
    last = result.rows[-1]
    assert math.isfinite(last["val_rmse"]) and last["val_rmse"] > 0
    # the model takes 3 input channels (t2m, tp, orography): its head has 3 × 9 × width weights
    from scalelab.sweep import parse_spec
    from scalelab.sweep.plan import plan_sweep

    spec = parse_spec({"parameters": {k: {"value": v} for k, v in cfg.to_dict().items()},
                       "scalelab": {"store": str(tmp_path / "runs.db")}})
    assert int(plan_sweep(spec)["params"].iloc[0]) == result.info["params"]


def test_an_xarray_dataset_is_a_source_in_the_api_as_options_path(tmp_path):
    """``options={"path": ds}`` failed with "File name too long" (the Dataset's repr taken
    for a path): a Dataset in memory gives the patches its netCDF file gives."""
    from scalelab.config import RunConfig
    from scalelab.train import train

    fine = cf_dataset(ny=16, nx=16)
    coarse = fine[["t2m", "tp"]].coarsen(latitude=2, longitude=2).mean()
    fine_path = write(fine, tmp_path / "fine.nc", "netcdf4")
    coarse_path = write(coarse, tmp_path / "coarse.nc", "netcdf3")
    keys = {"variable": "t2m", "predictors": ["tp"], "transform": "none"}
    from_file = make_pairs("gridded", 8, 4, 8, 2, options={"path": fine_path, **keys})
    from_memory = make_pairs("gridded", 8, 4, 8, 2, options={"path": fine, **keys})
    for a, b in zip(sum(from_file, ()), sum(from_memory, ())):
        torch.testing.assert_close(a, b)
    # a paired coarse source in memory too
    paired = {"path": fine_path, "lr_path": coarse_path, **keys}
    (lr_file, _), _ = make_pairs("gridded", 8, 4, 8, 2, options=paired)
    (lr_mem, _), _ = make_pairs("gridded", 8, 4, 8, 2,
                                options={**paired, "path": fine, "lr_path": coarse})
    torch.testing.assert_close(lr_mem, lr_file)
    # GriddedSource(options=...) as GriddedSource(ds, ...); z-scored on the training days
    source = GriddedSource(options={"path": fine, "variable": "t2m"})
    train_days = fine.t2m.values[source.blocks_["train"]]
    assert source.mean_ == pytest.approx(float(train_days.mean()), rel=1e-6)
    np.testing.assert_allclose(source.samples("val", 4, 8, seed=1).numpy(),
                               GriddedSource(fine, "t2m").samples("val", 4, 8, seed=1).numpy())
    # a run in the API, checked and trained on the Dataset
    cfg = RunConfig(field="gridded", field_size=8, scale=2, width=4, depth=1, samples=8,
                    val_samples=4, batch_size=4, steps=2, eval_every=2, device="cpu",
                    options={"path": fine, "variable": "t2m"})
    assert train(cfg).status == "finished"
    # what is not a source: one sentence each
    with pytest.raises(ScalelabError, match=r"^options.path takes a path or an xarray Dataset, "
                                            r"got a DataArray; give da.to_dataset\(\)"):
        make_pairs("gridded", 8, 4, 8, 2, options={"path": fine.t2m, "variable": "t2m"})
    with pytest.raises(ScalelabError, match=r"^options.lr_path must be a path \(a string\) or "
                                            r"an xarray Dataset, got int\.$"):
        GriddedSource(fine, "t2m", options={"lr_path": 3})
