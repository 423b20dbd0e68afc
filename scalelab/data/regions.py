"""Named geographic regions of a gridded source: train on one, evaluate on others (torch-free).

Scaling under geographic shift (RainShift, 2025: a model trained on one region is scored on
regions it never saw): ``options.regions`` names the region the training (and the plain
``val_*`` validation) patches come from and the regions each evaluated as a set of its
own, recorded as ``val_<metric>@<region>``; ``options.region_boxes`` adds or overrides
boxes ``[lat_south, lat_north, lon_west, lon_east]`` in degrees::

    regions: {train: europe, eval: [europe, tropics, pacific]}
    region_boxes: {alps: [43, 49, 5, 17]}

A box runs east from ``lon_west`` to ``lon_east``; longitudes may be written in either
convention (0…360 or −180…180), whatever the file's, and a box whose ``lon_east`` lies
west of its ``lon_west`` crosses the dateline (``pacific: [-20, 20, 160, -120]``: 160°E
to 120°W); ``[…, -180, 180]`` or ``[…, 0, 360]`` is every longitude. A grid cell belongs
to a box when its centre lies in it (edges included). On a global grid a box may cross
the grid's seam (the first and last columns); its patches then wrap round.

:func:`parse_regions` types the two keys (no file opened); :func:`resolve_regions` finds
each region's rows and columns on a grid (metadata only) and refuses, in one sentence, a
box that holds no cell of the grid or fewer than ``field_size`` cells a side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalelab._errors import ScalelabError

#: Built-in boxes ``(lat_south, lat_north, lon_west, lon_east)``, degrees; longitudes east.
BUILTIN_BOXES: dict[str, tuple[float, float, float, float]] = {
    "global": (-90.0, 90.0, -180.0, 180.0),
    "europe": (30.0, 72.0, -15.0, 45.0),
    "north_america": (20.0, 65.0, -135.0, -55.0),
    "south_america": (-56.0, 13.0, -82.0, -34.0),
    "africa": (-35.0, 37.0, -18.0, 52.0),
    "asia": (5.0, 60.0, 60.0, 150.0),
    "australia": (-45.0, -10.0, 110.0, 156.0),
    "tropics": (-23.5, 23.5, -180.0, 180.0),
    "northern_midlatitudes": (30.0, 60.0, -180.0, 180.0),
    "southern_midlatitudes": (-60.0, -30.0, -180.0, 180.0),
    "arctic": (60.0, 90.0, -180.0, 180.0),
    "pacific": (-20.0, 20.0, 160.0, -120.0),  # crosses the dateline
}
REGION_KEYS = ("train", "eval")


def _check_name(name, where: str) -> str:
    if not isinstance(name, str) or not name or "@" in name or not name.replace(
            "_", "").replace("-", "").isalnum():
        raise ScalelabError(f"{where} must be a region name of letters, digits, '_' or '-' "
                            f"(it is written after '@' in the metric names), got {name!r}.")
    return name


def parse_boxes(value) -> tuple:
    """``options.region_boxes`` as ``((name, (lat_s, lat_n, lon_w, lon_e)), ...)``."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise ScalelabError("options.region_boxes must map region names to boxes [lat_south, "
                            f"lat_north, lon_west, lon_east] in degrees, got {value!r}.")
    out = []
    for name, box in value.items():
        _check_name(name, "options.region_boxes")
        numbers = isinstance(box, (list, tuple)) and len(box) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)
            for v in box)
        if not numbers:
            raise ScalelabError(f"options.region_boxes.{name} must be four numbers [lat_south, "
                                f"lat_north, lon_west, lon_east] in degrees, got {box!r}.")
        lat0, lat1, lon0, lon1 = (float(v) for v in box)
        if not (-90 <= lat0 <= 90 and -90 <= lat1 <= 90):
            raise ScalelabError(f"options.region_boxes.{name}: latitudes must lie in −90…90, "
                                f"got {lat0:g} and {lat1:g}.")
        if lat0 >= lat1:
            raise ScalelabError(f"options.region_boxes.{name}: lat_south {lat0:g} must be below "
                                f"lat_north {lat1:g}; write the box [lat_south, lat_north, "
                                "lon_west, lon_east].")
        if not (-180 <= lon0 <= 360 and -180 <= lon1 <= 360) or lon0 == lon1:
            raise ScalelabError(f"options.region_boxes.{name}: longitudes must lie in −180…360 "
                                f"and differ (east from lon_west to lon_east), got {lon0:g} and "
                                f"{lon1:g}.")
        out.append((name, (lat0, lat1, lon0, lon1)))
    return tuple(out)


def parse_regions(value, boxes: tuple = ()) -> tuple | None:
    """``options.regions`` as ``(train, (eval, ...))``, every name a built-in or given box."""
    if value is None:
        return None
    if isinstance(value, str):  # `regions: europe`: train there, evaluate there only
        value = {"train": value}
    if not isinstance(value, dict) or "train" not in value:
        raise ScalelabError("options.regions must name the training region and the evaluated "
                            "ones, as in {train: europe, eval: [europe, tropics]}, got "
                            f"{value!r}.")
    unknown = sorted(set(value) - set(REGION_KEYS))
    if unknown:
        raise ScalelabError(f"options.regions has an unknown key {unknown[0]!r}; valid keys are "
                            f"{', '.join(REGION_KEYS)}.")
    known = {**BUILTIN_BOXES, **dict(boxes)}
    train = _check_name(value["train"], "options.regions.train")
    evals = value.get("eval") or []
    if isinstance(evals, str):
        evals = [evals]
    if not isinstance(evals, (list, tuple)):
        raise ScalelabError(f"options.regions.eval must be a list of region names, got "
                            f"{evals!r}.")
    evals = [_check_name(e, "options.regions.eval") for e in evals]
    if len(set(evals)) != len(evals):
        raise ScalelabError(f"options.regions.eval names a region twice ({', '.join(evals)}); "
                            "name each once.")
    for name in (train, *evals):
        if name not in known:
            raise ScalelabError(f"options.regions: no region {name!r}; give its box in "
                                f"options.region_boxes or choose one of "
                                f"{', '.join(sorted(known))}.")
    return train, tuple(evals)


@dataclass(frozen=True)
class GridRegion:
    """A region's cells on a grid: rows ``row_start … row_stop − 1`` and ``n_cols`` columns
    from ``col_start`` eastwards, modulo ``nx`` (they wrap round a global grid's seam)."""

    name: str
    box: tuple
    row_start: int
    row_stop: int
    col_start: int
    n_cols: int
    nx: int

    @property
    def shape(self) -> tuple[int, int]:
        return self.row_stop - self.row_start, self.n_cols

    def rows(self, offset: int, size: int) -> slice:
        """Rows of a patch ``offset`` rows into the region."""
        return slice(self.row_start + offset, self.row_start + offset + size)

    def columns(self, offset: int, size: int):
        """Columns of a patch ``offset`` columns into the region: a slice, or the column
        indices where the patch wraps round the grid's seam."""
        first = self.col_start + offset
        if first + size <= self.nx:
            return slice(first, first + size)
        return (first + np.arange(size)) % self.nx

    def column_indices(self) -> np.ndarray:
        return (self.col_start + np.arange(self.n_cols)) % self.nx


def _box_text(box) -> str:
    lat0, lat1, lon0, lon1 = box
    return f"lat {lat0:g}…{lat1:g}, lon {lon0:g}…{lon1:g}"


def resolve_region(name: str, box: tuple, lat: np.ndarray, lon: np.ndarray,
                   is_global: bool) -> GridRegion:
    """The cells of ``box`` on a grid of 1-D ``lat`` (rows) and ``lon`` (columns), degrees."""
    lat = np.asarray(lat, dtype=np.float64)
    lon = np.asarray(lon, dtype=np.float64)
    lat0, lat1, lon0, lon1 = box
    rows = np.flatnonzero((lat >= lat0 - 1e-9) & (lat <= lat1 + 1e-9))
    width = (lon1 - lon0) % 360.0 or 360.0  # eastwards from lon_west
    offset = (lon - lon0) % 360.0  # each column's distance east of lon_west
    cols = np.flatnonzero(offset <= width + 1e-9)
    grid = (f"latitudes {lat.min():g}…{lat.max():g}, longitudes {lon.min():g}…{lon.max():g}")
    if rows.size == 0 or cols.size == 0:
        raise ScalelabError(f"region {name!r} ({_box_text(box)}) holds no cell of the grid "
                            f"({grid}); choose a box inside it.")
    nx = lon.size
    ordered = cols[np.argsort(offset[cols], kind="stable")]  # eastwards from lon_west
    steps = np.diff(ordered) % nx
    contiguous = rows.size == rows[-1] - rows[0] + 1 and (steps == 1).all()
    wraps = (ordered[-1] < ordered[0]) if ordered.size > 1 else False
    if not contiguous or (wraps and not is_global):
        raise ScalelabError(f"region {name!r} ({_box_text(box)}) is not one block of the grid "
                            f"({grid}; longitudes must increase eastwards along the grid, and "
                            "only a global grid wraps round); choose a box inside the grid.")
    return GridRegion(name, tuple(box), int(rows[0]), int(rows[-1]) + 1, int(ordered[0]),
                      int(ordered.size), int(nx))


def resolve_regions(parsed: tuple, boxes: tuple, lat, lon, is_global: bool) -> dict:
    """Every region ``parsed`` names (the training one first) on the grid: name → GridRegion."""
    known = {**BUILTIN_BOXES, **dict(boxes)}
    train, evals = parsed
    return {name: resolve_region(name, known[name], lat, lon, is_global)
            for name in dict.fromkeys((train, *evals))}


def check_region_size(region: GridRegion, size: int, scale: int = 1) -> None:
    """One sentence when a ``size × size`` patch does not fit in the region."""
    height, width = region.shape
    if size > height or size > width:
        fit = min(height, width) // scale * scale
        raise ScalelabError(
            f"region {region.name!r} ({_box_text(region.box)}) covers {height} × {width} grid "
            f"cells, fewer than field_size {size} a side; choose a larger box or field_size "
            f"<= {fit}" + (f" (a multiple of the scale {scale})" if scale > 1 else "") + ".")
