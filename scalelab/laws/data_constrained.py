"""The data-constrained scaling law: repeated data and excess parameters decay in value.

Muennighoff et al. 2023, "Scaling Data-Constrained Language Models" (NeurIPS 2023), §3
and App. A, eqs. 5–7: with U_D distinct training samples seen D times in all (R_D =
D/U_D − 1 repetitions), and N parameters,

    L(N, D, U_D) = E + A / N′^alpha + B / D′^beta
    D′ = U_D + U_D·R_D*·(1 − exp(−R_D / R_D*))                       (effective data)
    N′ = U_N + U_N·R_N*·(1 − exp(−R_N / R_N*))                       (effective params)
    U_N = min(N, N_opt(U_D)),   R_N = N / U_N − 1,
    N_opt(D) = G·(D·G)^(beta/alpha),   G = (alpha·A / (beta·B))^(1/(alpha+beta)),

where N_opt(U_D) is the compute-optimal model size of Chinchilla's law for U_D samples
(Hoffmann et al. 2022, eq. 4), so parameters beyond it are "excess" and, like repeated
data, worth less the more of them there are. R_D* and R_N* are the repetition counts at
which the decay reaches 1 − 1/e of its limit. The paper's fit on C4 (datablations
repository, utils/parametric_fit.ipynb and README): A = e^6.2554 ≈ 520.6,
B = e^7.3050 ≈ 1488.5, E = e^0.6255 ≈ 1.869, alpha = beta = 0.35266, R_D* = 15.39,
R_N* = 5.31. With one epoch and no excess parameters (D = U_D, N ≤ N_opt(U_D)) the law is
Chinchilla's.

For a downscaling sweep the "data" are training samples: ``samples`` is U_D (distinct
samples) and ``samples_seen`` is D. A run stopped inside its first epoch (D < U) has seen
D distinct samples: the law counts min(U, D), as the paper does. The law is fitted like every law here
(:mod:`scalelab.laws.base`): log L̂ = LSE(e, a − alpha·log N′, b − beta·log D′), Huber loss
of log residuals, a grid of starts, bootstrap intervals.
"""

from __future__ import annotations

import numpy as np

from scalelab._estimator import check_is_fitted
from scalelab._errors import TableError
from scalelab.laws._objective import softmax_lse
from scalelab.laws.base import Law

#: the paper's fitted constants (datablations README, "Parametric Fit"), natural units
MUENNIGHOFF_2023 = {"E": float(np.exp(0.6254804)), "A": float(np.exp(6.255414)),
                    "B": float(np.exp(7.3049974)), "alpha": 0.3526596, "beta": 0.3526596,
                    "R_D_star": 15.387756, "R_N_star": 5.309743}


def _decayed(log_r_star, repetitions):
    """q = R*·(1 − exp(−R/R*)), dq/d(log R*) and exp(−R/R*), for the effective count
    U·(1 + q)."""
    r_star = np.exp(log_r_star)
    with np.errstate(over="ignore"):
        x = np.minimum(repetitions / r_star, 1e3)  # exp(−x) is 0 beyond, as is x·exp(−x)
    decay = np.exp(-x)
    q = -r_star * np.expm1(-x)
    return q, r_star * (-np.expm1(-x) - x * decay), decay


class DataConstrainedLaw(Law):
    """Fit ``L = E + A/N′^alpha + B/D′^beta`` with repeated data and excess parameters
    discounted (Muennighoff et al. 2023, eqs. 5–7).

    >>> law = DataConstrainedLaw().fit(runs, params="params", samples_seen="samples_seen",
    ...                                samples="samples", y="val_loss")
    >>> law.params_                       # E, A, B, alpha, beta, R_D_star, R_N_star
    >>> law.predict(N=1e6, D=5e5, U=1e4)  # 50 epochs of 10^4 distinct samples
    >>> law.effective_data(D=5e5, U=1e4)  # D′

    Fix the Chinchilla part to a previous fit and fit only the decay constants, as the
    paper does, with ``fixed={"E": ..., "A": ..., "B": ..., "alpha": ..., "beta": ...}``.
    """

    param_names = ("E", "A", "B", "alpha", "beta", "R_D_star", "R_N_star")
    log_params = frozenset({"E", "A", "B", "R_D_star", "R_N_star"})
    inputs = {"N": "params", "D": "samples_seen", "U": "samples"}
    identified_by = {("N",): ("E", "A", "alpha"), ("D", "U"): ("E", "B", "beta")}
    default_bounds = {"alpha": (1e-3, 5.0), "beta": (1e-3, 5.0),
                      "R_D_star": (1e-2, 1e5), "R_N_star": (1e-2, 1e5)}
    formula = ("L = E + A/N'^alpha + B/D'^beta; D' = U·(1 + R_D*·(1 − exp(−(D/U − 1)/R_D*))),\n"
               "              N' = U_N·(1 + R_N*·(1 − exp(−(N/U_N − 1)/R_N*))), "
               "U_N = min(N, N_opt(U))")

    def fit(self, data=None, params="params", samples_seen="samples_seen", samples="samples",
            y="val_loss", group=None) -> "DataConstrainedLaw":
        """Fit to the columns ``params`` (N), ``samples_seen`` (D, samples seen in all),
        ``samples`` (U, distinct samples) and ``y`` of ``data``."""
        return self._fit(data, {"N": params, "D": samples_seen, "U": samples}, y, group)

    def _check_inputs(self, X, y):
        law = type(self).__name__
        self._check_positive(X)
        for symbol in ("N", "D"):
            if np.unique(X[symbol]).size < 2:
                raise TableError(f"{law}.fit: all points have the same {self.inputs[symbol]} "
                                 f"({X[symbol][0]:g}); the law needs runs at two or more "
                                 f"values, so add runs of other sizes.")

    # ---- the law ----------------------------------------------------------------------
    def _log_predict(self, theta, X):
        e, a, b, alpha, beta, r_d, r_n = (theta[..., j] for j in range(7))
        # a run stopped inside its first epoch has seen min(U, D) distinct samples
        # (Muennighoff et al. 2023, App. A: U_D = min(D, unique samples))
        X = {**X, "U": np.minimum(X["U"], X["D"])}
        log_n, log_u = np.log(X["N"]), np.log(X["U"])
        # effective data D′ = U·(1 + q_D)
        reps_d = np.maximum(X["D"] / X["U"] - 1.0, 0.0)
        q_d, dq_d, _ = _decayed(r_d, reps_d)
        log_dp = log_u + np.log1p(q_d)
        dlogdp_rd = dq_d / (1 + q_d)
        # base parameters U_N = min(N, N_opt(U)), log N_opt = c/alpha + (beta/alpha)·log U
        c = np.log(alpha) + a - np.log(beta) - b
        log_opt = c / alpha + beta / alpha * log_u
        excess = log_opt < log_n
        log_un = np.where(excess, log_opt, log_n)
        # N/U_N beyond e^700 (a start far from the data) is as good as infinite
        log_ratio = np.minimum(log_n - log_un, 700.0)
        reps_n = np.expm1(log_ratio)
        q_n, dq_n, decay_n = _decayed(r_n, reps_n)
        log_np = log_un + np.log1p(q_n)
        dlognp_rn = dq_n / (1 + q_n)
        # d log N′ / d log U_N where U_N = N_opt(U), zero where U_N = N
        dlognp_un = np.where(excess, 1.0 - np.exp(log_ratio - reps_n / np.exp(r_n)) / (1 + q_n),
                             0.0)
        d_un_a = 1.0 / alpha
        d_un_alpha = (1.0 - c - beta * log_u) / alpha**2
        d_un_beta = (log_u - 1.0 / beta) / alpha
        lse, (w_e, w_a, w_b) = softmax_lse(e, a - alpha * log_np, b - beta * log_dp)
        k = -alpha * w_a * dlognp_un  # d LSE / d log U_N
        return lse, [w_e,
                     w_a + k * d_un_a,
                     w_b - k * d_un_a,
                     -log_np * w_a + k * d_un_alpha,
                     -log_dp * w_b + k * d_un_beta,
                     -beta * w_b * dlogdp_rd,
                     -alpha * w_a * dlognp_rn]

    def _default_starts(self, X, y):
        span = np.log(max(y.max() - y.min(), 1e-3 * y.max()))
        exponents = np.array([0.1, 0.3, 0.6])
        return {"E": np.log(y.min()) + np.array([-2.0, -0.3, -0.05]),
                "A": span + np.median(np.log(X["N"])) * exponents,
                "B": span + np.median(np.log(X["D"])) * exponents,
                "alpha": exponents, "beta": exponents,
                "R_D_star": np.log([3.0, 30.0]), "R_N_star": np.log([3.0, 30.0])}

    # ---- what the law says about a run ------------------------------------------------
    def effective_data(self, D, U) -> np.ndarray:
        """D′, the distinct-sample equivalent of D samples seen drawn from U distinct ones."""
        check_is_fitted(self)
        D, U = np.asarray(D, dtype=float), np.asarray(U, dtype=float)
        U = np.minimum(U, D)
        r_star = self.params_["R_D_star"]
        return U * (1 - r_star * np.expm1(-np.maximum(D / U - 1, 0) / r_star))

    def effective_params(self, N, U) -> np.ndarray:
        """N′, the parameters a model of N is worth when trained on U distinct samples."""
        check_is_fitted(self)
        N, U = np.asarray(N, dtype=float), np.asarray(U, dtype=float)
        p = self.params_
        u_n = np.minimum(N, compute_optimal_params(U, p["A"], p["B"], p["alpha"], p["beta"]))
        return u_n * (1 - p["R_N_star"] * np.expm1(-(N / u_n - 1) / p["R_N_star"]))


def compute_optimal_params(samples, A, B, alpha, beta):
    """N_opt(D) = G·(D·G)^(beta/alpha), G = (alpha·A/(beta·B))^(1/(alpha+beta)): the
    parameters that minimise A/N^alpha + B/D^beta at compute ∝ N·D, as a function of D
    (Hoffmann et al. 2022, eq. 4; Muennighoff et al. 2023, App. A)."""
    G = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    return G * (np.asarray(samples, dtype=float) * G) ** (beta / alpha)


# ---- candidates of scalelab.laws.predict ----------------------------------------------
def _repeats(table, columns: dict):
    """None where a run saw its data more than once, else why the law does not apply."""
    seen = table[columns["Dseen"]].to_numpy(float)
    distinct = table[columns["U"]].to_numpy(float)
    if (seen > distinct * 1.01).any():
        return None
    return "no run saw its data more than once (samples_seen ≤ samples everywhere)"


def _register():
    from scalelab.laws.chinchilla import data_starts
    from scalelab.laws.registry import Candidate, register_candidate

    def make(ctx):
        starts = data_starts(ctx.table, ctx.columns, ctx.y, d_col="Dseen")
        starts["R_D_star"] = np.log([3.0, 30.0])
        starts["R_N_star"] = np.log([3.0, 30.0])
        return DataConstrainedLaw(starts=starts, n_bootstrap=ctx.n_bootstrap, seed=ctx.seed)

    register_candidate(Candidate(
        "DataConstrainedLaw", "E + A/N'^α + B/D'^β (repeated data decays)", "joint", make,
        roles=("N", "Dseen", "U"), min_sizes=3, applies=_repeats, preference=1.3, order=33))


_register()
