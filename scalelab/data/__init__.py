"""Data for downscaling: field generators, real gridded data, degradation operators, (LR, HR) pairs.

Knows nothing of models or sweeps. ``make_pairs`` is the entry the training loop
calls: it returns the training pairs (D samples) and a validation set that never
changes with D; ``make_test_pairs`` returns the held-out test set. Each split draws
from its own seed stream (synthetic fields) or its own block of the data (real
fields, see :mod:`scalelab.data.gridded`), so the splits are deterministic and
disjoint.

Fields (``FIELDS``): ``grf``, ``precip``, ``turbulence`` (synthetic, see
:mod:`scalelab.data.synthetic`), ``dem`` (the shipped real example) and ``gridded``
(any netCDF/zarr file). ``options`` carries their settings: ``slope``,
``wet_fraction``, ``sigma``, ``viscosity``, ``time``, ``path``, ``variable``,
``split_dim``; and the degradation's: ``blur_sigma``, ``lr_noise_std``.

Importing this package is torch-free (``FIELDS`` and ``DEGRADATIONS`` are all a spec
needs); the generators, operators and ``make_pairs`` (:mod:`scalelab.data.pairs`)
load on first use.
"""

from scalelab._lazy import make_lazy
from scalelab.data.names import DEGRADATIONS, FIELDS

_HOMES = {
    **dict.fromkeys(("gaussian_random_field", "precipitation_field", "turbulence_field"),
                    "scalelab.data.synthetic"),
    "radial_power_spectrum": "scalelab.data.spectrum",
    **dict.fromkeys(("block_mean", "bicubic", "gaussian", "degrade"), "scalelab.data.degrade"),
    **dict.fromkeys(("GriddedSource", "example_path", "open_variable"), "scalelab.data.gridded"),
    **dict.fromkeys(("make_fields", "make_pairs", "make_test_pairs"), "scalelab.data.pairs"),
}
__all__ = ["FIELDS", "DEGRADATIONS", *_HOMES]
make_lazy(__name__, _HOMES)
