"""The fields (data sources) and degradation operators, one record each (torch-free).

Fields: ``grf`` (Gaussian random field, power-law spectrum), ``precip``
(intermittent precipitation-like field), ``turbulence`` (2-D Navier–Stokes vorticity
snapshot from a pseudo-spectral solver), ``dem`` (the shipped real elevation model,
``scalelab/data/examples``), ``gridded`` (any netCDF/zarr file: ``options`` give
``path`` and ``variable``, see ``docs/data.md``), ``photos`` and ``faces`` (real
photographs and LFW face crops shipped by scikit-image).

A :class:`FieldSource` declares everything about a field: its ``kind`` (``synthetic``:
drawn by a generator; ``gridded``: read from netCDF/zarr; ``images``: crops of real
images), its ``maker`` (the import path of the generator, or of the reader class that
takes ``(field, options)``), its ``options`` with their defaults and valid ranges, and
for data sources the ``check`` that opens their metadata when the spec loads. A
:class:`Degradation` names its operator's function. The generators' dispatch
(:mod:`scalelab.data.pairs`), the checks of a spec, ``FIELDS``/``DEGRADATIONS`` and
which ``options`` keys each reads are all built from these records: a new field is one
module with its generator (or reader) and one record here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from scalelab._declare import Opt, number, positive

KINDS = ("synthetic", "gridded", "images")
# the data keys of ``options``, read by every data source (gridded and images); their
# types and the files they name are checked by ``scalelab.data.options.parse_options``
# and the source's ``check`` (every key is explained in docs/data.md)
DATA_KEYS = ("path", "variable", "predictors", "static", "static_path", "lr_path", "transform",
             "split", "split_dim", "nan", "lat_weighting", "stats_fields", "images", "color",
             "regions", "region_boxes")
DATA_OPTIONS = {key: Opt(None, "any", none=True) for key in DATA_KEYS}


@dataclass(frozen=True)
class FieldSource:
    """Everything about one field (see the module's docstring). ``rgb``: ``options.color:
    true`` makes its targets three channels (R, G, B). ``example``/``variable``: a gridded
    field that reads a file shipped in ``scalelab/data/examples`` (its default variable)."""

    name: str
    kind: str
    maker: str | Callable
    options: dict[str, Opt] = field(default_factory=dict)
    check: str | Callable | None = None  # (field, options, source, field_size, scale)
    rgb: bool = False
    example: str | None = None  # a gridded field read from a shipped example file
    variable: str | None = None  # ... and its default variable
    doc: str = ""

    def __post_init__(self):
        assert self.kind in KINDS, self.kind


@dataclass(frozen=True)
class Degradation:
    """A coarsening operator: ``function(hr, scale)`` (``gaussian`` also takes ``blur_sigma``),
    and ``check(cfg, source)``, its rules with the run's size (raises SpecError)."""

    name: str
    function: str | Callable
    check: Callable | None = None
    doc: str = ""


def _check_blur(cfg, source: str) -> None:
    blur = cfg.options.get("blur_sigma")
    sigma = cfg.scale / 2 if blur is None else float(blur)  # scalelab.data.degrade.gaussian's
    radius = int(4 * sigma + 0.5)
    if radius >= cfg.field_size:
        from scalelab._errors import SpecError

        given = f"options.blur_sigma {blur}" if blur is not None else \
            f"the gaussian blur (sigma = scale/2 = {sigma:g})"
        raise SpecError(f"{source}: {given} is too wide for field_size {cfg.field_size} (its "
                        f"kernel reaches {radius} pixels); choose blur_sigma below "
                        f"{cfg.field_size / 4:g} or a larger field_size.")


_S = "scalelab.data.synthetic:"
_GRIDDED = dict(maker="scalelab.data.gridded:GriddedSource.of_field", options=DATA_OPTIONS,
                check="scalelab.data.options:check_gridded_options")
_IMAGES = dict(maker="scalelab.data.images:ImageSource", options=DATA_OPTIONS,
               check="scalelab.data.images:check_images")
#: the fields, one record each; a new field is one generator (or reader) and one line here
SOURCES: tuple[FieldSource, ...] = (
    FieldSource("grf", "synthetic", _S + "gaussian_random_field",
                {"slope": number(3.0, doc="spectral slope: E(k) ∝ k^-slope")}),
    FieldSource("precip", "synthetic", _S + "precipitation_field",
                {"slope": number(3.0), "wet_fraction": number(0.3, 0, 1, low_open=True,
                                                              high_open=True),
                 "sigma": positive(1.0, doc="log-normal intensity spread")}),
    FieldSource("turbulence", "synthetic", _S + "turbulence_field",
                {"viscosity": positive(1e-3),
                 "time": number(1.0, 0, 100, doc="integration time (steps grow with it)")}),
    FieldSource("dem", "gridded", example="jacksboro_dem.nc", variable="elevation", **_GRIDDED),
    FieldSource("gridded", "gridded", **_GRIDDED),
    FieldSource("photos", "images", rgb=True, **_IMAGES),
    FieldSource("faces", "images", **_IMAGES),
)
#: name → record: what the dispatch and the checks read (a plugin may add a record to it)
REGISTRY: dict[str, FieldSource] = {source.name: source for source in SOURCES}
FIELDS = tuple(REGISTRY)
DATA_FIELDS = tuple(name for name, source in REGISTRY.items() if source.kind != "synthetic")
# the keys of a run's ``options`` each synthetic field reads (data fields: DATA_KEYS)
FIELD_OPTIONS = {name: tuple(source.options) for name, source in REGISTRY.items()
                 if source.kind == "synthetic"}

def _check_kernels(cfg, source: str) -> None:
    """``learned_kernel``: options.kernel_path names a kernels file of the run's scale (its
    JSON record is read without torch)."""
    from scalelab._errors import ScalelabError, SpecError

    path = cfg.options.get("kernel_path")
    if not isinstance(path, str) or not path:
        raise SpecError(f"{source}: degradation learned_kernel needs options.kernel_path, the "
                        f"file that `scalelab fit-kernels` writes (e.g. scalelab fit-kernels "
                        f"--field {cfg.field} --scale {cfg.scale} -o kernels.pt).")
    from scalelab.data.kernel_files import read_record, resolve_kernel_path

    try:
        record = read_record(resolve_kernel_path(path))
    except ScalelabError as err:
        raise SpecError(f"{source}: options.kernel_path: {err}") from None
    fitted = record.get("settings", {}).get("scale")
    if fitted != cfg.scale:
        raise SpecError(f"{source}: options.kernel_path {path} holds kernels fitted for scale "
                        f"{fitted}, not the run's {cfg.scale}; fit them for scale {cfg.scale}.")


_D = "scalelab.data.degrade:"
DEGRADATION_RECORDS: tuple[Degradation, ...] = (
    Degradation("block_mean", _D + "block_mean"),
    Degradation("bicubic", _D + "bicubic"),
    Degradation("gaussian", _D + "gaussian", check=_check_blur),
    Degradation("learned_kernel", "scalelab.data.kernels:learned_kernel", check=_check_kernels,
                doc="fitted per-pixel kernels (ADK-Net), options.kernel_path"),
)
DEGRADATION_REGISTRY = {d.name: d for d in DEGRADATION_RECORDS}
DEGRADATIONS = tuple(DEGRADATION_REGISTRY)
# the options every degradation reads (``scalelab.data.pairs``)
DEGRADATION_OPTIONS_DECLARED = {
    "lr_noise_std": number(0.0, 0, doc="additive Gaussian noise on the LR input"),
    "blur_sigma": positive(None, none=True, doc="gaussian's σ in HR pixels (default scale/2)"),
    "kernel_path": Opt(None, "text", none=True,
                       doc="learned_kernel's file (scalelab fit-kernels writes it)"),
}
DEGRADATION_OPTIONS = tuple(DEGRADATION_OPTIONS_DECLARED)


def is_data(field: str) -> bool:
    """Whether ``field`` is read from data (gridded or images), not drawn by a generator."""
    return REGISTRY[field].kind != "synthetic"


def check_field(cfg, source: str = "the spec") -> None:
    """The ranges of the field's and the degradation's options, then the field's own check
    (a data source opens its files' metadata); one SpecError sentence."""
    from scalelab._declare import check_declared, resolve

    record = REGISTRY[cfg.field]
    check_declared(record.options, cfg.options, source)
    check_declared(DEGRADATION_OPTIONS_DECLARED, cfg.options, source)
    degradation = DEGRADATION_REGISTRY[cfg.degradation]
    if degradation.check is not None:
        degradation.check(cfg, source)
    if record.check is not None:
        resolve(record.check)(cfg.field, cfg.options, source, cfg.field_size, cfg.scale)
