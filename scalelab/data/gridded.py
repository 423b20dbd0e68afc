"""Real gridded data through xarray: cut (time slices ×) patches of a variable into HR samples.

``GriddedSource(source, variable)`` takes a path (netCDF or zarr) or an xarray
Dataset/DataArray and a variable name. The last two dimensions of the variable are
the grid (y, x); every other dimension (time, level, member, ...) indexes fields.

Splits are deterministic and disjoint: the data are cut into three contiguous blocks
along ``split_dim`` — the time dimension if there is one (so validation and test lie
after training in time, with no leakage between neighbouring days), otherwise the x
dimension (so the three splits cover three separate regions). Sample ``i`` of a
split is a ``size × size`` crop at a position drawn from its own seed
``(seed, split, i)``, so the training set grows with D without changing the samples
already drawn, and the validation and test sets never change with D.

Normalisation statistics (mean, standard deviation) are computed on the training
block only (``mean_``, ``std_``) and applied to every split.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from scalelab._errors import ScalelabError
from scalelab.data.synthetic import _mix

EXAMPLES = Path(__file__).parent / "examples"
SPLITS = ("train", "val", "test")


def example_path(name: str = "jacksboro_dem.nc") -> Path:
    """Path of a real example shipped with scalelab (see ``scalelab/data/examples/README.md``)."""
    path = EXAMPLES / name
    if not path.exists():
        shipped = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".nc", ".zarr"))
        raise ScalelabError(f"no shipped example {name!r}; valid choices are {', '.join(shipped)}.")
    return path


def open_variable(source, variable: str | None):
    """The named variable of a path (netCDF/zarr) or xarray object, as a DataArray."""
    import xarray as xr

    if isinstance(source, xr.DataArray):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ScalelabError(f"gridded data file {str(path)!r} does not exist; give the path "
                                "of a netCDF file or zarr store.")
        if path.suffix == ".zarr" or path.is_dir():
            source = xr.open_zarr(path)
        else:
            source = xr.open_dataset(path)
    if not isinstance(source, xr.Dataset):
        raise ScalelabError(f"gridded data must be a path, an xarray Dataset or a DataArray, "
                            f"got {type(source).__name__}.")
    names = [str(v) for v in source.data_vars]
    if variable is None or variable not in source.data_vars:
        what = "no variable given" if variable is None else f"no variable {variable!r}"
        raise ScalelabError(f"the dataset has {what}; valid choices are {', '.join(names)}.")
    return source[variable]


class GriddedSource:
    """HR samples cut from a real gridded variable, with train-only normalisation.

    Parameters are stored as given; the data are read and the statistics computed on
    construction (``mean_``, ``std_``, ``split_dim_``, ``blocks_``).
    """

    def __init__(self, source, variable: str | None = None, *, split_dim: str | None = None,
                 fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
                 normalise: bool = True):
        self.variable = variable
        self.split_dim = split_dim
        self.fractions = tuple(float(f) for f in fractions)
        self.normalise = normalise
        data = open_variable(source, variable)
        if data.ndim < 2:
            raise ScalelabError(f"variable {data.name!r} has dimensions {data.dims}; it needs two "
                                "grid dimensions (y, x).")
        if len(self.fractions) != 3 or min(self.fractions) <= 0:
            raise ScalelabError(f"fractions must be three positive numbers (train, val, test), "
                                f"got {fractions!r}.")
        grid = tuple(str(d) for d in data.dims[-2:])
        others = tuple(str(d) for d in data.dims[:-2])
        if split_dim is None:
            split_dim = next((d for d in others if d.lower() in ("time", "t", "date")), grid[1])
        if split_dim not in data.dims:
            raise ScalelabError(f"split_dim {split_dim!r} is not a dimension of {data.name!r}; "
                                f"valid choices are {', '.join(map(str, data.dims))}.")
        # (fields, y, x) with the split dimension first among the field dimensions
        if split_dim in others:
            order = (split_dim, *[d for d in others if d != split_dim], *grid)
        else:
            order = (*others, *grid)
        values = np.asarray(data.transpose(*order).values, dtype=np.float64)
        if split_dim in others:
            values = values.reshape(values.shape[0], -1, *values.shape[-2:])
        else:
            values = values.reshape(1, -1, *values.shape[-2:])
        if not np.isfinite(values).all():
            raise ScalelabError(f"variable {data.name!r} has missing or non-finite values; fill them "
                                "first (e.g. ds[name].fillna(0)) or choose another variable.")
        self.split_dim_ = split_dim
        self.grid_dims_ = grid
        axis = 0 if split_dim in others else 3  # (split, fields, y, x) view
        length = values.shape[axis]
        bounds = np.round(np.cumsum((0.0, *self.fractions)) / sum(self.fractions) * length)
        bounds = bounds.astype(int)
        self.blocks_ = {name: slice(int(bounds[i]), int(bounds[i + 1]))
                        for i, name in enumerate(SPLITS)}
        self._axis = axis
        self._values = values
        train = self._block("train")
        if train.size == 0:
            raise ScalelabError(f"the training block along {split_dim!r} is empty; the data have only "
                                f"{length} entries there.")
        self.mean_ = float(train.mean()) if normalise else 0.0
        self.std_ = float(train.std()) if normalise else 1.0
        if self.std_ == 0.0:
            self.std_ = 1.0

    def _block(self, split: str) -> np.ndarray:
        index = [slice(None)] * 4
        index[self._axis] = self.blocks_[split]
        block = self._values[tuple(index)]
        return block.reshape(-1, *block.shape[-2:])  # (fields, y, x)

    def max_size(self, split: str = "train") -> int:
        """The largest square crop that fits in a split's block."""
        return int(min(self._block(split).shape[-2:]))

    def samples(self, split: str, n: int, size: int, seed: int = 0, start: int = 0,
                device="cpu", dtype=torch.float32) -> torch.Tensor:
        """``n`` normalised crops ``(n, 1, size, size)`` from one split (``train``/``val``/``test``)."""
        if split not in SPLITS:
            raise ScalelabError(f"unknown split {split!r}; valid choices are {', '.join(SPLITS)}.")
        block = self._block(split)
        fields, height, width = block.shape
        if size > height or size > width:
            raise ScalelabError(
                f"field_size {size} is larger than the {split} block ({height} × {width}) of "
                f"{self.variable!r}; choose field_size <= {min(height, width)}."
            )
        out = np.empty((n, 1, size, size), dtype=np.float64)
        stream = seed * 3 + SPLITS.index(split)
        for i in range(n):
            rng = np.random.default_rng(_mix(stream, start + i))
            f = rng.integers(fields)
            y0 = rng.integers(height - size + 1)
            x0 = rng.integers(width - size + 1)
            out[i, 0] = block[f, y0:y0 + size, x0:x0 + size]
        out = (out - self.mean_) / self.std_
        return torch.from_numpy(out).to(device=device, dtype=dtype)
