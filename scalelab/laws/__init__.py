"""Scaling-law forms and their fits; imports numpy/scipy/pandas only (never torch).

Every law is an estimator: ``Law(hyper-parameters).fit(table, column names...)``
returns the fitted law with ``params_``, ``predict(...)`` and ``summary()``.
"""

from scalelab.laws.base import Law, NotFittedError
from scalelab.laws.power import PowerLaw

__all__ = ["Law", "NotFittedError", "PowerLaw"]
