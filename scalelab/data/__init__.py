"""Data for downscaling: field generators, real gridded data, degradation operators, (LR, HR) pairs.

Knows nothing of models or sweeps. ``make_pairs`` is the entry the training loop
calls: it returns the training pairs (D samples) and a validation set that never
changes with D; ``make_test_pairs`` returns the held-out test set. Each split draws
from its own seed stream (synthetic fields) or its own block of the data (real
fields, see :mod:`scalelab.data.gridded`), so the splits are deterministic and
disjoint.

Fields (``FIELDS``): ``grf``, ``precip``, ``turbulence`` (synthetic, see
:mod:`scalelab.data.synthetic`), ``dem`` (the shipped real example), ``gridded``
(any netCDF/zarr file, :mod:`scalelab.data.gridded`) and ``photos``, ``faces`` (real
images shipped by scikit-image, :mod:`scalelab.data.images`). ``options`` carries
their settings: ``slope``, ``wet_fraction``, ``sigma``, ``viscosity``, ``time`` for
the synthetic fields; the data keys of :mod:`scalelab.data.options` (``path``,
``variable``, ``predictors``, ``static``, ``lr_path``, ``transform``, ``split``,
``nan``, ...; all in ``docs/data.md``); and the degradation's: ``blur_sigma``,
``lr_noise_std``.

:func:`make_run_data` is what a run uses: the pairs plus what the metrics need —
the inverse transform to physical units, latitude weights of the validation rows,
and whether the target has missing values to mask. The LR input has the target's
channels first (degraded, or read from a coarse source), then the predictors', then
the static fields' (block-averaged to the LR grid).

Each field is one record (:class:`FieldSource` in :data:`SOURCES`, module
:mod:`scalelab.data.names`): its kind (synthetic, gridded, images), its generator or
reader, its options with their valid ranges and its check; the dispatch is built from
them.

Importing this package is torch-free (``FIELDS``, ``DEGRADATIONS`` and
``check_field_options`` are all a spec needs); the generators, operators and
``make_pairs``/``make_run_data`` (:mod:`scalelab.data.pairs`) load on first use.
"""

from scalelab._lazy import make_lazy
from scalelab.data.names import DEGRADATIONS, FIELDS, SOURCES, FieldSource
from scalelab.data.options import check_field_options

_HOMES = {
    **dict.fromkeys(("gaussian_random_field", "precipitation_field", "turbulence_field"),
                    "scalelab.data.synthetic"),
    "radial_power_spectrum": "scalelab.data.spectrum",
    **dict.fromkeys(("block_mean", "bicubic", "gaussian", "degrade"), "scalelab.data.degrade"),
    **dict.fromkeys(("GriddedSource", "open_variable"), "scalelab.data.gridded"),
    "example_path": "scalelab.data.options",
    **dict.fromkeys(("make_fields", "make_pairs", "make_test_pairs", "make_run_data", "RunData"),
                    "scalelab.data.pairs"),
}
__all__ = ["FIELDS", "DEGRADATIONS", "SOURCES", "FieldSource", "check_field_options", *_HOMES]
make_lazy(__name__, _HOMES)
