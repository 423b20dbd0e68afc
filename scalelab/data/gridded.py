"""Real gridded data through xarray: lazy patches of a target, its predictors and static fields.

``GriddedSource(source, variable)`` takes a path (netCDF-3, netCDF-4/HDF5, zarr v2/v3)
or an xarray Dataset/DataArray and a variable name; ``options`` (see ``docs/data.md``)
add predictors, static fields, a paired coarse source, transforms, date splits and
the handling of missing values. Time, latitude and longitude are found from CF
metadata (:mod:`scalelab.data.cf`); the splits and the checks come from
:mod:`scalelab.data.options`.

Lazy reads: the files stay open lazily; a sample is a ``size × size`` patch at a
field (time step, level, ...) and position drawn from its own seed ``(seed, split,
i)``, and only that patch is read (the netCDF hyperslab or the zarr chunks it
touches). The memory of a run therefore grows with the samples it uses, not with
the file. Sample ``i`` never depends on how many are drawn, so the training set
grows with D without changing the samples already drawn, and the validation and test
sets never change with D.

Transforms (per variable): ``zscore`` — (x − μ)/σ with μ, σ over the training block
only (at most ``stats_fields`` fields of it, evenly spaced, streamed in slabs of at
most 32 MiB); ``log1p`` — log(1 + max(x, 0)) (precipitation; Rasp & Thuerey
2021 and ClimateLearn, Nguyen et al. 2023, use the same); ``none``. Metrics are
computed after the inverse transform, in the variable's physical units
(:meth:`GriddedSource.to_physical`).

Low resolution: made from the HR patch by a degradation operator (as for synthetic
fields), or — with ``lr_path`` — read from a coarse source on its own grid, matched
in time by the time coordinate's values and bilinearly interpolated at the centres
of the fine ``scale × scale`` blocks (exactly the coarse values when the grids nest;
patches then start at multiples of ``scale``). Predictors are extra LR channels,
degraded or read from the coarse source like the target; static fields (e.g.
orography) are read once, block-averaged to the LR grid (conservative, Jones 1999)
and appended as the last input channels.

Missing values (``nan``): ``mask`` keeps NaN in the HR target, where losses and
metrics ignore it (inputs get 0, the training mean after ``zscore``); ``skip`` draws
another patch (up to 100 draws per sample) until one has no missing value;
``error`` stops at the first patch with one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from scalelab._errors import ScalelabError
from scalelab.data.options import CHECK_FIELDS, check_target_values  # noqa: F401
from scalelab.data.options import (  # noqa: F401 - example_path: re-exported
    DEFAULT_FRACTIONS, EXAMPLES, SPLITS, DataOptions, Layout, build_layout, coarse_positions,
    example_path, parse_options,
)

MAX_DRAWS = 100  # draws per sample before ``nan: skip`` gives up


def _mix(seed: int, index: int) -> int:
    from scalelab.data.synthetic import _mix as mix  # one definition of the seed mixer

    return mix(seed, index)


def open_variable(source, variable: str | None):
    """The named variable of a path (netCDF/zarr) or xarray object, as a DataArray."""
    import xarray as xr

    if isinstance(source, xr.DataArray):
        return source
    if isinstance(source, (str, os.PathLike)):
        from scalelab.data.cf import open_dataset

        source = open_dataset(source)
    if not isinstance(source, xr.Dataset):
        raise ScalelabError(f"gridded data must be a path, an xarray Dataset or a DataArray, "
                            f"got {type(source).__name__}.")
    names = [str(v) for v in source.data_vars]
    if variable is None or variable not in source.data_vars:
        what = "no variable given" if variable is None else f"no variable {variable!r}"
        raise ScalelabError(f"the dataset has {what}; valid choices are {', '.join(names)}.")
    return source[variable]


@dataclass
class Patches:
    """What one split's samples hold, as float32 numpy arrays, all already transformed.

    ``target`` ``(n, C, S, S)`` (NaN where missing, ``nan: mask``); ``predictors``
    ``(n, P, S, S)`` HR predictors to degrade (None with a coarse source or none);
    ``lr`` ``(n, C + P, S/s, S/s)`` from the coarse source (None without one);
    ``static`` ``(n, K, S, S)`` HR static fields (None without); ``weights`` ``(n, S)``
    latitude weights of the rows (None: unweighted).
    """

    target: np.ndarray
    predictors: np.ndarray | None = None
    lr: np.ndarray | None = None
    static: np.ndarray | None = None
    weights: np.ndarray | None = None


def forward_transform(values: np.ndarray, transform: str, stats=(0.0, 1.0)) -> np.ndarray:
    """Physical values → model space (``zscore`` with ``stats = (mean, std)``, ``log1p``, ``none``)."""
    values = np.asarray(values, dtype=np.float64)
    if transform == "zscore":
        return (values - stats[0]) / stats[1]
    if transform == "log1p":
        return np.log1p(np.maximum(values, 0.0))
    return values


def inverse_transform(x, transform: str, stats=(0.0, 1.0)):
    """Model space → physical values; numpy arrays or torch tensors."""
    if transform == "zscore":
        return x * stats[1] + stats[0]
    if transform == "log1p":
        return x.expm1() if hasattr(x, "expm1") else np.expm1(x)
    return x


class GriddedSource:
    """Samples of real gridded data: lazy patches, train-only statistics, disjoint splits.

    ``source``: a path, an xarray Dataset or DataArray; ``variable``: the target;
    ``options``: the spec's data keys (``predictors``, ``static``, ``lr_path``,
    ``transform``, ``split``, ``nan``, ...). ``split_dim``, ``fractions`` and
    ``normalise`` are shorthands for ``options.split_dim``, ``options.split`` and
    ``options.transform`` (``zscore`` or ``none``). What is learned on construction
    ends with an underscore: ``stats_`` (mean, std of each z-scored variable over the
    training block), ``mean_``/``std_`` (the target's), ``split_dim_``, ``blocks_``.
    """

    def __init__(self, source=None, variable: str | None = None, *, split_dim: str | None = None,
                 fractions: tuple[float, float, float] | None = None, normalise: bool = True,
                 options: dict | None = None, layout: Layout | None = None):
        self.variable = variable
        self.split_dim = split_dim
        self.fractions = fractions
        self.normalise = normalise
        if layout is None:
            layout = self._layout(source, variable, split_dim, fractions, normalise, options)
        self.layout = layout
        lay = layout
        self._arrays: dict = {}  # (which dataset, variable) -> RawArray
        self.split_dim_ = lay.split_dim
        self.grid_dims_ = (lay.axes.y, lay.axes.x)
        self.blocks_ = {name: _as_slice(block) for name, block in lay.blocks.items()}
        opts = lay.opts
        self.transforms_ = {name: opts.transform_of(name)
                            for name in (lay.target, *lay.predictors, *lay.static)}
        check_target_values(lay)  # all-NaN or constant: one sentence, not a math domain error
        self.stats_ = {name: self._train_stats(name) for name in (lay.target, *lay.predictors)
                       if self.transforms_[name] == "zscore"}
        self.static_ = self._static_fields()
        self.mean_, self.std_ = self.stats_.get(lay.target, (0.0, 1.0))
        if lay.lat_weighted:
            from scalelab.data.cf import latitude_weights

            self.row_weights_ = latitude_weights(lay.dataset[lay.axes.y].values)
        else:
            self.row_weights_ = None

    @classmethod
    def of_field(cls, field: str, options: dict | None) -> "GriddedSource":
        """The reader of a gridded field of a spec (``gridded``, ``dem``): its record's maker."""
        from scalelab.data.options import layout_for

        return cls(layout=layout_for(field, options))

    @staticmethod
    def _layout(source, variable, split_dim, fractions, normalise, options) -> Layout:
        import xarray as xr

        values = dict(options or {})
        if variable is not None:
            values["variable"] = variable
        if split_dim is not None:
            values["split_dim"] = split_dim
        if fractions is not None:
            fractions = tuple(float(f) for f in fractions)
            if len(fractions) != 3 or min(fractions) <= 0:
                raise ScalelabError(f"fractions must be three positive numbers (train, val, "
                                    f"test), got {fractions!r}.")
            total = sum(fractions)
            values["split"] = {name: f / total for name, f in zip(SPLITS, fractions)}
        if not normalise:
            values["transform"] = "none"
        if isinstance(source, xr.DataArray):
            name = str(source.name) if source.name is not None else "field"
            values.setdefault("variable", name)
            source = source.to_dataset(name=values["variable"]) if source.name is None \
                else source.to_dataset()
        if source is None:  # GriddedSource(options={"path": "a.nc" or ds, "variable": ...})
            source = values.get("path")
            if source is None:
                raise ScalelabError("GriddedSource needs its data: a path, an xarray Dataset "
                                    "or a DataArray as its first argument or options.path.")
        opts = parse_options({**values, "path": None})
        if isinstance(source, (str, os.PathLike)):
            from scalelab.data.options import layout_for

            return layout_for("gridded", {**values, "path": str(source)})
        if not isinstance(source, xr.Dataset):
            raise ScalelabError(f"gridded data must be a path, an xarray Dataset or a DataArray, "
                                f"got {type(source).__name__}.")
        from scalelab.data.options import open_source

        static = open_source(opts.static_path) if opts.static_path else None
        coarse = open_source(opts.lr_path) if opts.lr_path else None
        return build_layout(source, opts, static, coarse)

    # --- statistics ---------------------------------------------------------------------
    def _train_stats(self, name: str) -> tuple[float, float]:
        """Mean and standard deviation of a variable over the training block, streamed.

        The training fields are read in slabs of consecutive fields of at most
        ``SLAB_BYTES`` and combined by the pairwise update of Chan, Golub & LeVeque
        (1983, eq. 2.1) for (count, mean, M2), so memory stays at one slab whatever the
        file's size; missing values are left out.
        """
        lay = self.layout
        raw = self._array("fine", name)
        block = lay.blocks["train"]
        if lay.split_dim in lay.leading and block.size > lay.opts.stats_fields:
            keep = np.unique(np.linspace(0, block.size - 1, lay.opts.stats_fields).round())
            block = block[keep.astype(int)]
        count, mean, m2 = 0, 0.0, 0.0
        for key in _slabs(raw, lay.split_dim, block):
            values = raw[key]
            values = values[np.isfinite(values)]
            if values.size == 0:
                continue
            n_b, mean_b = values.size, float(values.mean())
            m2_b = float(((values - mean_b) ** 2).sum())
            delta = mean_b - mean
            total = count + n_b
            mean += delta * n_b / total
            m2 += m2_b + delta**2 * count * n_b / total
            count = total
        if count == 0:
            raise ScalelabError(f"variable {name!r} has no finite value in the training block; "
                                "choose another variable or training period.")
        std = float(np.sqrt(m2 / count))
        return float(mean), (std if std > 0 else 1.0)

    def _static_fields(self) -> np.ndarray | None:
        """The static fields on the fine grid, transformed: ``(K, ny, nx)`` float32 (read once)."""
        lay = self.layout
        if not lay.static:
            return None
        out = []
        y, x = self.grid_dims_
        for name in lay.static:
            da = lay.static_dataset[name]
            da = da.isel({d: 0 for d in da.dims if d not in (y, x)}).transpose(y, x)
            values = np.asarray(da.values, dtype=np.float64)
            transform = self.transforms_[name]
            stats = (0.0, 1.0)
            if transform == "zscore":
                finite = values[np.isfinite(values)]
                if finite.size == 0:
                    raise ScalelabError(f"static field {name!r} has no finite value.")
                stats = (float(finite.mean()), float(finite.std()) or 1.0)
                self.stats_[name] = stats
            out.append(forward_transform(values, transform, stats))
        return np.stack(out).astype(np.float32)

    # --- physical units -----------------------------------------------------------------
    def to_physical(self, x):
        """Target values in model space → physical units (numpy array or torch tensor)."""
        name = self.layout.target
        return inverse_transform(x, self.transforms_[name], self.stats_.get(name, (0.0, 1.0)))

    def max_size(self, split: str = "train") -> int:
        """The largest square patch that fits in a split's block."""
        r0, r1, c0, c1 = self.layout.extent(split)
        return int(min(r1 - r0, c1 - c0))

    # --- reading ------------------------------------------------------------------------
    def read(self, split: str, n: int, size: int, scale: int = 1, seed: int = 0,
             start: int = 0, region: str | None = None) -> Patches:
        """``n`` samples of one split: the target patch and what the LR input is made of.

        With ``options.regions`` the patches lie in ``region`` (default: the training
        region; :mod:`scalelab.data.regions`); sample ``i`` of every region is drawn at the
        same field (time step), so the regions' sets differ only in where they lie.
        """
        if split not in SPLITS:
            raise ScalelabError(f"unknown split {split!r}; valid choices are {', '.join(SPLITS)}.")
        lay = self.layout
        if split not in lay.blocks:
            raise ScalelabError(f"options.split has no {split!r} period; add one to use the "
                                f"{split} set.")
        lay.check_size(size, scale)
        paired = lay.lr_dataset is not None
        step = scale if paired else 1
        r0, r1, c0, c1 = lay.extent(split)
        area = None
        if lay.regions:
            if region is None:
                area = lay.train_region
            elif region not in lay.regions:
                raise ScalelabError(f"no region {region!r} in options.regions; valid choices "
                                    f"are {', '.join(lay.regions)}.")
            else:
                area = lay.regions[region]
            # patches start at multiples of ``step`` (the coarse cells of a paired source)
            r0 = -(-area.row_start // step) * step
            r1 = area.row_stop
            c0 = (-(-area.col_start // step) * step) - area.col_start  # offsets into the region
            c1 = area.n_cols
        elif region is not None:
            raise ScalelabError(f"region {region!r} was asked for, but options.regions names "
                                "none; add options.regions.")
        block = lay.blocks[split]
        dims = lay.leading
        sizes = [block.size if d == lay.split_dim else s for d, s in zip(dims, lay.leading_shape)]
        n_fields = int(np.prod(sizes)) if sizes else 1
        n_pred = len(lay.predictors)
        target = np.empty((n, 1, size, size), dtype=np.float32)
        predictors = np.empty((n, n_pred, size, size), dtype=np.float32) \
            if n_pred and not paired else None
        lr = np.empty((n, 1 + n_pred, size // scale, size // scale), dtype=np.float32) \
            if paired else None
        static = np.empty((n, len(lay.static), size, size), dtype=np.float32) \
            if lay.static else None
        weights = np.empty((n, size), dtype=np.float32) if self.row_weights_ is not None else None
        stream = seed * 3 + SPLITS.index(split)
        for i in range(n):
            rng = np.random.default_rng(_mix(stream, start + i))
            for _ in range(MAX_DRAWS):
                flat = int(rng.integers(n_fields))
                index = dict(zip(dims, np.unravel_index(flat, sizes))) if dims else {}
                if lay.split_dim in index:
                    index[lay.split_dim] = int(block[index[lay.split_dim]])
                index = {d: int(v) for d, v in index.items()}
                y0 = r0 + step * int(rng.integers((r1 - r0 - size) // step + 1))
                x0 = c0 + step * int(rng.integers((c1 - c0 - size) // step + 1))
                ys, xs = slice(y0, y0 + size), slice(x0, x0 + size)
                if area is not None:  # x0 counts columns into the region; they may wrap
                    xs = area.columns(x0, size)
                    x0 = (area.col_start + x0) % area.nx
                target[i, 0] = self._patch(lay.target, index, ys, xs)
                if predictors is not None:
                    for k, name in enumerate(lay.predictors):
                        predictors[i, k] = self._patch(name, index, ys, xs)
                if lr is not None:
                    for k, name in enumerate((lay.target, *lay.predictors)):
                        lr[i, k] = self._coarse_patch(name, index, y0, x0, size, scale)
                if static is not None:
                    static[i] = self.static_[:, ys, xs]
                if lay.opts.nan == "mask" or all(
                        a is None or np.isfinite(a[i]).all()
                        for a in (target, predictors, lr, static)):
                    break
                if lay.opts.nan == "error":
                    raise ScalelabError(
                        f"a {split} patch of {lay.target!r} (at {index or 'the grid'}) has missing "
                        "values; set options.nan to mask (losses and metrics ignore them) or "
                        "skip (such patches are not used).")
            else:
                raise ScalelabError(
                    f"{MAX_DRAWS} draws found no {split} patch of {lay.target!r} without missing "
                    f"values at field_size {size}; set options.nan: mask, or choose a smaller "
                    "field_size.")
            if weights is not None:
                weights[i] = self.row_weights_[ys]
        return Patches(target, predictors, lr, static, weights)

    def _array(self, which: str, name: str):
        """The direct reader of a variable of the fine (``fine``) or coarse (``coarse``) source."""
        from scalelab.data.cf import RawArray

        if (which, name) not in self._arrays:
            dataset = self.layout.dataset if which == "fine" else self.layout.lr_dataset
            self._arrays[which, name] = RawArray(dataset, name)
        return self._arrays[which, name]

    @staticmethod
    def _read(raw, index: dict, y: str, x: str) -> np.ndarray:
        """``raw`` at ``index`` (ints, slices or index arrays per dimension) as a ``(y, x)`` array."""
        key = tuple(index.get(d, 0) for d in raw.dims)
        if any(isinstance(k, np.ndarray) for k in key):  # outer indexing: one axis at a time
            arrays = {i: k for i, k in enumerate(key) if isinstance(k, np.ndarray)}
            span = tuple(slice(int(k.min()), int(k.max()) + 1) if i in arrays else k
                         for i, k in enumerate(key))
            values = raw[span]
            kept = [i for i, k in enumerate(key) if not isinstance(k, (int, np.integer))]
            for axis, i in enumerate(kept):
                if i in arrays:
                    values = np.take(values, arrays[i] - int(arrays[i].min()), axis=axis)
        else:
            values = raw[key]
        kept_dims = [d for d, k in zip(raw.dims, key) if not isinstance(k, (int, np.integer))]
        return values.T if kept_dims.index(y) > kept_dims.index(x) else values

    def _patch(self, name: str, index: dict, ys: slice, xs: slice) -> np.ndarray:
        """One transformed ``size × size`` patch of a variable; only that patch is read."""
        y, x = self.grid_dims_
        values = self._read(self._array("fine", name), {**index, y: ys, x: xs}, y, x)
        return forward_transform(values, self.transforms_[name],
                                 self.stats_.get(name, (0.0, 1.0)))

    def _coarse_patch(self, name: str, index: dict, y0: int, x0: int, size: int,
                      scale: int) -> np.ndarray:
        """The coarse source at the fine patch's coarse cells, bilinearly interpolated."""
        lay = self.layout
        pos_y, pos_x = coarse_positions(lay, scale)
        py = pos_y[y0 + scale * np.arange(size // scale)]
        nx = pos_x.size + scale - 1  # fine columns
        fine_cols = x0 + scale * np.arange(size // scale)
        wrapped = bool(fine_cols[-1] >= nx)  # a region's patch past the seam of a global grid
        px = pos_x[fine_cols % nx]
        raw = self._array("coarse", name)
        if wrapped:  # positions run on past the coarse grid's last column, then wrap round
            px = np.where(px < px[0], px + raw.shape[raw.dims.index(lay.lr_axes.x)], px)
        ly, lx = lay.lr_axes.y, lay.lr_axes.x
        sel = {}
        if lay.axes.time is not None:
            sel[lay.lr_axes.time] = int(lay.lr_time[index[lay.axes.time]])
        i0, i1 = int(np.floor(py.min())), int(np.ceil(py.max()))
        j0, j1 = int(np.floor(px.min())), int(np.ceil(px.max()))
        width = raw.shape[raw.dims.index(lx)]
        if j1 < width:
            columns = slice(j0, j1 + 1)
        else:  # a global grid wraps round: read the columns in two pieces
            columns = np.arange(j0, j1 + 1) % width
        slab = self._read(raw, {**sel, ly: slice(i0, i1 + 1), lx: columns}, ly, lx)
        iy = np.minimum(np.floor(py).astype(int), i1) - i0
        ix = np.minimum(np.floor(px).astype(int), j1) - j0
        fy, fx = py - (iy + i0), px - (ix + j0)
        iy1, ix1 = np.minimum(iy + 1, i1 - i0), np.minimum(ix + 1, j1 - j0)

        def term(weight, rows, cols):  # a zero weight never lets a neighbour's NaN in
            return np.where(weight > 0, weight * slab[np.ix_(rows, cols)], 0.0)

        wy0, wy1 = (1 - fy)[:, None], fy[:, None]
        wx0, wx1 = (1 - fx)[None, :], fx[None, :]
        values = (term(wy0 * wx0, iy, ix) + term(wy0 * wx1, iy, ix1)
                  + term(wy1 * wx0, iy1, ix) + term(wy1 * wx1, iy1, ix1))
        return forward_transform(values, self.transforms_[name],
                                 self.stats_.get(name, (0.0, 1.0)))

    def samples(self, split: str, n: int, size: int, seed: int = 0, start: int = 0,
                device="cpu", dtype=None):
        """``n`` transformed target patches ``(n, 1, size, size)`` of one split, as a tensor."""
        import torch

        patches = self.read(split, n, size, 1, seed, start)
        return torch.from_numpy(patches.target).to(device=device, dtype=dtype or torch.float32)


SLAB_BYTES = 32 * 2**20  # the most the statistics read at once



def _slabs(raw, split_dim: str, block: np.ndarray):
    """Keys that read ``raw`` restricted to ``block`` along ``split_dim``, slab by slab."""
    if split_dim not in raw.dims:
        yield (slice(None),) * raw.ndim
        return
    axis = raw.dims.index(split_dim)
    field_bytes = 8 * int(np.prod([n for i, n in enumerate(raw.shape) if i != axis]))
    per_slab = max(1, SLAB_BYTES // max(1, field_bytes))
    runs = np.split(block, np.flatnonzero(np.diff(block) != 1) + 1)  # consecutive indices
    for run in runs:
        for first in range(0, run.size, per_slab):
            part = run[first:first + per_slab]
            yield ((slice(None),) * axis + (slice(int(part[0]), int(part[-1]) + 1),)
                   + (slice(None),) * (raw.ndim - axis - 1))


def _as_slice(block: np.ndarray):
    """A contiguous block as a slice (what ``blocks_`` showed before date splits), else the indices."""
    if block.size and np.array_equal(block, np.arange(block[0], block[0] + block.size)):
        return slice(int(block[0]), int(block[0]) + int(block.size))
    return block


__all__ = ["GriddedSource", "Patches", "example_path", "open_variable", "forward_transform",
           "inverse_transform", "DataOptions", "DEFAULT_FRACTIONS"]
