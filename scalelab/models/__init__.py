"""Downscaling network families scaled by width and depth.

``build_model(family, width, depth, scale, **options)`` makes a network; ``count_params``
gives its exact parameter count N and ``forward_flops`` its forward FLOPs per sample,
measured with torch's FLOP counter (``torch.utils.flop_counter``), not estimated
by hand. Knows nothing of data sources or sweeps.

Families: ``srcnn``, ``edsr``, ``unet`` (convolutional), ``swinir`` (shifted-window
transformer), ``diffusion`` (an EDM denoiser on the U-Net, sampled) and ``irn`` (learned
rescaling: an invertible Haar + coupling network whose forward makes the LR and whose
inverse, with a sampled latent, the HR; Xiao et al. 2020). A generative
family (``diffusion``, ``irn``) trains by its own objective, ``model.training_loss(lr, hr)``,
whose forward FLOPs per sample :func:`training_flops` counts; its ``forward_flops``
is the cost of one evaluated sample, all the sampler's steps.

Each family is one record (:class:`Family` in :data:`FAMILIES`, module
:mod:`scalelab.models.names`): its class, its options with their valid ranges, its
parameter lower bound and its checks; ``build_model`` and the names are built from them.

Importing this package is torch-free (``NAMES``, ``OPTIONS``, ``FAMILIES`` and
``family_options`` are all a spec needs); the networks and ``build_model``
(:mod:`scalelab.models.build`) load
on first use.
"""

from scalelab._lazy import make_lazy
from scalelab.models.names import FAMILIES, NAMES, OPTIONS, Family, family_options

_HOMES = {"EDSR": "scalelab.models.edsr", "SRCNN": "scalelab.models.srcnn",
          "UNet": "scalelab.models.unet", "SwinIR": "scalelab.models.swinir",
          "Diffusion": "scalelab.models.diffusion", "IRN": "scalelab.models.irn",
          "Stochastic": "scalelab.models.stochastic",
          "build_model": "scalelab.models.build", "count_params": "scalelab.models.build",
          "forward_flops": "scalelab.models.build", "training_flops": "scalelab.models.build"}
__all__ = ["NAMES", "OPTIONS", "FAMILIES", "Family", "family_options", *_HOMES]
make_lazy(__name__, _HOMES)
