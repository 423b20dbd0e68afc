"""Geographic shift: region boxes on the grid (closed form, dateline and seam included), the
shifted regions' metrics recorded and equal to those computed on the region's own fields."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from scalelab._errors import ScalelabError, SpecError
from scalelab.data import GriddedSource
from scalelab.data.options import check_field_options
from scalelab.data.regions import resolve_region


def coded_grid(lon0=0.0, days=12, ny=19, nx=36):
    """A global 10° grid whose t2m says where it is: 100·row + column (+ day / 1000)."""
    lat = 90.0 - 10.0 * np.arange(ny)
    lon = lon0 + 10.0 * np.arange(nx)
    code = 100.0 * np.arange(ny)[:, None] + np.arange(nx)[None, :]
    values = code[None] + np.arange(days)[:, None, None] / 1000.0
    return xr.Dataset(
        {"t2m": (("time", "lat", "lon"), values, {"units": "K"})},
        coords={"time": ("time", pd.date_range("2001-01-01", periods=days), {}),
                "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})})


def cells_of(box, lat, lon):
    """The closed form: rows whose latitude lies in the box; columns whose longitude lies
    east of lon_west by at most the box's width (mod 360), in eastward order."""
    lat0, lat1, w, e = box
    rows = [i for i, v in enumerate(lat) if lat0 <= v <= lat1]
    width = (e - w) % 360 or 360
    cols = sorted((j for j, v in enumerate(lon) if (v - w) % 360 <= width),
                  key=lambda j: (lon[j] - w) % 360)
    return rows, cols


@pytest.mark.parametrize("lon0", [0.0, -180.0])
@pytest.mark.parametrize("box, rows, cols", [
    # Europe-like, crossing Greenwich: on a 0…360 grid it wraps the grid's seam
    ((30, 70, -20, 40), range(2, 7), {0.0: [34, 35, 0, 1, 2, 3, 4],
                                      -180.0: list(range(16, 23))}),
    # the Pacific, crossing the dateline (160°E → 120°W): wraps the −180…180 grid's seam
    ((-20, 20, 160, -120), range(7, 12), {0.0: list(range(16, 25)),
                                          -180.0: [34, 35, 0, 1, 2, 3, 4, 5, 6]}),
    # the same box written in 0…360 longitudes
    ((-20, 20, 160, 240), range(7, 12), {0.0: list(range(16, 25)),
                                         -180.0: [34, 35, 0, 1, 2, 3, 4, 5, 6]}),
    # every longitude
    ((-30, 30, -180, 180), range(6, 13), {0.0: list(range(36)),
                                          -180.0: list(range(36))}),
])
def test_a_box_selects_the_cells_of_the_closed_form(lon0, box, rows, cols):
    ds = coded_grid(lon0)
    lat, lon = ds.lat.values, ds.lon.values
    expected_rows, expected_cols = cells_of(box, lat, lon)
    assert expected_rows == list(rows)
    want = cols[lon0]
    if len(want) == 36:
        assert sorted(expected_cols) == want
    else:
        assert expected_cols == want
    region = resolve_region("r", box, lat, lon, is_global=True)
    assert list(range(region.row_start, region.row_stop)) == expected_rows
    got = list(region.column_indices())
    assert (sorted(got) == sorted(want)) if len(want) == 36 else got == want
    # the patches a source draws in the region lie in it, contiguous, and cover all of it
    options = {"regions": {"train": "r"}, "region_boxes": {"r": list(box)},
               "transform": "none", "split": {"train": 0.6, "val": 0.4}}
    source = GriddedSource(ds, "t2m", options=options)
    size = 4
    patches = source.read("train", 300, size, seed=1).target[:, 0]
    seen_rows, seen_cols = set(), set()
    for patch in patches:
        code = np.floor(patch).astype(int)
        r, c = code // 100, code % 100
        assert (np.diff(r, axis=0) == 1).all() and (np.diff(r, axis=1) == 0).all()
        assert ((np.diff(c, axis=1) % 36) == 1).all() and (np.diff(c, axis=0) == 0).all()
        seen_rows |= set(r.ravel().tolist())
        seen_cols |= set(c.ravel().tolist())
    assert seen_rows == set(expected_rows)
    assert seen_cols == set(want)


def test_a_grid_with_rising_latitudes_gives_the_same_cells():
    ds = coded_grid(0.0).isel(lat=slice(None, None, -1))  # −90 … 90
    region = resolve_region("r", (30, 70, -20, 40), ds.lat.values, ds.lon.values, True)
    assert (region.row_start, region.row_stop) == (12, 17)  # latitudes 30, 40, …, 70
    source = GriddedSource(ds, "t2m", options={"regions": {"train": "r"},
                                               "region_boxes": {"r": [30, 70, -20, 40]},
                                               "transform": "none"})
    codes = np.floor(source.read("train", 100, 4, seed=2).target).astype(int)
    assert set((codes // 100).ravel().tolist()) == {2, 3, 4, 5, 6}  # the rows at 70…30°N


def test_regions_and_boxes_are_checked_in_one_sentence(tmp_path):
    ds = coded_grid(0.0)
    ds.lon.attrs["units"] = "degrees_east"
    path = str(tmp_path / "g.nc")
    ds.to_netcdf(path, engine="h5netcdf")
    regional = coded_grid(0.0).isel(lat=slice(3, 12), lon=slice(0, 12))  # 60…−20°N, 0…110°E
    regional_path = str(tmp_path / "r.nc")
    regional.to_netcdf(regional_path, engine="h5netcdf")
    base = {"path": path, "variable": "t2m"}
    cases = [
        ({**base, "regions": {"train": "atlantis"}}, "no region 'atlantis'; give its box"),
        ({**base, "regions": {"train": "europe", "eval": ["tropics", "tropics"]}},
         "names a region twice"),
        ({**base, "regions": {"training": "europe"}}, "must name the training region"),
        ({**base, "regions": {"train": "x"}, "region_boxes": {"x": [10, 0, 0, 20]}},
         "lat_south 10 must be below lat_north 0"),
        ({**base, "regions": {"train": "x"}, "region_boxes": {"x": [0, 10, 0]}},
         "must be four numbers"),
        ({**base, "regions": {"train": "x@y"}}, "must be a region name"),
        ({**base, "regions": {"train": "arctic"}},
         r"region 'arctic' \(lat 60…90, lon -180…180\) covers 4 × 36 grid cells, fewer than "
         r"field_size 8 a side; choose a larger box or field_size <= 4"),
        ({**base, "path": regional_path, "regions": {"train": "south_america"}},
         r"region 'south_america' .* holds no cell of the grid \(latitudes -20…60, "
         r"longitudes 0…110\); choose a box inside it"),
        ({**base, "path": regional_path, "regions": {"train": "x"},
          "region_boxes": {"x": [-20, 60, 100, 10]}}, "is not one block of the grid"),
    ]
    for options, message in cases:
        with pytest.raises(SpecError, match=message) as err:
            check_field_options("gridded", options, "spec.yaml", field_size=8, scale=2)
        text = str(err.value)
        assert text.startswith("spec.yaml: ") and text.count(". ") == 0 and "\n" not in text
    check_field_options("gridded", {**base, "regions": {"train": "europe", "eval": [
        "tropics", "pacific"]}}, "spec.yaml", field_size=4, scale=2)


def test_a_spec_metric_may_name_a_shifted_region(tmp_path):
    from scalelab.sweep import parse_spec

    ds = coded_grid(0.0)
    path = str(tmp_path / "g.nc")
    ds.to_netcdf(path, engine="h5netcdf")

    def spec(metric):
        return {"metric": {"name": metric},
                "parameters": {"field": {"value": "gridded"}, "field_size": {"value": 8},
                               "scale": {"value": 2},
                               "options": {"value": {
                                   "path": path, "variable": "t2m",
                                   "regions": {"train": "home", "eval": ["home", "wide"]},
                                   "region_boxes": {"home": [-60, 60, 0, 120],
                                                    "wide": [-60, 60, 150, -90]}}}},
                "scalelab": {"store": str(tmp_path / "runs.db")}}

    assert parse_spec(spec("val_rmse@wide")).metric.name == "val_rmse@wide"
    for name in ("val_rmse@pacific", "val_rmse@home"):  # home is the plain val_rmse
        with pytest.raises(SpecError, match=f"names region '{name[9:]}', which no run "
                                            "evaluates as a shifted region; choose one of wide"):
            parse_spec(spec(name))
    with pytest.raises(SpecError, match="metric.name 'val_rsme' is recorded by no run"):
        parse_spec(spec("val_rsme@wide"))


@pytest.fixture
def trained_shift_run(tmp_path):
    """A tiny run trained on one box, evaluated on another; its config, result and model."""
    from scalelab.config import RunConfig
    from scalelab.train import train
    from scalelab.train.checkpoint import load_checkpoint
    from scalelab.train.loop import make_model

    rng = np.random.default_rng(0)
    days, lat, lon = 10, 90.0 - 10.0 * np.arange(19), -180.0 + 10.0 * np.arange(36)
    values = 280 + 10 * rng.standard_normal((days, 19, 36)) + np.cos(np.radians(lat))[:, None]
    ds = xr.Dataset({"t2m": (("time", "lat", "lon"), values, {"units": "K"})},
                    coords={"time": pd.date_range("2001-01-01", periods=days),
                            "lat": ("lat", lat, {"units": "degrees_north"}),
                            "lon": ("lon", lon, {"units": "degrees_east"})})
    path = str(tmp_path / "g.nc")
    ds.to_netcdf(path, engine="h5netcdf")
    # the shifted box is exactly one 8 × 8 patch and crosses the dateline; val is one day
    box = [-35, 45, 150, -140]
    options = {"path": path, "variable": "t2m",
               "split": {"train": ["2001-01-01", "2001-01-09"], "val": ["2001-01-10",
                                                                        "2001-01-10"]},
               "regions": {"train": "home", "eval": ["home", "away"]},
               "region_boxes": {"home": [-40, 60, -30, 60], "away": box}}
    cfg = RunConfig(field="gridded", field_size=8, scale=2, width=4, depth=1, samples=16,
                    val_samples=3, batch_size=4, steps=4, eval_every=2, device="cpu",
                    checkpoint_every=2, options=options)
    result = train(cfg, checkpoint_dir=tmp_path / "ckpt")
    model = make_model(cfg)
    model.load_state_dict(load_checkpoint(tmp_path / "ckpt", cfg.run_id)["model"])
    return ds, box, cfg, result, model


def test_shifted_metrics_equal_those_computed_on_the_regions_fields(trained_shift_run):
    from scalelab.data.cf import latitude_weights

    ds, box, cfg, result, model = trained_shift_run
    last = result.rows[-1]
    shifted = sorted(k for k in last if "@" in k)
    assert "val_rmse@away" in shifted and "val_bicubic_rmse@away" in shifted
    assert not any(k.endswith("@home") for k in last)  # the training region keeps plain names
    assert all(set(k for k in row if "@" in k) == set(shifted) for row in result.rows)
    # the region's fields, found here from the coordinates alone
    lat, lon = ds.lat.values, ds.lon.values
    rows = (lat >= box[0]) & (lat <= box[1])
    cols = np.flatnonzero(((lon - box[2]) % 360) <= (box[3] - box[2]) % 360)
    cols = cols[np.argsort((lon[cols] - box[2]) % 360)]  # eastwards across the dateline
    assert rows.sum() == 8 and list(cols) == [33, 34, 35, 0, 1, 2, 3, 4]
    truth = ds.t2m.values[9][rows][:, cols]  # the one validation day
    train_values = ds.t2m.values[:9]
    mean, std = train_values.mean(), train_values.std()
    hr = torch.tensor((truth - mean) / std, dtype=torch.float32)[None, None].repeat(3, 1, 1, 1)
    lr = torch.nn.functional.avg_pool2d(hr, 2)
    with torch.no_grad():
        pred = model(lr).double() * std + mean
    err = (pred - torch.tensor(truth)[None, None]).numpy()
    w = latitude_weights(lat)[rows][None, None, :, None] * np.ones_like(err)
    mse = (w * err**2).sum() / w.sum()
    assert last["val_mse@away"] == pytest.approx(mse, rel=1e-5)
    assert last["val_rmse@away"] == pytest.approx(math.sqrt(mse), rel=1e-5)
    assert last["val_mae@away"] == pytest.approx((w * np.abs(err)).sum() / w.sum(), rel=1e-5)
    span = truth.max() - truth.min()
    assert last["val_psnr@away"] == pytest.approx(10 * math.log10(span**2 / mse), rel=1e-5)
    assert last["val_loss@away"] == pytest.approx(float(((pred - torch.tensor(truth))
                                                         / std).pow(2).mean()), rel=1e-4)
    assert last["val_rmse@away"] != pytest.approx(last["val_rmse"], rel=1e-3)


def test_a_source_refuses_a_region_it_does_not_name():
    ds = coded_grid(0.0)
    source = GriddedSource(ds, "t2m", options={"regions": {"train": "europe"},
                                               "split": {"train": 0.6, "val": 0.4}})
    with pytest.raises(ScalelabError, match="no region 'tropics' in options.regions"):
        source.read("val", 2, 4, region="tropics")
    plain = GriddedSource(ds, "t2m", options={"split": {"train": 0.6, "val": 0.4}})
    with pytest.raises(ScalelabError, match="options.regions names none"):
        plain.read("val", 2, 4, region="tropics")


@pytest.mark.slow
def test_the_shift_sweep_records_region_metrics_through_store_wandb_cli_and_report(
        example_data_cwd, monkeypatch, capsys):
    """sweeps/shift.yaml, shrunk, on the ERA5-like example: the region columns reach the
    store, the runs table, W&B's offline runs (read back equal), `scalelab predict --y`,
    `scalelab runs list --metric`, and the report's shift page."""
    import json as jsonlib
    from pathlib import Path

    import scalelab
    from scalelab.cli import main
    from scalelab.sweep import load_spec, run_sweep

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_SILENT", "true")
    spec_path = Path(__file__).resolve().parents[1] / "sweeps" / "shift.yaml"
    spec = load_spec(spec_path, assignments=[
        "field_size=8", "width=4,8", "samples=32", "val_samples=8", "steps=4",
        "eval_every=2", "batch_size=8"])
    assert spec.metric.name == "val_rmse"
    outcome = run_sweep(spec, progress=False, tracking=True)
    assert outcome.counts.get("finished") == 2, outcome.counts
    store = example_data_cwd / "reports" / "shift" / "runs.db"
    from_store = scalelab.load_runs(store)
    regions = ("north_america", "tropics", "pacific")
    for region in regions:
        assert from_store[f"val_rmse@{region}"].notna().all()
        assert from_store[f"val_bicubic_rmse@{region}"].notna().all()
    assert not [c for c in from_store.columns if c.endswith("@europe")]
    from_wandb = scalelab.load_runs(store.parent / "wandb")
    merged = from_store.merge(from_wandb, on=["run_id", "step"], suffixes=("", "_wandb"))
    assert len(merged) == len(from_store) == 6
    for region in regions:
        np.testing.assert_allclose(merged[f"val_rmse@{region}_wandb"],
                                   merged[f"val_rmse@{region}"], rtol=1e-12)
    capsys.readouterr()
    assert main(["predict", str(store), "--target", "params=1e5", "--y", "val_rmse@tropics",
                 "--json"]) == 0
    answer = jsonlib.loads(capsys.readouterr().out)
    assert answer[0]["y"] == "val_rmse@tropics" and math.isfinite(answer[0]["prediction"])
    assert main(["runs", "list", str(store), "--metric", "val_rmse@pacific"]) == 0
    assert "val_rmse@pacific" in capsys.readouterr().out
    from scalelab.report.context import ReportContext
    from scalelab.report.shift import page_shift

    (name, fig), = page_shift(ReportContext.build(from_store, spec=spec), None)
    fig.savefig(example_data_cwd / "shift.png", dpi=50)
    assert name == "shift_mse" and "Does scale close the gap?" in " ".join(
        t.get_text() for t in fig.texts)
