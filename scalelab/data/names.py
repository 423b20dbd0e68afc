"""Names of the field generators and degradation operators (torch-free, for validation).

Fields: ``grf`` (Gaussian random field, power-law spectrum), ``precip``
(intermittent precipitation-like field), ``turbulence`` (2-D Navier–Stokes vorticity
snapshot from a pseudo-spectral solver), ``dem`` (the shipped real elevation model,
``scalelab/data/examples``), ``gridded`` (any netCDF/zarr file: ``options`` give
``path`` and ``variable``).
"""

FIELDS = ("grf", "precip", "turbulence", "dem", "gridded")
DEGRADATIONS = ("block_mean", "bicubic", "gaussian")
