"""Scaling-law forms and their fits; imports numpy/scipy/pandas only (never torch).

Every law is an estimator: ``Law(hyper-parameters).fit(table, column names...)``
returns the fitted law with ``params_``, ``bse_``, ``conf_int()``, ``predict(...)``,
``predict_interval(...)`` and ``summary()``.

``predict(runs, target="params=2e5")`` fits every law the table allows, backtests each
against persistence and a log–log line, and returns a :class:`Prediction` that says
which law it used, or that none beats persistence.
"""

from scalelab.laws.annealing import AnnealingLaw, ScaledAnnealingLaw, annealing_areas
from scalelab.laws.allocation import (Allocation, compute_optimal, envelope_allocation,
                                      isoflop_allocation, isoflop_profiles, loss_at_flops)
from scalelab.laws.backtest import backtest
from scalelab.laws.base import Law, NotFittedError
from scalelab.laws.compare import Crossover, crossover
from scalelab.laws.chinchilla import ChinchillaLaw, KaplanLaw
from scalelab.laws.data_constrained import DataConstrainedLaw
from scalelab.laws.farseer import FarseerLaw
from scalelab.laws.power import BrokenPowerLaw, PowerLaw
from scalelab.laws.lr_sensitivity import LRSensitivity, lr_sensitivity_by, sensitivity
from scalelab.laws.overtraining import OvertrainingLaw
from scalelab.laws.precision import PrecisionLaw, QATFractionLaw, best_bits_under_memory
from scalelab.laws.registry import Candidate, register_candidate, registered_candidates
from scalelab.laws.allocation import loss_envelope
from scalelab.laws.prediction import Prediction, predict, predict_many
from scalelab.laws.regime import result_rows, undertrained_runs

__all__ = ["Allocation", "AnnealingLaw", "BrokenPowerLaw", "ChinchillaLaw", "Crossover",
           "Candidate", "DataConstrainedLaw", "FarseerLaw", "KaplanLaw", "Law", "NotFittedError",
           "OvertrainingLaw",
           "PowerLaw", "PrecisionLaw", "Prediction", "QATFractionLaw", "ScaledAnnealingLaw",
           "best_bits_under_memory", "register_candidate",
           "registered_candidates",
           "annealing_areas", "backtest", "compute_optimal", "crossover",
           "envelope_allocation", "isoflop_allocation", "isoflop_profiles", "loss_at_flops",
           "loss_envelope", "predict", "predict_many", "result_rows", "undertrained_runs",
           "LRSensitivity", "lr_sensitivity_by", "sensitivity"]
