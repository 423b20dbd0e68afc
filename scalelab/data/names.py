"""Names of the field generators and degradation operators (torch-free, for validation).

Fields: ``grf`` (Gaussian random field, power-law spectrum), ``precip``
(intermittent precipitation-like field), ``turbulence`` (2-D Navier–Stokes vorticity
snapshot from a pseudo-spectral solver), ``dem`` (the shipped real elevation model,
``scalelab/data/examples``), ``gridded`` (any netCDF/zarr file: ``options`` give
``path`` and ``variable``, see ``docs/data.md``), ``photos`` and ``faces`` (real
photographs and LFW face crops shipped by scikit-image).
"""

FIELDS = ("grf", "precip", "turbulence", "dem", "gridded", "photos", "faces")
DEGRADATIONS = ("block_mean", "bicubic", "gaussian")

# the keys of a run's ``options`` each synthetic field reads (data fields: DATA_KEYS in
# scalelab.data.options), and those every degradation reads (``scalelab.data.pairs``)
FIELD_OPTIONS = {"grf": ("slope",), "precip": ("slope", "wet_fraction", "sigma"),
                 "turbulence": ("viscosity", "time")}
DEGRADATION_OPTIONS = ("lr_noise_std", "blur_sigma")
