"""The data keys of a spec's ``options``, checked when the spec loads (torch-free).

:func:`check_gridded_options` is the check the records of the gridded fields
(``gridded``, ``dem``; :mod:`scalelab.data.names`) name, run when a spec loads: it
checks the types of the data keys, opens the files' metadata (no data are read) and checks paths,
variables, date ranges, the coarse source and the field size against the grid — each
problem one sentence, before any run starts. :class:`Layout` is the result: which
variables, which dimension is time, latitude and longitude, which indices of the split
dimension belong to each split, how a coarse source lines up in time. The reader
(:mod:`scalelab.data.gridded`) builds on it. Every key is explained in ``docs/data.md``.

Splits: ``split`` gives date ranges (``train: [2018-01-01, 2019-12-31]``, ends
included, any date string xarray's time index accepts) or fractions of the split
dimension (``train: 0.7``); without it the split dimension (time if there is one, else
longitude/x) is cut into three contiguous blocks of 70/15/15 %. Date ranges must not
overlap, so no time step of the validation (or test) period is ever used in training.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scalelab._errors import ScalelabError, SpecError
from scalelab.data.names import DATA_KEYS, REGISTRY

EXAMPLES = Path(__file__).parent / "examples"
TRANSFORMS = ("zscore", "log1p", "none")
NAN_POLICIES = ("mask", "skip", "error")
SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)
SOURCE_KEYS = ("path", "static_path", "lr_path")  # a file, or an xarray Dataset in memory

# An xarray Dataset given in place of a path (``options={"path": ds}``, from the Python
# API) is named by a token that stands for it wherever a path string goes (the typed
# options, the readers' cache keys). The table holds it weakly: a cached layout or
# reader holds the Dataset itself, so a token in a cache key always names that Dataset.
_IN_MEMORY: "weakref.WeakValueDictionary[str, object]" = weakref.WeakValueDictionary()
_TOKEN = "<xarray.Dataset in memory "


def _is_xarray(value, kind: str = "Dataset") -> bool:
    xr = sys.modules.get("xarray")  # an xarray object exists only once xarray is imported
    return xr is not None and isinstance(value, getattr(xr, kind))


def source_name(value, key: str = "path") -> str | None:
    """``options[key]`` as a string: a path as given, an xarray Dataset as its token."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return str(value)
    if _is_xarray(value):
        token = f"{_TOKEN}{id(value):x}>"
        _IN_MEMORY[token] = value
        return token
    if _is_xarray(value, "DataArray"):
        raise ScalelabError(f"options.{key} takes a path or an xarray Dataset, got a DataArray; "
                            f"give da.to_dataset() (or GriddedSource(da)).")
    raise ScalelabError(f"options.{key} must be a path (a string) or an xarray Dataset, got "
                        f"{type(value).__name__}.")


def open_source(name: str):
    """The Dataset that ``name`` (from :func:`source_name`) stands for, opened lazily."""
    if name.startswith(_TOKEN):
        dataset = _IN_MEMORY.get(name)
        if dataset is None:  # the caller let go of it: it can no longer be read
            raise ScalelabError("an xarray Dataset given as options.path is no longer in "
                                "memory; keep a reference to it while it is used.")
        return dataset
    from scalelab.data.cf import open_dataset

    return open_dataset(name)


@dataclass(frozen=True)
class DataOptions:
    """The data keys of ``options``, typed; defaults as documented in ``docs/data.md``."""

    path: str | None = None
    variable: str | None = None
    predictors: tuple[str, ...] = ()
    static: tuple[str, ...] = ()
    static_path: str | None = None
    lr_path: str | None = None
    transform: str | tuple = "zscore"  # one name for all, or ((variable, name), ...)
    split: tuple | None = None  # ((split, [start, end] | fraction), ...)
    split_dim: str | None = None
    nan: str = "mask"
    lat_weighting: str = "auto"  # "auto" | "true" | "false"
    stats_fields: int = 512
    images: tuple[str, ...] | None = None
    color: bool = False
    regions: tuple | None = None  # (train region, (evaluated regions, ...)); scalelab.data.regions
    region_boxes: tuple = ()  # ((name, (lat_south, lat_north, lon_west, lon_east)), ...)

    def transform_of(self, variable: str) -> str:
        if isinstance(self.transform, str):
            return self.transform
        return dict(self.transform).get(variable, "zscore")


def example_path(name: str = "jacksboro_dem.nc") -> Path:
    """Path of a real example shipped with scalelab (see ``scalelab/data/examples/README.md``)."""
    path = EXAMPLES / name
    if not path.exists():
        shipped = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".nc", ".zarr"))
        raise ScalelabError(f"no shipped example {name!r}; valid choices are {', '.join(shipped)}.")
    return path


def _names(value, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ScalelabError(f"options.{key} must be a variable name or a list of names, got {value!r}.")


def parse_options(options: dict | None) -> DataOptions:
    """Type-check the data keys of ``options`` (no file is opened)."""
    options = options or {}
    sources = {key: source_name(options.get(key), key) for key in SOURCE_KEYS}
    for key in ("variable", "split_dim"):
        value = options.get(key)
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise ScalelabError(f"options.{key} must be a string, got {value!r}.")
    transform = options.get("transform", "zscore")
    if isinstance(transform, str):
        _check_transform(transform, "options.transform")
    elif isinstance(transform, dict):
        for name, value in transform.items():
            _check_transform(value, f"options.transform.{name}")
        transform = tuple(sorted(transform.items()))
    else:
        raise ScalelabError(f"options.transform must be one of {', '.join(TRANSFORMS)} or a "
                            f"mapping variable: transform, got {transform!r}.")
    split = options.get("split")
    if split is not None:
        if not isinstance(split, dict) or not split:
            raise ScalelabError("options.split must map train, val (and test) to date ranges "
                                "[start, end] or to fractions, e.g. {train: [2018-01-01, "
                                "2019-12-31], val: [2020-01-01, 2020-06-30]}.")
        unknown = sorted(set(split) - set(SPLITS))
        if unknown:
            raise ScalelabError(f"options.split has an unknown split {unknown[0]!r}; valid "
                                f"choices are {', '.join(SPLITS)}.")
        for name in ("train", "val"):
            if name not in split:
                raise ScalelabError(f"options.split needs a {name!r} entry (a date range "
                                    "[start, end] or a fraction).")
        kinds = {_split_kind(name, value) for name, value in split.items()}
        if len(kinds) > 1:
            raise ScalelabError("options.split mixes date ranges and fractions; give all "
                                "splits as date ranges or all as fractions.")
        split = tuple((name, tuple(str(v) for v in value) if isinstance(value, (list, tuple))
                       else float(value)) for name, value in split.items())
        total = sum(value for _, value in split if isinstance(value, float))
        if total > 1 + 1e-9:  # they would be scaled down without a word
            raise ScalelabError(f"options.split fractions add up to {total:g} "
                                f"({', '.join(f'{n} {v:g}' for n, v in split)}); give fractions "
                                f"of the data that add up to 1 at most.")
    nan = options.get("nan", "mask")
    if nan not in NAN_POLICIES:
        raise ScalelabError(f"options.nan must be one of {', '.join(NAN_POLICIES)} (how missing "
                            f"values are handled), got {nan!r}.")
    lat_weighting = options.get("lat_weighting", "auto")
    if lat_weighting not in ("auto", True, False):
        raise ScalelabError(f"options.lat_weighting must be auto, true or false, got "
                            f"{lat_weighting!r}.")
    stats_fields = options.get("stats_fields", 512)
    if not isinstance(stats_fields, int) or isinstance(stats_fields, bool) or stats_fields < 1:
        raise ScalelabError(f"options.stats_fields must be a positive integer, got "
                            f"{stats_fields!r}.")
    color = options.get("color", False)
    if not isinstance(color, bool):
        raise ScalelabError(f"options.color must be true or false, got {color!r}.")
    images = options.get("images")
    from scalelab.data.regions import parse_boxes, parse_regions

    region_boxes = parse_boxes(options.get("region_boxes"))
    regions = parse_regions(options.get("regions"), region_boxes)
    return DataOptions(
        path=sources["path"],
        variable=options.get("variable"),
        predictors=_names(options.get("predictors"), "predictors"),
        static=_names(options.get("static"), "static"),
        static_path=sources["static_path"], lr_path=sources["lr_path"],
        transform=transform, split=split, split_dim=options.get("split_dim"), nan=nan,
        lat_weighting=str(lat_weighting).lower(), stats_fields=stats_fields,
        images=None if images is None else _names(images, "images"), color=color,
        regions=regions, region_boxes=region_boxes,
    )


def _check_transform(value, where: str) -> None:
    if value not in TRANSFORMS:
        raise ScalelabError(f"{where} must be one of {', '.join(TRANSFORMS)}, got {value!r}.")


def _split_kind(name: str, value) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return "dates"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
        return "fraction"
    raise ScalelabError(f"options.split.{name} must be a date range [start, end] or a fraction "
                        f"in (0, 1), got {value!r}.")


@dataclass
class Layout:
    """Where the samples of each split come from, resolved from metadata only.

    ``blocks[split]``: indices along ``split_dim`` of the split's fields (time steps,
    or rows/columns when the split dimension is a grid dimension). ``lr_time``:
    for a coarse source, the coarse time index of each fine time step (−1: none).
    """

    dataset: object  # xarray Dataset (lazy)
    target: str
    opts: DataOptions
    axes: object  # cf.Axes
    grid_shape: tuple[int, int]
    split_dim: str
    blocks: dict
    static_dataset: object = None
    lr_dataset: object = None
    lr_time: np.ndarray | None = None
    lr_axes: object = None
    lat_weighted: bool = False
    leading: tuple[str, ...] = ()  # the target's non-grid dimensions, in its order
    leading_shape: tuple[int, ...] = ()
    notes: list = field(default_factory=list)
    #: ``options.regions`` on the grid, name → :class:`~scalelab.data.regions.GridRegion`
    #: (the training region first); empty without regions
    regions: dict = field(default_factory=dict)

    @property
    def train_region(self):
        """The region training and the plain validation set draw from (None: the whole grid)."""
        return next(iter(self.regions.values())) if self.regions else None

    @property
    def eval_regions(self) -> tuple[str, ...]:
        """The shifted regions evaluated as sets of their own (not the training region)."""
        if not self.regions:
            return ()
        train, evals = self.opts.regions
        return tuple(name for name in evals if name != train)

    @property
    def predictors(self) -> tuple[str, ...]:
        return self.opts.predictors

    @property
    def static(self) -> tuple[str, ...]:
        return self.opts.static

    def extent(self, split: str) -> tuple[int, int, int, int]:
        """(row start, row stop, column start, column stop) patches of a split may cover."""
        ny, nx = self.grid_shape
        rows, cols = (0, ny), (0, nx)
        block = self.blocks[split]
        if self.split_dim == self.axes.y:
            rows = (int(block[0]), int(block[-1]) + 1)
        if self.split_dim == self.axes.x:
            cols = (int(block[0]), int(block[-1]) + 1)
        return (*rows, *cols)

    def check_size(self, size: int, scale: int = 1) -> None:
        """Raise one sentence when a ``size × size`` patch does not fit a split's grid."""
        for split in self.blocks:
            r0, r1, c0, c1 = self.extent(split)
            height, width = r1 - r0, c1 - c0
            if size > height or size > width:
                fit = min(height, width) // scale * scale
                where = ("grid" if (height, width) == self.grid_shape
                         else f"{split} block")
                raise ScalelabError(
                    f"field_size {size} is larger than the {where} ({height} × {width}) of "
                    f"{self.target!r}; choose field_size <= {fit}"
                    + (f" (a multiple of the scale {scale})" if scale > 1 else "") + ".")
        if self.regions:
            from scalelab.data.regions import check_region_size

            for region in self.regions.values():
                check_region_size(region, size, scale)
        if self.lr_dataset is not None:
            coarse_positions(self, scale)  # raises if the coarse grid does not cover the fine one


def _index_of(ds, dim: str):
    try:
        return ds.indexes[dim]
    except KeyError:
        return None


def _date_block(index, name: str, value: tuple, dim: str) -> np.ndarray:
    start, end = value
    try:
        bounds = index.slice_indexer(start, end)
    except (KeyError, ValueError, TypeError) as err:
        raise ScalelabError(f"options.split.{name}: {start!r} to {end!r} are not dates the time "
                            f"axis {dim!r} understands ({err}); write dates as YYYY-MM-DD.") from None
    block = np.arange(len(index))[bounds]
    if block.size == 0:
        raise ScalelabError(f"options.split.{name} ({start} to {end}) holds no time step of "
                            f"{dim!r}, which runs from {index[0]} to {index[-1]}; choose dates "
                            "inside that range.")
    return block


def _fraction_blocks(length: int, fractions, dim: str) -> dict:
    names = [name for name, _ in fractions]
    values = np.asarray([value for _, value in fractions], dtype=float)
    bounds = np.round(np.cumsum((0.0, *values)) / max(1.0, values.sum()) * length).astype(int)
    blocks = {name: np.arange(bounds[i], bounds[i + 1]) for i, name in enumerate(names)}
    for name, block in blocks.items():
        if block.size == 0:
            raise ScalelabError(f"the {name} block along {dim!r} is empty; the data have only "
                                f"{length} entries there, so give {name} a larger fraction.")
    return blocks


def build_layout(dataset, opts: DataOptions, static_dataset=None, lr_dataset=None) -> Layout:
    """Resolve variables, axes, splits and the coarse source of ``dataset`` (metadata only)."""
    from scalelab.data.cf import find_axes, is_global

    names = [str(v) for v in dataset.data_vars]
    if opts.variable is None or opts.variable not in dataset.data_vars:
        what = "no variable given" if opts.variable is None else f"no variable {opts.variable!r}"
        raise ScalelabError(f"the dataset has {what}; valid choices are {', '.join(names)} "
                            "(set options.variable).")
    target = dataset[opts.variable]
    axes = find_axes(target)
    leading = tuple(str(d) for d in target.dims if d not in (axes.y, axes.x))
    for name in opts.predictors:
        if name not in dataset.data_vars:
            raise ScalelabError(f"options.predictors: the dataset has no variable {name!r}; valid "
                                f"choices are {', '.join(names)}.")
        dims = dataset[name].dims
        extra = [str(d) for d in dims if d not in target.dims]
        if extra or axes.y not in dims or axes.x not in dims:
            raise ScalelabError(
                f"options.predictors: {name!r} has dimensions {tuple(map(str, dims))}, not those "
                f"of {opts.variable!r} {tuple(map(str, target.dims))}; select its extra "
                "dimensions first (e.g. ds[name].sel(level=500)) or leave it out.")
        for dim in (axes.y, axes.x):
            if dataset[name].sizes[dim] != target.sizes[dim]:
                raise ScalelabError(f"options.predictors: {name!r} is on another grid than "
                                    f"{opts.variable!r}; give predictors on the target's grid "
                                    "or from a coarse source (options.lr_path).")
    static_ds = static_dataset if static_dataset is not None else dataset
    for name in opts.static:
        if name not in static_ds.data_vars:
            valid = ", ".join(str(v) for v in static_ds.data_vars)
            raise ScalelabError(f"options.static: no variable {name!r} in the static source; "
                                f"valid choices are {valid}.")
        da = static_ds[name]
        grid = (axes.y, axes.x)
        extra = [str(d) for d in da.dims if d not in grid and da.sizes[d] != 1]
        if extra or any(d not in da.dims or da.sizes[d] != target.sizes[d] for d in grid):
            raise ScalelabError(
                f"options.static: {name!r} has dimensions {dict(da.sizes)}; a static field needs "
                f"exactly the grid of {opts.variable!r} ({axes.y}: {target.sizes[axes.y]}, "
                f"{axes.x}: {target.sizes[axes.x]}) and no time.")
    for name, _ in opts.transform if not isinstance(opts.transform, str) else ():
        if name not in (opts.variable, *opts.predictors, *opts.static):
            raise ScalelabError(f"options.transform names {name!r}, which is neither the target, "
                                "a predictor nor a static field; valid choices are "
                                f"{', '.join((opts.variable, *opts.predictors, *opts.static))}.")

    # the split dimension and its blocks
    split_dim = opts.split_dim or axes.time or axes.x
    if split_dim not in target.dims:
        raise ScalelabError(f"options.split_dim {split_dim!r} is not a dimension of "
                            f"{opts.variable!r}; valid choices are "
                            f"{', '.join(map(str, target.dims))}.")
    length = target.sizes[split_dim]
    if split_dim == axes.time:  # a repeated time step would fall in two splits
        times = _index_of(dataset, split_dim)
        if times is not None and times.has_duplicates:
            repeated = times[times.duplicated()]
            raise ScalelabError(f"the time axis {split_dim!r} repeats {len(repeated)} time steps "
                                f"(first {repeated[0]}), so one time could fall in the training "
                                f"and the validation split; drop the repeats "
                                f"(ds.drop_duplicates({split_dim!r})).")
    split = opts.split or tuple(zip(SPLITS, DEFAULT_FRACTIONS))
    if isinstance(split[0][1], tuple):  # date ranges
        if split_dim != axes.time:
            raise ScalelabError(f"options.split gives date ranges, but {opts.variable!r} has no "
                                f"time axis to split (split dimension {split_dim!r}); give "
                                "fractions instead, e.g. {train: 0.7, val: 0.15, test: 0.15}.")
        index = _index_of(dataset, split_dim)
        if index is None or not hasattr(index, "slice_indexer") or not (
                index.is_monotonic_increasing):
            raise ScalelabError(f"the time axis {split_dim!r} is not a sorted time coordinate; "
                                "sort it (ds.sortby) or give split fractions instead of dates.")
        blocks = {name: _date_block(index, name, value, split_dim) for name, value in split}
        order = [name for name, _ in split]
        for i, a in enumerate(order):
            for b in order[i + 1:]:
                if np.intersect1d(blocks[a], blocks[b]).size:
                    raise ScalelabError(f"options.split: the {a} and {b} periods overlap; give "
                                        "date ranges that do not overlap, so no sample of one "
                                        "split is seen in another.")
    else:
        blocks = _fraction_blocks(length, split, split_dim)

    # a coarse source on its own grid, aligned in time
    lr_time = None
    if lr_dataset is not None:
        for name in (opts.variable, *opts.predictors):
            if name not in lr_dataset.data_vars:
                valid = ", ".join(str(v) for v in lr_dataset.data_vars)
                raise ScalelabError(f"options.lr_path: the coarse source has no variable {name!r} "
                                    f"(it must use the names of options.path); valid choices "
                                    f"are {valid}.")
        lr_axes = find_axes(lr_dataset[opts.variable])
        if axes.others or lr_axes.others or (axes.time is None) != (lr_axes.time is None):
            raise ScalelabError("options.lr_path: a coarse source needs variables with dimensions "
                                "(time, latitude, longitude) like those of options.path; select "
                                "other dimensions (level, member) first.")
        for dim, lr_dim in ((axes.y, lr_axes.y), (axes.x, lr_axes.x)):
            if dim not in dataset.coords or lr_dim not in lr_dataset.coords:
                raise ScalelabError(f"options.lr_path: both grids need coordinate values along "
                                    f"{dim!r} to line them up; add them (ds.assign_coords).")
        if axes.time is not None:
            fine, coarse = _index_of(dataset, axes.time), _index_of(lr_dataset, lr_axes.time)
            try:
                lr_time = np.asarray(coarse.get_indexer(fine))
            except (TypeError, ValueError):
                lr_time = np.full(len(fine), -1)
            if axes.time == split_dim:
                blocks = {name: block[lr_time[block] >= 0] for name, block in blocks.items()}
            for name, block in blocks.items():
                if block.size == 0:
                    raise ScalelabError(f"options.lr_path: the coarse source shares no time step "
                                        f"with options.path in the {name} period; give a coarse "
                                        "source that covers the same dates.")
    regions = _grid_regions(dataset, opts, axes, split_dim) if opts.regions else {}
    lat_weighted = False
    if opts.lat_weighting == "true":
        if not axes.geographic:
            raise ScalelabError(f"options.lat_weighting is true but {opts.variable!r} has no "
                                "latitude/longitude grid (CF units degrees_north/east); set it "
                                "to auto or false.")
        lat_weighted = True
    elif opts.lat_weighting == "auto" and axes.geographic and axes.x in dataset.coords:
        lat_weighted = bool(is_global(dataset[axes.x].values))
    return Layout(
        dataset=dataset, target=opts.variable, opts=opts, axes=axes,
        grid_shape=(target.sizes[axes.y], target.sizes[axes.x]), split_dim=split_dim,
        blocks=blocks, static_dataset=static_ds if opts.static else None,
        lr_dataset=lr_dataset, lr_time=lr_time,
        lr_axes=find_axes(lr_dataset[opts.variable]) if lr_dataset is not None else None,
        lat_weighted=lat_weighted, leading=leading,
        leading_shape=tuple(target.sizes[d] for d in leading), regions=regions,
    )


def _grid_regions(dataset, opts: DataOptions, axes, split_dim: str) -> dict:
    """``options.regions`` resolved on the target's latitude/longitude grid (one sentence if
    the grid has none, the splits cut the grid, or a box misses the grid)."""
    from scalelab.data.cf import is_global
    from scalelab.data.regions import resolve_regions

    if not axes.geographic or axes.y not in dataset.coords or axes.x not in dataset.coords \
            or dataset[axes.y].ndim != 1 or dataset[axes.x].ndim != 1:
        raise ScalelabError(f"options.regions needs a latitude/longitude grid with 1-D "
                            f"coordinates (CF units degrees_north/east), and {opts.variable!r} "
                            f"has none; remove options.regions or give such a grid.")
    if split_dim in (axes.y, axes.x):
        raise ScalelabError(f"options.regions needs splits along time (or another non-grid "
                            f"dimension), but the splits cut the grid along {split_dim!r}; "
                            f"give the data a time axis or set options.split_dim.")
    lon = np.asarray(dataset[axes.x].values, dtype=np.float64)
    return resolve_regions(opts.regions, opts.region_boxes,
                           dataset[axes.y].values, lon, bool(is_global(lon)))


def _fractional(axis: np.ndarray, values: np.ndarray, what: str) -> np.ndarray:
    """Fractional indices of ``values`` on a monotonic coordinate ``axis``; refuse extrapolation."""
    axis = np.asarray(axis, dtype=np.float64)
    n = axis.size
    descending = n > 1 and axis[0] > axis[-1]
    ordered = axis[::-1] if descending else axis
    step = float(np.abs(np.diff(ordered)).min()) if n > 1 else 1.0
    low, high = float(values.min()), float(values.max())
    if low < ordered[0] - 1e-6 * step or high > ordered[-1] + 1e-6 * step:
        raise ScalelabError(
            f"options.lr_path: the coarse grid covers {what} {ordered[0]:g} to {ordered[-1]:g}, "
            f"but the fine grid's coarse cells lie from {low:g} to {high:g}; give a coarse source "
            "that covers the fine domain (values are interpolated, never extrapolated).")
    pos = np.interp(values, ordered, np.arange(n, dtype=np.float64))
    return (n - 1) - pos if descending else pos


def coarse_positions(layout: Layout, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the coarse cells of a fine patch lie on the coarse source's grid.

    Entry ``k`` of each array is the fractional index, on the coarse y (x) axis, of the
    centre of the fine rows (columns) ``k … k + scale − 1``: the LR pixel made of them
    is the coarse source bilinearly interpolated there (exactly a coarse value when
    the grids nest). Longitudes are brought to the coarse source's convention
    (0…360 or −180…180) first; on a global coarse grid they wrap round (a position past
    the last column lies between it and the first, whose index is taken modulo the
    number of columns).
    """
    cache = layout.__dict__.setdefault("_positions", {})
    if scale in cache:
        return cache[scale]
    out = []
    for dim, lr_dim, what in ((layout.axes.y, layout.lr_axes.y, "latitude/y"),
                              (layout.axes.x, layout.lr_axes.x, "longitude/x")):
        fine = np.asarray(layout.dataset[dim].values, dtype=np.float64)
        coarse = np.asarray(layout.lr_dataset[lr_dim].values, dtype=np.float64)
        centres = np.convolve(fine, np.full(scale, 1.0 / scale), mode="valid")
        if dim == layout.axes.x and layout.axes.geographic:
            if coarse.min() >= 0 and centres.min() < 0:
                centres = np.mod(centres, 360.0)
            elif coarse.max() <= 180 and centres.max() > 180:
                centres = np.where(centres > 180, centres - 360.0, centres)
            from scalelab.data.cf import is_global

            if is_global(coarse) and coarse.size > 1:  # the first column again, one turn on
                turn = 360.0 if coarse[-1] > coarse[0] else -360.0
                coarse = np.append(coarse, coarse[0] + turn)
        out.append(_fractional(coarse, centres, what))
    cache[scale] = tuple(out)
    return cache[scale]


def _stamp(path: str | None):
    if path is None or path.startswith(_TOKEN):
        return path
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return (str(p), None)
    return (str(p.resolve()), st.st_mtime_ns, st.st_size)


def data_key(field: str, options: dict | None) -> str:
    """A hashable key of the data keys of ``options`` (the other keys do not change the data)."""
    options = options or {}
    values = {k: source_name(options[k], k) if k in SOURCE_KEYS else options[k]
              for k in DATA_KEYS if k in options}
    return json.dumps({"field": field, **values}, sort_keys=True, default=str)


def layout_for(field: str, options: dict | None) -> Layout:
    """The layout of a gridded field (``gridded`` or ``dem``) from its options; cached."""
    opts = parse_options(options)
    record = REGISTRY[field]
    if record.example is not None:  # a shipped example: its file, its default variable
        opts = DataOptions(**{**opts.__dict__, "path": str(example_path(record.example)),
                              "variable": opts.variable or record.variable})
    elif opts.path is None:
        raise ScalelabError(f"field {field!r} needs options.path (a netCDF file, a zarr store "
                            f"or an xarray Dataset) and options.variable.")
    stamps = tuple(_stamp(p) for p in (opts.path, opts.static_path, opts.lr_path))
    return _layout_cached(opts, stamps)


@functools.lru_cache(maxsize=16)
def _layout_cached(opts: DataOptions, stamps) -> Layout:
    dataset = open_source(opts.path)
    static = open_source(opts.static_path) if opts.static_path else None
    coarse = open_source(opts.lr_path) if opts.lr_path else None
    return build_layout(dataset, opts, static, coarse)


def channels_of(field: str, options: dict | None) -> tuple[int, int]:
    """(input channels, target channels) of a field's (LR, HR) pairs, from its options alone.

    The input holds the target's channels, then one per predictor, then one per static
    field; a field whose record says ``rgb`` (``photos``) with ``color: true`` has three
    target channels (R, G, B).
    """
    record = REGISTRY[field]
    if record.kind == "synthetic":
        return 1, 1
    opts = parse_options(options)
    target = 3 if record.rgb and opts.color else 1
    if record.kind == "images":
        return target, target
    return target + len(opts.predictors) + len(opts.static), target


def check_field_options(field: str, options: dict | None, source: str = "the spec",
                        field_size: int | None = None, scale: int = 1) -> None:
    """Check a data field's options (paths, variables, dates, size vs grid) with the check its
    record names; one SpecError sentence. Synthetic fields have nothing to check here."""
    record = REGISTRY[field]
    if record.check is not None:
        from scalelab._declare import resolve

        resolve(record.check)(field, options, source, field_size, scale)


def check_gridded_options(field: str, options: dict | None, source: str = "the spec",
                          field_size: int | None = None, scale: int = 1) -> None:
    """A gridded source's check: its files' metadata opened, the patch size against the grid."""
    try:
        layout = layout_for(field, options)
        if field_size is not None:
            layout.check_size(field_size, scale)
        check_target_values(layout)  # all-NaN, constant or unreadable: before any run
    except SpecError:
        raise
    except ScalelabError as err:
        raise SpecError(f"{source}: {err}") from None


CHECK_FIELDS = 8  # fields of each split the load-time check of the target reads


def check_target_values(layout: "Layout") -> None:
    """Refuse a target that cannot be learned or scored, before any run: a split in which
    it holds no finite value (all missing), or the same value everywhere (a constant
    target has no skill to measure: PSNR's range is zero). Reads ``CHECK_FIELDS`` evenly
    spaced fields of the training and validation blocks (cached per data file), so a
    damaged chunk there is found too."""
    if getattr(layout, "_target_checked", False):  # layouts of files are cached: read once
        return
    from scalelab.data.cf import RawArray

    raw = RawArray(layout.dataset, layout.target)
    for split in ("train", "val"):
        block = layout.blocks.get(split)
        if block is None or block.size == 0:
            continue
        if layout.split_dim in raw.dims and block.size > CHECK_FIELDS:
            block = block[np.unique(np.linspace(0, block.size - 1, CHECK_FIELDS).round()
                                    ).astype(int)]
        low, high, finite = np.inf, -np.inf, 0
        for index in (block if layout.split_dim in raw.dims else [None]):
            key_ = tuple(int(index) if d == layout.split_dim and index is not None
                         else slice(None) for d in raw.dims)
            if layout.split_dim not in layout.leading:  # a grid dimension: the block's slab
                key_ = tuple(block if d == layout.split_dim else slice(None) for d in raw.dims)
                key_ = tuple(slice(int(k.min()), int(k.max()) + 1) if isinstance(k, np.ndarray)
                             else k for k in key_)
            values = raw[key_]
            values = values[np.isfinite(values)]
            if values.size:
                finite += values.size
                low, high = min(low, float(values.min())), max(high, float(values.max()))
            if layout.split_dim not in layout.leading:
                break
        if finite == 0:
            raise ScalelabError(f"the target {layout.target!r} has no finite value in the "
                                f"{split} split (every value read is missing); choose another "
                                f"variable, period or file.")
        if high == low:
            raise ScalelabError(f"the target {layout.target!r} is {low:g} everywhere in the "
                                f"{split} split, so there is nothing to learn and no skill to "
                                f"score; choose another variable, period or file.")
    layout._target_checked = True
