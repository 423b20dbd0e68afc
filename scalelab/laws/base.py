"""The estimator contract every scaling law follows (scikit-learn / statsmodels style).

Hyper-parameters go to ``__init__`` and are only stored; ``fit(table, **columns)``
learns and returns ``self``; learned things end with an underscore (``params_``,
``residuals_``, ``n_points_``); ``predict`` takes the same kind of input as ``fit``;
``summary()`` returns a table a reviewer could paste into a paper.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError, TableError


class NotFittedError(ScalelabError):
    """A law was used before ``fit``."""


class Law:
    """Base class: column handling, the fitted-state check and the summary table."""

    #: names of the parameters in ``params_`` order
    param_names: tuple[str, ...] = ()
    #: the formula, printed by ``summary()``
    formula: str = ""

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call "
                                 f".fit(table, ...) first.")

    @staticmethod
    def _column(data, name_or_values, role: str, law: str) -> np.ndarray:
        """Values of a column given by name (with ``data``) or as an array."""
        if isinstance(name_or_values, str):
            if data is None:
                raise TableError(f"{law}.fit got the column name {name_or_values!r} for {role} "
                                 f"but no table; pass the DataFrame as the first argument.")
            if name_or_values not in data.columns:
                have = ", ".join(map(str, list(data.columns)[:12])) or "none"
                raise TableError(f"{law}.fit: the table has no column {name_or_values!r} for "
                                 f"{role} (it has: {have}); name the right column with "
                                 f"{role}=... .")
            values = data[name_or_values]
        else:
            values = name_or_values
        try:
            return np.asarray(values, dtype=float).ravel()
        except (TypeError, ValueError):
            raise TableError(f"{law}.fit: {role} must be numeric.") from None

    def summary(self) -> str:
        """A plain-text table of the fit: parameters, residual error, points used."""
        self._check_fitted()
        lines = [f"{type(self).__name__}: {self.formula}",
                 f"points used: {self.n_points_}   robust objective (Huber δ={self.huber_delta:g}):"
                 f" {self.objective_:.6g}   RMS log-residual: {self.rmse_log_:.4g}"]
        table = self.params_table()
        lines.append(table.to_string(float_format=lambda v: f"{v:.5g}"))
        return "\n".join(lines)

    def params_table(self) -> pd.DataFrame:
        """Parameters as a DataFrame (one row per parameter; intervals where known)."""
        self._check_fitted()
        table = pd.DataFrame({"estimate": self.params_})
        bse = getattr(self, "bse_", None)
        if bse is not None:
            table["std err"] = bse
        return table

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def get_params(self) -> dict:
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {name: getattr(self, name) for name in names}
