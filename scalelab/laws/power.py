"""Laws in one variable: the saturating power law and the smoothly broken power law.

- :class:`PowerLaw`: L(x) = E + A·x^(−alpha), the power law with an irreducible floor
  (Hestness et al. 2017; Kaplan et al. 2020, eq. 1.1–1.3; Henighan et al. 2020), in one
  variable: parameters, samples or compute.
- :class:`BrokenPowerLaw`: the smoothly broken power law with one break of Caballero et
  al. 2023 ("Broken Neural Scaling Laws", eq. 1, n = 1):
  L(x) = E + A·x^(−alpha)·(1 + (x/x_break)^(1/sharpness))^(−alpha_change·sharpness),
  whose exponent moves from alpha to alpha + alpha_change around x_break.

Both are fitted as Hoffmann et al. 2022 fit theirs (see :mod:`scalelab.laws.base`):
log L̂ = LSE(e, log of the power term), Huber loss on log residuals, grid of starts.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from scalelab._errors import TableError
from scalelab.laws._objective import softmax_lse
from scalelab.laws.base import Law


def _check_distinct_x(law: Law, X: dict, fix: str) -> None:
    """Refuse fewer distinct x than free parameters (those not in ``fixed``), naming them."""
    free = [p for p in law.param_names if p not in (law.fixed or {})]
    distinct = np.unique(X["x"]).size
    if distinct < len(free):
        names = ", ".join(free[:-1]) + f" and {free[-1]}" if len(free) > 1 else free[0]
        raise TableError(f"{type(law).__name__}.fit needs at least {len(free)} distinct x "
                         f"values to fit {names}, got {distinct}; {fix}.")


class PowerLaw(Law):
    """Fit ``y = E + A·x^(−alpha)`` robustly; y may be a loss or any positive metric.

    >>> law = PowerLaw().fit(runs, x="params", y="val_loss")
    >>> law.params_                       # E, A, alpha
    >>> law.predict(1e8)                  # or law.predict(x=1e8)
    >>> law.predict_interval(x=1e8, level=0.9)

    ``E`` is fitted through its log, so it is ≥ 0 as an error metric's floor must be;
    bound it further with ``bounds={"E": (0, 1)}`` or fix it with ``fixed={"E": 0.0}``.
    """

    param_names = ("E", "A", "alpha")
    log_params = frozenset({"E", "A"})
    inputs = {"x": "x"}
    falls_with = ("x",)
    default_bounds = {"alpha": (0.0, 5.0)}
    formula = "L = E + A·x^(−alpha)"

    def fit(self, data=None, x="params", y="val_loss", group=None) -> "PowerLaw":
        """Fit to the columns ``x`` and ``y`` of ``data`` (names, or arrays with no table);
        ``group`` names a column whose groups get their own parameters except ``shared``."""
        return self._fit(data, {"x": x}, y, group)

    def _check_inputs(self, X, y):
        super()._check_inputs(X, y)
        _check_distinct_x(self, X, "add runs at more sizes")

    def _log_predict(self, theta, X):
        e, a, alpha = theta[..., 0], theta[..., 1], theta[..., 2]
        log_x = np.log(X["x"])
        lse, (w_e, w_a) = softmax_lse(e, a - alpha * log_x)
        return lse, [w_e, w_a, -log_x * w_a]

    def _default_starts(self, X, y):
        log_x = np.log(X["x"])
        # Epoch's grid for the exponent; scale and floor placed on the data's scale
        alpha = np.arange(0.0, 2.5, 0.5)
        span = np.log(max(y.max() - y.min(), 1e-3 * y.max()))
        a = span + np.median(log_x) * np.array([0.0, 0.25, 0.5, 1.0, 1.5]) + np.array([-2, 0, 2])[:, None]
        return {"E": np.log(y.min()) + np.array([-3.0, -1.0, -0.3, -0.05]),
                "A": np.unique(a.ravel()), "alpha": alpha}


class BrokenPowerLaw(Law):
    """Smoothly broken power law with one break (Caballero et al. 2023, eq. 1)."""

    param_names = ("E", "A", "alpha", "alpha_change", "x_break", "sharpness")
    log_params = frozenset({"E", "A", "x_break", "sharpness"})
    inputs = {"x": "x"}
    default_bounds = {"alpha": (0.0, 5.0), "alpha_change": (-5.0, 5.0),
                      "sharpness": (1e-2, 1e2)}
    formula = "L = E + A·x^(−alpha)·(1 + (x/x_break)^(1/sharpness))^(−alpha_change·sharpness)"

    def fit(self, data=None, x="params", y="val_loss", group=None) -> "BrokenPowerLaw":
        """Fit to the columns ``x`` and ``y`` of ``data``."""
        return self._fit(data, {"x": x}, y, group)

    def _check_inputs(self, X, y):
        super()._check_inputs(X, y)
        _check_distinct_x(self, X, "add runs or use PowerLaw")

    def _log_predict(self, theta, X):
        e, a, alpha, change, log_break, log_sharp = (theta[..., j] for j in range(6))
        log_x = np.log(X["x"])
        sharp = np.exp(log_sharp)
        z = (log_x - log_break) / sharp
        soft = np.logaddexp(0.0, z)
        sig = expit(z)
        term = a - alpha * log_x - change * sharp * soft
        lse, (w_e, w_t) = softmax_lse(e, term)
        return lse, [w_e, w_t, -log_x * w_t, -sharp * soft * w_t, change * sig * w_t,
                     sharp * change * (z * sig - soft) * w_t]

    def _default_starts(self, X, y):
        log_x = np.log(X["x"])
        span = np.log(max(y.max() - y.min(), 1e-3 * y.max()))
        return {"E": np.log(y.min()) + np.array([-2.0, -0.3]),
                "A": span + log_x.min() * np.array([0.0, 0.5]),
                "alpha": np.array([0.0, 0.5]),
                "alpha_change": np.array([-0.5, 0.5, 1.0]),
                "x_break": np.quantile(log_x, [0.25, 0.5, 0.75]),
                "sharpness": np.log([0.3, 1.0])}


# ---- candidates of scalelab.laws.predict ----------------------------------------------
def _register():
    from scalelab.laws.registry import Candidate, register_candidate

    def opts(ctx):
        return dict(n_bootstrap=ctx.n_bootstrap, seed=ctx.seed)

    register_candidate(Candidate(
        "PowerLaw", "E + A·{x}^(−α)", "slice", lambda ctx: PowerLaw(**opts(ctx)),
        min_sizes=3, order=10))
    # the floor held at a negligible value: the pure power law through every point
    register_candidate(Candidate(
        "PowerLaw(E=0)", "A·{x}^(−α)", "slice",
        lambda ctx: PowerLaw(fixed={"E": 1e-9 * ctx.y_min}, **opts(ctx)),
        min_sizes=2, order=11))
    register_candidate(Candidate(
        "BrokenPowerLaw", "broken power law in {x}", "slice",
        lambda ctx: BrokenPowerLaw(**opts(ctx)), min_sizes=6, order=12))
    # one floor per value of the other size, A and α shared: curves that cannot cross
    register_candidate(Candidate(
        "PowerLaw(shared A, α)", "E_{g} + A·{x}^(−α)", "grouped",
        lambda ctx: PowerLaw(shared=("A", "alpha"), **opts(ctx)), min_sizes=3, order=20))


_register()
