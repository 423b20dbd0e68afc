"""Downscaling network families scaled by width and depth.

``build_model(family, width, depth, scale)`` makes a network; ``count_params`` gives
its exact parameter count N and ``forward_flops`` its forward FLOPs per sample,
measured with torch's FLOP counter (``torch.utils.flop_counter``), not estimated
by hand. Knows nothing of data sources or sweeps.

Importing this package is torch-free (``NAMES`` is all a spec needs); the
networks and ``build_model`` (:mod:`scalelab.models.build`) load on first use.
"""

from scalelab._lazy import make_lazy
from scalelab.models.names import NAMES

_HOMES = {"EDSR": "scalelab.models.edsr", "SRCNN": "scalelab.models.srcnn",
          "UNet": "scalelab.models.unet", "Stochastic": "scalelab.models.stochastic",
          "build_model": "scalelab.models.build", "count_params": "scalelab.models.build",
          "forward_flops": "scalelab.models.build"}
__all__ = ["NAMES", *_HOMES]
make_lazy(__name__, _HOMES)
