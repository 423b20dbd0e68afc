"""PowerLaw: L(x) = E + A·x^(−alpha), one variable (parameters, samples or compute).

The saturating power law of Hestness et al. 2017 and Kaplan et al. 2020 with an
irreducible floor E (Henighan et al. 2020). Fitted as Hoffmann et al. 2022 fit
their law: parameters in log form (a = log A, e = log E), prediction
log L̂ = LSE(a − alpha·log x, e), Huber loss on log L − log L̂ summed over points,
L-BFGS from a grid of starts, best kept.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import logsumexp

from scalelab._errors import TableError
from scalelab.laws._objective import huber, huber_grad
from scalelab.laws.base import Law


class PowerLaw(Law):
    """Fit ``y = E + A·x^(−alpha)`` robustly.

    >>> law = PowerLaw().fit(runs, x="params", y="val_loss")
    >>> law.params_          # E, A, alpha
    >>> law.predict(1e8)
    """

    param_names = ("E", "A", "alpha")
    formula = "L = E + A·x^(−alpha)"

    def __init__(self, huber_delta: float = 1e-3, alpha_bounds: tuple = (0.0, 5.0)):
        self.huber_delta = huber_delta
        self.alpha_bounds = alpha_bounds

    def fit(self, data: pd.DataFrame | None = None, x="params", y="val_loss") -> "PowerLaw":
        law = type(self).__name__
        xs = self._column(data, x, "x", law)
        ys = self._column(data, y, "y", law)
        if xs.shape != ys.shape:
            raise TableError(f"{law}.fit: x and y have different lengths ({xs.size} vs {ys.size}).")
        if np.isnan(xs).any() or np.isnan(ys).any():
            raise TableError(f"{law}.fit: x or y holds NaN values; drop those rows "
                             f"(e.g. table.dropna(subset=[...])) before fitting.")
        if (xs <= 0).any() or (ys <= 0).any():
            raise TableError(f"{law}.fit: x and y must be positive for a power law in log "
                             f"space; drop or shift the non-positive rows.")
        if np.unique(xs).size < 3:
            raise TableError(f"{law}.fit needs at least 3 distinct x values to fit 3 parameters "
                             f"(E, A, alpha), got {np.unique(xs).size}; add runs at more sizes.")
        self.x_name_ = x if isinstance(x, str) else "x"
        self.y_name_ = y if isinstance(y, str) else "y"
        log_x, log_y = np.log(xs), np.log(ys)
        delta = self.huber_delta

        def objective(theta):
            a, alpha, e = theta
            terms = np.stack([a - alpha * log_x, np.full_like(log_x, e)])
            log_pred = logsumexp(terms, axis=0)
            r = log_y - log_pred
            weights = np.exp(terms - log_pred)  # softmax: d log_pred / d term
            g = -huber_grad(r, delta)
            grad = np.array([np.sum(g * weights[0]), np.sum(g * weights[0] * -log_x),
                             np.sum(g * weights[1])])
            return float(np.sum(huber(r, delta))), grad

        # starts: a grid in the spirit of Hoffmann et al./Epoch (alpha × e × a), placed on
        # the data's scale: e near log(min y), a so that A·x^(−alpha) spans the data's range
        span = np.log(max(ys.max() - ys.min(), 1e-3 * ys.max()))
        centre = np.median(log_x)
        bounds = [(None, None), self.alpha_bounds, (None, None)]
        best = None
        for alpha0, de, da in itertools.product(np.arange(0.0, 2.5, 0.5),
                                                 (-2.0, -0.5, -0.1), (-2.0, 0.0, 2.0)):
            start = np.array([span + da + alpha0 * centre, alpha0, np.log(ys.min()) + de])
            res = minimize(objective, start, jac=True, method="L-BFGS-B", bounds=bounds)
            if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
                best = res
        a, alpha, e = best.x
        self.params_ = pd.Series({"E": np.exp(e), "A": np.exp(a), "alpha": alpha}, name=law)
        self.objective_ = float(best.fun)
        self.n_points_ = int(xs.size)
        self.residuals_ = log_y - np.log(self.predict(xs))
        self.rmse_log_ = float(np.sqrt(np.mean(self.residuals_**2)))
        self.x_range_ = (float(xs.min()), float(xs.max()))
        return self

    def predict(self, x) -> np.ndarray:
        """Predicted y at ``x`` (scalar, array, or a DataFrame holding the fitted x column)."""
        self._check_fitted()
        if isinstance(x, pd.DataFrame):
            x = x[self.x_name_]
        x = np.asarray(x, dtype=float)
        E, A, alpha = self.params_[["E", "A", "alpha"]]
        return E + A * x ** (-alpha)
