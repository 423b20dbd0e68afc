"""An ERA5-like example dataset, written by ``scalelab example-data era5-like DIR``.

Synthetic but with the structure of the ERA5 files users download from the Copernicus
Climate Data Store (Hersbach et al. 2020, QJRMS 146, "The ERA5 global reanalysis"):
dimensions ``valid_time × latitude × longitude`` on a regular global grid (latitudes
from 90 to −90, longitudes from 0 eastwards), ``valid_time`` in ``seconds since
1970-01-01`` (proleptic Gregorian), CF attributes (``standard_name``, ``units``,
``axis``), variables packed as 16-bit integers with ``scale_factor``/``add_offset``
and compressed, one chunk per day:

- ``t2m`` (K, ``air_temperature`` at 2 m): a climatology that falls with latitude,
  a seasonal cycle of opposite sign in the two hemispheres and twice as strong over
  land, a lapse rate of 6.5 K km⁻¹ over the orography, and weather: red-noise
  anomalies (lag-1 correlation 0.8 from day to day) with a k⁻³ spectrum, larger at
  high latitudes;
- ``tp`` (mm per day, ``lwe_thickness_of_precipitation_amount``): intermittent and
  heavy-tailed — a censored log-normal field (Bárdossy & Plate 1992) whose wet
  fraction and intensity peak in a seasonally migrating ITCZ and the mid-latitude
  storm tracks;
- ``orography`` (m, ``surface_altitude``, static: ``latitude × longitude``): mountains on
  continents that cover about 30 % of the globe, 0 over the sea.

Files: ``era5_like.nc`` (netCDF-4/HDF5), ``era5_like.zarr`` (the same data as a zarr
store, format 3; format 2 with zarr 2) and ``era5_like_coarse.nc`` (``t2m`` and ``tp`` block-averaged 4 × 4
onto a coarse global grid with its own pole rows — a paired coarse source for
``options.lr_path``). Deterministic for a given ``seed``.
"""

from __future__ import annotations

import os

from pathlib import Path

import numpy as np

from scalelab._errors import ScalelabError


def _grf(rng, shape, slope: float) -> np.ndarray:
    """Standardised Gaussian random fields with spectrum ∝ k^−slope over the last two axes."""
    ny, nx = shape[-2:]
    ky = np.fft.fftfreq(ny) * ny
    kx = np.fft.rfftfreq(nx) * nx
    k = np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)
    k[0, 0] = 1.0
    amp = k ** (-(slope + 1.0) / 2.0)
    amp[0, 0] = 0.0
    noise = rng.standard_normal(shape)
    field = np.fft.irfft2(np.fft.rfft2(noise) * amp, s=(ny, nx))
    field -= field.mean(axis=(-2, -1), keepdims=True)
    return field / field.std(axis=(-2, -1), keepdims=True)


def _red_noise(rng, days: int, shape, slope: float, lag1: float) -> np.ndarray:
    fields = _grf(rng, (days, *shape), slope)
    out = np.empty_like(fields)
    out[0] = fields[0]
    innovation = np.sqrt(1.0 - lag1**2)
    for t in range(1, days):
        out[t] = lag1 * out[t - 1] + innovation * fields[t]
    return out


def _bytes_needed(days: int, resolution: float) -> float:
    """About what the example holds in memory: its fields in float64 and their temporaries."""
    cells = (round(180 / resolution) + 1) * round(360 / resolution)
    return float(days) * cells * 8 * 8


def era5_like_dataset(start: str = "2018-01-01", days: int = 1096, resolution: float = 2.5,
                      seed: int = 0):
    """The fine dataset as an xarray Dataset (decoded values, CF attributes, packing encodings)."""
    import pandas as pd
    import xarray as xr
    from scipy.special import ndtri

    if not 0 < resolution <= 10 or (180 / resolution) % 1 or (360 / resolution) % 1:
        raise ScalelabError(f"resolution must divide 180 degrees (e.g. 1, 2.5, 5), got {resolution}.")
    if days < 30:
        raise ScalelabError(f"days must be at least 30, got {days}.")
    need = _bytes_needed(days, resolution)
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        have = None
    if have and need > have / 2:
        raise ScalelabError(f"{days} days at {resolution}° need about {need / 1e9:.3g} GB in "
                            f"memory to write, more than half of this machine's "
                            f"{have / 1e9:.3g} GB; give fewer --days or a coarser --resolution.")
    rng = np.random.default_rng(seed)
    lat = np.linspace(90.0, -90.0, int(round(180 / resolution)) + 1)
    lon = np.arange(0.0, 360.0, resolution)
    shape = (lat.size, lon.size)
    time = pd.date_range(start, periods=days, freq="D")
    doy = time.day_of_year.to_numpy(dtype=np.float64)[:, None, None]
    phi = np.radians(lat)[:, None]

    # land and orography
    continents = _grf(rng, shape, 4.0)
    land = continents > np.quantile(continents, 0.70)
    relief = np.abs(_grf(rng, shape, 2.5))
    orography = np.where(land, (continents - np.quantile(continents, 0.70)) * 1500.0
                         + relief * 400.0, 0.0)
    orography = np.clip(orography, 0.0, 6000.0)

    # 2 m temperature
    season = np.cos(2 * np.pi * (doy - 196.0) / 365.25)
    amplitude = 14.0 * np.sin(phi) * np.where(land, 2.0, 1.0)
    climatology = 300.0 - 45.0 * np.sin(phi) ** 2 + amplitude * season - 6.5e-3 * orography
    anomalies = _red_noise(rng, days, shape, 3.0, 0.8) * (2.0 + 4.0 * np.abs(np.sin(phi)))
    t2m = climatology + anomalies

    # total precipitation
    lat_deg = lat[None, :, None]
    itcz = 8.0 * np.sin(2 * np.pi * (doy - 105.0) / 365.25)
    tropics = np.exp(-(((lat_deg - itcz) / 12.0) ** 2))
    storms = np.exp(-(((np.abs(lat_deg) - 50.0) / 10.0) ** 2))
    wet_fraction = np.clip(0.2 + 0.45 * tropics + 0.3 * storms, 0.05, 0.95)
    intensity = 3.0 * (1.0 + 2.0 * tropics + 0.5 * storms)
    g = _red_noise(rng, days, shape, 3.0, 0.5)
    sigma = 1.0
    z = ndtri(1.0 - wet_fraction)
    tp = intensity * np.clip(np.exp(sigma * g) - np.exp(sigma * z), 0.0, None)

    coords = {
        "valid_time": ("valid_time", time, {"standard_name": "time", "long_name": "time",
                                            "axis": "T"}),
        "latitude": ("latitude", lat, {"standard_name": "latitude", "long_name": "latitude",
                                       "units": "degrees_north", "axis": "Y"}),
        "longitude": ("longitude", lon, {"standard_name": "longitude", "long_name": "longitude",
                                         "units": "degrees_east", "axis": "X"}),
    }
    dims = ("valid_time", "latitude", "longitude")
    ds = xr.Dataset(
        {
            "t2m": (dims, t2m.astype(np.float32), {
                "standard_name": "air_temperature", "long_name": "2 metre temperature",
                "units": "K"}),
            "tp": (dims, tp.astype(np.float32), {
                "standard_name": "lwe_thickness_of_precipitation_amount",
                "long_name": "Total precipitation (daily)", "units": "mm"}),
            "orography": (("latitude", "longitude"), orography.astype(np.float32), {
                "standard_name": "surface_altitude", "long_name": "Orography", "units": "m"}),
        },
        coords=coords,
        attrs={"Conventions": "CF-1.7",
               "title": "ERA5-like synthetic reanalysis (scalelab example data)",
               "source": f"scalelab.data.era5like, seed {seed}",
               "institution": "scalelab (synthetic, not ECMWF data)"},
    )
    ds["valid_time"].encoding.update({"units": "seconds since 1970-01-01",
                                      "calendar": "proleptic_gregorian", "dtype": "int64"})
    for name, offset, scale in (("t2m", 265.0, 0.0025), ("tp", 0.0, 0.01),
                                ("orography", 0.0, 0.5)):
        ds[name].encoding.update({"dtype": "int16", "add_offset": offset, "scale_factor": scale,
                                  "_FillValue": np.int16(-32767)})
    return ds


def coarsen(ds, factor: int = 4):
    """``t2m`` and ``tp`` block-averaged ``factor × factor`` onto a coarse grid with pole rows.

    The coarse rows are at 90°, 90° − factor·Δ, …, −90°: each is the mean of the fine rows
    within half a coarse cell (pole rows: the cap), the columns the mean of ``factor``
    fine columns centred on the coarse longitude (wrapping round the globe).
    """
    import xarray as xr

    lat, lon = ds["latitude"].values, ds["longitude"].values
    step = abs(lat[1] - lat[0]) * factor
    coarse_lat = np.arange(90.0, -90.0 - step / 2, -step)
    coarse_lon = lon[::factor]
    out = {}
    for name in ("t2m", "tp"):
        values = ds[name].values.astype(np.float64)
        # columns: centred means, wrapping round
        half = factor // 2
        shifted = np.stack([np.roll(values, half - j, axis=-1) for j in range(factor)])
        columns = shifted.mean(0)[..., ::factor]
        rows = []
        for c in coarse_lat:
            near = np.abs(lat - c) <= step / 2 + 1e-9
            rows.append(columns[:, near, :].mean(axis=1))
        out[name] = (("valid_time", "latitude", "longitude"),
                     np.stack(rows, axis=1).astype(np.float32), dict(ds[name].attrs))
    coarse = xr.Dataset(out, coords={"valid_time": ds["valid_time"],
                                     "latitude": ("latitude", coarse_lat,
                                                  dict(ds["latitude"].attrs)),
                                     "longitude": ("longitude", coarse_lon,
                                                   dict(ds["longitude"].attrs))},
                        attrs={**ds.attrs, "title": ds.attrs["title"] + f", coarsened {factor}x"})
    coarse["valid_time"].encoding.update(ds["valid_time"].encoding)
    return coarse


def write_era5_like(directory, start: str = "2018-01-01", days: int = 1096,
                    resolution: float = 2.5, seed: int = 0) -> dict:
    """Write ``era5_like.nc``, ``era5_like.zarr`` and ``era5_like_coarse.nc`` into ``directory``."""
    directory = Path(directory)
    ds = era5_like_dataset(start, days, resolution, seed)  # checked before any folder is made
    directory.mkdir(parents=True, exist_ok=True)
    chunks = (1, ds.sizes["latitude"], ds.sizes["longitude"])
    paths = {"netcdf": directory / "era5_like.nc", "zarr": directory / "era5_like.zarr",
             "coarse": directory / "era5_like_coarse.nc"}
    encoding = {name: {**ds[name].encoding, "zlib": True, "complevel": 4, "shuffle": True,
                       "chunksizes": chunks if ds[name].ndim == 3 else chunks[1:]}
                for name in ds.data_vars}
    ds.to_netcdf(paths["netcdf"], engine="h5netcdf", encoding=encoding)
    import zarr

    zarr_encoding = {name: {**ds[name].encoding,
                            "chunks": chunks if ds[name].ndim == 3 else chunks[1:]}
                     for name in ds.data_vars}
    if int(zarr.__version__.split(".")[0]) >= 3:
        from zarr.codecs import BloscCodec

        for values in zarr_encoding.values():
            values["compressors"] = (BloscCodec(cname="zstd", clevel=5, shuffle="shuffle"),)
        ds.to_zarr(paths["zarr"], mode="w", zarr_format=3, encoding=zarr_encoding,
                   consolidated=False)
    else:  # zarr 2 (Python 3.10) writes format 2
        ds.to_zarr(paths["zarr"], mode="w", encoding=zarr_encoding)
    coarse = coarsen(ds)
    coarse.to_netcdf(paths["coarse"], engine="h5netcdf",
                     encoding={name: {"zlib": True, "complevel": 4} for name in coarse.data_vars})
    return paths
