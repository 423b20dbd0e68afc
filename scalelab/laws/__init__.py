"""Scaling-law forms and their fits; imports numpy/scipy/pandas only (never torch).

Every law is an estimator: ``Law(hyper-parameters).fit(table, column names...)``
returns the fitted law with ``params_``, ``bse_``, ``conf_int()``, ``predict(...)``,
``predict_interval(...)`` and ``summary()``.
"""

from scalelab.laws.annealing import AnnealingLaw, annealing_areas
from scalelab.laws.base import Law, NotFittedError
from scalelab.laws.chinchilla import ChinchillaLaw, KaplanLaw
from scalelab.laws.power import BrokenPowerLaw, PowerLaw

__all__ = ["AnnealingLaw", "BrokenPowerLaw", "ChinchillaLaw", "KaplanLaw", "Law", "NotFittedError", "PowerLaw", "annealing_areas"]
