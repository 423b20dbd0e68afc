"""scalelab: scaling-law and calibration analysis of downscaling networks.

sweep spec → ``scalelab.sweep`` → ``scalelab.train`` → run store → runs table
(``scalelab.runs``) → ``scalelab.laws`` / ``scalelab.calibration`` → ``scalelab.report``.
Importing ``scalelab`` (and its analysis parts) never imports torch.
"""

__version__ = "0.1.0"

from scalelab._errors import (InputTypeError, ScalelabError, ScalelabWarning, SpecError,
                              TableError)
from scalelab.config import RunConfig
from scalelab.runs import load_runs

__all__ = ["__version__", "InputTypeError", "NotFittedError", "ScalelabError",
           "ScalelabWarning", "SpecError", "TableError", "RunConfig", "load_runs"]


def __getattr__(name: str):
    if name == "NotFittedError":  # made on first use: see scalelab._errors
        from scalelab import _errors

        return _errors.NotFittedError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
