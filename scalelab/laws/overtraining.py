"""The over-training law: loss in compute C and the token multiplier M = D/N.

Gadre et al. 2024, "Language models scale reliably with over-training and on downstream
tasks" (§2, eq. 4): with C = 6·N·D and M = D/N (samples per parameter; Chinchilla's
optimum is M ≈ 20 for language models),

    L(C, M) = E + (a·M^eta + b·M^(−eta))·C^(−eta),

Chinchilla's E + A/N^alpha + B/D^beta with one exponent (alpha = beta = 2·eta,
a = A·6^eta, b = B·6^eta): at a fixed multiplier the loss is a power law in compute whose
exponent does not depend on M, which is what lets a grid of models trained at many
multiples of their size (over-training) be extrapolated in N and M together. Fitted like
every law here (:mod:`scalelab.laws.base`): log L̂ = LSE(e, log a + eta·log M − eta·log C,
log b − eta·log M − eta·log C), Huber loss of log residuals, a grid of starts.
"""

from __future__ import annotations

import numpy as np

from scalelab.laws._objective import softmax_lse
from scalelab.laws.base import Law

#: FLOPs per parameter per sample (Kaplan et al. 2020, §2.1), as in the paper
FLOPS_PER_PARAM_SAMPLE = 6.0


class OvertrainingLaw(Law):
    """Fit ``L = E + (a·M^eta + b·M^(−eta))·C^(−eta)``, C = 6·N·D, M = D/N
    (Gadre et al. 2024, eq. 4).

    >>> law = OvertrainingLaw().fit(runs, params="params", samples="samples", y="val_loss")
    >>> law.predict(N=1e9, D=2e11)        # a 1B model trained on 200 samples per parameter
    """

    param_names = ("E", "a", "b", "eta")
    log_params = frozenset({"E", "a", "b"})
    inputs = {"N": "params", "D": "samples"}
    default_bounds = {"eta": (1e-3, 2.0)}
    formula = "L = E + (a·M^eta + b·M^(−eta))·C^(−eta); C = 6·N·D, M = D/N"
    identified_by = {("N",): ("E", "a", "eta"), ("D",): ("E", "b", "eta")}

    def fit(self, data=None, params="params", samples="samples", y="val_loss",
            group=None) -> "OvertrainingLaw":
        """Fit to the columns ``params`` (N), ``samples`` (D, the data axis) and ``y``."""
        return self._fit(data, {"N": params, "D": samples}, y, group)

    def _log_predict(self, theta, X):
        e, a, b, eta = (theta[..., j] for j in range(4))
        log_n, log_d = np.log(X["N"]), np.log(X["D"])
        log_c = np.log(FLOPS_PER_PARAM_SAMPLE) + log_n + log_d
        log_m = log_d - log_n
        lse, (w_e, w_a, w_b) = softmax_lse(e, a + eta * (log_m - log_c),
                                           b - eta * (log_m + log_c))
        return lse, [w_e, w_a, w_b, w_a * (log_m - log_c) - w_b * (log_m + log_c)]

    def _default_starts(self, X, y):
        log_c = np.log(FLOPS_PER_PARAM_SAMPLE * X["N"] * X["D"])
        span = np.log(max(y.max() - y.min(), 1e-3 * y.max()))
        eta = np.array([0.1, 0.2, 0.35])
        scale = span + np.median(log_c) * eta[:, None] + np.array([-1.0, 1.0])
        return {"E": np.log(y.min()) + np.array([-2.0, -0.3, -0.05]),
                "a": np.unique(scale.ravel()), "b": np.unique(scale.ravel()), "eta": eta}


# ---- candidates of scalelab.laws.predict ----------------------------------------------
def _multipliers_vary(table, columns: dict):
    """None when the runs' samples per parameter M = D/N take 3+ values (rounded to 10%),
    else why the law's a and b cannot be told apart."""
    m = np.log(table[columns["D"]].to_numpy(float) / table[columns["N"]].to_numpy(float))
    if np.unique(np.round(m / np.log(1.1))).size >= 3:
        return None
    return "the runs' samples per parameter (M = D/N) take fewer than 3 values"


def _register():
    from scalelab.laws.registry import Candidate, register_candidate

    register_candidate(Candidate(
        "OvertrainingLaw", "E + (a·M^η + b·M^(−η))·C^(−η), C = 6N{D}, M = {D}/N", "joint",
        lambda ctx: OvertrainingLaw(n_bootstrap=ctx.n_bootstrap, seed=ctx.seed),
        roles=("N", "D"), min_sizes=3, applies=_multipliers_vary, optimum=True, order=32))


_register()
