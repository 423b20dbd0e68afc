"""Scaling-law forms and their fits; imports numpy/scipy/pandas only (never torch).

Every law is an estimator: ``Law(hyper-parameters).fit(table, column names...)``
returns the fitted law with ``params_``, ``bse_``, ``conf_int()``, ``predict(...)``,
``predict_interval(...)`` and ``summary()``.
"""

from scalelab.laws.annealing import AnnealingLaw, annealing_areas
from scalelab.laws.allocation import (Allocation, compute_optimal, envelope_allocation,
                                      isoflop_allocation, isoflop_profiles, loss_at_flops)
from scalelab.laws.backtest import backtest
from scalelab.laws.base import Law, NotFittedError
from scalelab.laws.compare import Crossover, crossover
from scalelab.laws.chinchilla import ChinchillaLaw, KaplanLaw
from scalelab.laws.data_constrained import DataConstrainedLaw
from scalelab.laws.power import BrokenPowerLaw, PowerLaw

__all__ = ["Allocation", "AnnealingLaw", "BrokenPowerLaw", "ChinchillaLaw", "Crossover",
           "DataConstrainedLaw", "KaplanLaw", "Law", "NotFittedError", "PowerLaw",
           "annealing_areas", "backtest", "compute_optimal", "crossover",
           "envelope_allocation", "isoflop_allocation", "isoflop_profiles", "loss_at_flops"]
