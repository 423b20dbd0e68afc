"""Laws in parameters N and data D: Chinchilla's and Kaplan's.

- :class:`ChinchillaLaw`: L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022,
  eq. 2 and approach 3, §3.3 and App. D.2), fitted as there and in Epoch AI's replication
  (Besiroglu et al. 2024): a = log A, b = log B, e = log E, log L̂ = LSE(a − alpha·log N,
  b − beta·log D, e), Huber(δ = 1e-3) of log L − log L̂ summed over points, L-BFGS from
  Epoch's grid alpha, beta ∈ {0, 0.5, …, 2}, e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25}
  (4,500 starts), best kept.
- :class:`KaplanLaw`: L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D
  (Kaplan et al. 2020, eq. 1.5), in log form
  log L̂ = alpha_D·LSE((alpha_N/alpha_D)(log N_c − log N), log D_c − log D).
"""

from __future__ import annotations

import numpy as np

from scalelab._estimator import check_is_fitted
from scalelab.laws._objective import softmax_lse
from scalelab.laws.base import Law


class ChinchillaLaw(Law):
    """Fit ``L = E + A/N^alpha + B/D^beta`` (Hoffmann et al. 2022, approach 3).

    >>> law = ChinchillaLaw(drop_highest=5).fit(df, params="Model Size", samples="tokens",
    ...                                         y="loss")
    >>> law.params_                      # E, A, B, alpha, beta
    >>> law.predict(N=7e10, D=1.4e12)
    >>> law.conf_int(0.95); print(law.summary())
    """

    param_names = ("E", "A", "B", "alpha", "beta")
    log_params = frozenset({"E", "A", "B"})
    inputs = {"N": "params", "D": "samples"}
    falls_with = ("N", "D")
    formula = "L = E + A/N^alpha + B/D^beta"
    identified_by = {("N",): ("E", "A", "alpha"), ("D",): ("E", "B", "beta")}

    def fit(self, data=None, params="params", samples="samples", y="val_loss",
            group=None) -> "ChinchillaLaw":
        """Fit to the columns ``params`` (N), ``samples`` (D) and ``y`` of ``data``."""
        return self._fit(data, {"N": params, "D": samples}, y, group)

    def _log_predict(self, theta, X):
        e, a, b, alpha, beta = (theta[..., j] for j in range(5))
        log_n, log_d = np.log(X["N"]), np.log(X["D"])
        lse, (w_e, w_a, w_b) = softmax_lse(e, a - alpha * log_n, b - beta * log_d)
        return lse, [w_e, w_a, w_b, -log_n * w_a, -log_d * w_b]

    def _default_starts(self, X, y):
        # Epoch AI's grid (Besiroglu et al. 2024; analyzing-chinchilla, data_analysis.ipynb)
        return {"E": np.arange(-1.0, 1.5, 0.5), "A": np.arange(0.0, 30.0, 5.0),
                "B": np.arange(0.0, 30.0, 5.0), "alpha": np.arange(0.0, 2.5, 0.5),
                "beta": np.arange(0.0, 2.5, 0.5)}

    def theta_epoch_order(self):
        """The fitted (a, b, e, alpha, beta) in Epoch AI's order and log form."""
        check_is_fitted(self)
        e, a, b, alpha, beta = self.theta_[:5]
        return np.array([a, b, e, alpha, beta])


class KaplanLaw(Law):
    """Fit ``L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D`` (Kaplan et al. 2020, eq. 1.5)."""

    param_names = ("N_c", "D_c", "alpha_N", "alpha_D")
    log_params = frozenset({"N_c", "D_c"})
    inputs = {"N": "params", "D": "samples"}
    falls_with = ("N", "D")
    default_bounds = {"alpha_N": (1e-4, 5.0), "alpha_D": (1e-4, 5.0)}
    formula = "L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D"

    def fit(self, data=None, params="params", samples="samples", y="val_loss",
            group=None) -> "KaplanLaw":
        """Fit to the columns ``params`` (N), ``samples`` (D) and ``y`` of ``data``."""
        return self._fit(data, {"N": params, "D": samples}, y, group)

    def _log_predict(self, theta, X):
        nc, dc, a_n, a_d = (theta[..., j] for j in range(4))
        log_n, log_d = np.log(X["N"]), np.log(X["D"])
        ratio = a_n / a_d
        u_n = ratio * (nc - log_n)
        lse, (w_n, w_d) = softmax_lse(u_n, dc - log_d)
        return a_d * lse, [a_n * w_n, a_d * w_d, w_n * (nc - log_n), lse - w_n * u_n]

    def _default_starts(self, X, y):
        top_n, top_d = np.log(X["N"].max()), np.log(X["D"].max())
        return {"N_c": top_n + np.array([0.0, 5.0, 15.0]), "D_c": top_d + np.array([0.0, 5.0, 15.0]),
                "alpha_N": np.array([0.05, 0.2, 0.6]), "alpha_D": np.array([0.05, 0.2, 0.6])}


# ---- candidates of scalelab.laws.predict ----------------------------------------------
def data_starts(table, columns: dict, y: str, n_col: str = "N", d_col: str = "D") -> dict:
    """Starts for E + A/N^α + B/D^β placed on the data's scale (162 instead of Epoch's
    4,500, which span language-model scales): the floor below the lowest value, each
    term starting at the spread of the values at the median size."""
    values = table[y].to_numpy(float)
    span = np.log(max(values.max() - values.min(), 1e-3 * values.max()))
    exponents = np.array([0.2, 0.5, 1.0])
    log_n = float(np.median(np.log(table[columns[n_col]].to_numpy(float))))
    log_d = float(np.median(np.log(table[columns[d_col]].to_numpy(float))))
    return {"E": np.log(values.min()) + np.array([-2.0, -0.3]),
            "A": span + exponents * log_n, "B": span + exponents * log_d,
            "alpha": exponents, "beta": exponents}


def _register():
    from scalelab.laws.registry import Candidate, register_candidate

    register_candidate(Candidate(
        "ChinchillaLaw", "E + A/N^α + B/{D}^β", "joint",
        lambda ctx: ChinchillaLaw(starts=data_starts(ctx.table, ctx.columns, ctx.y),
                                  n_bootstrap=ctx.n_bootstrap, seed=ctx.seed),
        roles=("N", "D"), min_sizes=3, optimum=True, order=30))
    register_candidate(Candidate(
        "KaplanLaw", "[(N_c/N)^(α_N/α_D) + D_c/{D}]^α_D", "joint",
        lambda ctx: KaplanLaw(n_bootstrap=ctx.n_bootstrap, seed=ctx.seed),
        roles=("N", "D"), min_sizes=3, optimum=True, order=31))


_register()
