"""Scaling laws in numeric precision: Kumar et al.'s effective parameters, and the
FP-then-QAT split of Dremov et al.

- :class:`PrecisionLaw` (Kumar et al. 2024, "Scaling Laws for Precision", §3, eq. 3 for
  weights trained in P bits, in the Chinchilla form of Hoffmann et al. 2022, eq. 2):

      L(N, D, P) = E + A·N_eff^(−alpha) + B·D^(−beta),   N_eff = N·(1 − exp(−P/gamma))

  A network whose weights train (fake-)quantized to P bits is worth N_eff < N parameters;
  gamma is the bit width at which it is worth 1 − 1/e of its full-precision self. P is
  the precision the weights see in the forward pass: k for a k-bit QAT run, 16 under bf16
  autocast, 32 in fp32 (``param_bits`` of the runs table, :func:`param_bits`). Fitted
  like every law here (:mod:`scalelab.laws.base`): log L̂ = LSE(e, a − alpha·log N_eff,
  b − beta·log D), Huber on log residuals, a grid of starts, bootstrap intervals.

- :class:`QATFractionLaw`: the loss of an FP-then-QAT run (Dremov et al. 2025,
  "Compute-Optimal Quantization-Aware Training", §3–4) that trains its first (1 − f) of
  D samples in full precision and its last f quantized to P bits. Dremov et al. find that
  the loss-optimal QAT fraction grows with the samples per parameter-byte,
  S = D / (N·P/8) (their tokens-per-parameter-byte, §4.1), and model the loss as
  Chinchilla's plus a QAT penalty. The form here:

      L = E + A·N^(−alpha) + B·D_eff^(−beta) + G·S_fp^phi·S_qat^(−psi),
      D_eff = D·(1 − (1 − eta)·f),   S_fp = (1 − f)·S,   S_qat = f·S

  eta in (0, 1] is what a QAT sample is worth beside a full-precision one (so more QAT
  costs data), and the penalty grows with the FP samples per parameter-byte (the longer
  the FP phase, the more its weights hold in bits QAT must unlearn) and falls with the
  QAT ones. Its optimum f*(N, D, P) (:meth:`QATFractionLaw.optimal_fraction`) rises with
  S as the paper reports. The penalty's form is this module's, written after the paper's
  description (its fitted constants are not reproduced here); f = 1 (QAT from scratch)
  is read as S_fp = 1e-12·S.

:func:`best_bits_under_memory` answers the question the report's precision page asks:
with M bytes for the weights, for each P the largest N with N·P/8 ≤ M, and the law's
loss there — which bit width is best, with the bootstrap's interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scalelab._errors import TableError
from scalelab._estimator import check_is_fitted
from scalelab.laws._objective import softmax_lse
from scalelab.laws.base import Law
from scalelab.runs.table import param_bits  # noqa: F401  (P of the table's rows)

def _log_keep(gamma_log, bits):
    """log(1 − exp(−P/gamma)) and its derivative in log gamma, −u/expm1(u), u = P/gamma."""
    u = bits / np.exp(gamma_log)
    return np.log(-np.expm1(-u)), -u / np.expm1(np.minimum(u, 700.0))


class PrecisionLaw(Law):
    """Fit ``L = E + A·N_eff^−alpha + B·D^−beta``, ``N_eff = N(1 − e^(−P/gamma))``
    (Kumar et al. 2024, eq. 3 in the Chinchilla form).

    >>> law = PrecisionLaw().fit(runs, params="params", samples="samples",
    ...                          bits="param_bits", y="val_loss")
    >>> law.params_["gamma"]; law.conf_int(0.9).loc["gamma"]
    >>> law.predict(N=1e6, D=4096, P=4)
    >>> law.effective_params(N=1e6, P=4)
    """

    param_names = ("E", "A", "B", "alpha", "beta", "gamma")
    log_params = frozenset({"E", "A", "B", "gamma"})
    inputs = {"N": "params", "D": "samples", "P": "bits"}
    default_bounds = {"alpha": (1e-3, 5.0), "beta": (1e-3, 5.0), "gamma": (0.05, 64.0)}
    identified_by = {("N", "P"): ("E", "A", "alpha", "gamma"), ("D",): ("E", "B", "beta")}
    formula = "L = E + A/N_eff^alpha + B/D^beta; N_eff = N·(1 − exp(−P/gamma))"

    def fit(self, data=None, params="params", samples="samples", bits="param_bits",
            y="val_loss", group=None) -> "PrecisionLaw":
        """Fit to the columns ``params`` (N), ``samples`` (D), ``bits`` (P) and ``y``."""
        return self._fit(data, {"N": params, "D": samples, "P": bits}, y, group)

    def _check_inputs(self, X, y):
        law = type(self).__name__
        self._check_positive(X)
        if np.unique(X["P"]).size < 2:
            raise TableError(f"{law}.fit: all runs train at {X['P'][0]:g} bits; gamma needs "
                             f"runs at two or more bit widths (e.g. weight_bits: [3, 4, 8]).")
        if np.unique(X["N"]).size < 2:
            raise TableError(f"{law}.fit: all points have the same params ({X['N'][0]:g}); "
                             f"the law needs runs of two or more sizes.")

    def _log_predict(self, theta, X):
        e, a, b, alpha, beta, g = (theta[..., j] for j in range(6))
        keep, dkeep = _log_keep(g, X["P"])
        log_neff = np.log(X["N"]) + keep
        log_d = np.log(X["D"])
        lse, (w_e, w_a, w_b) = softmax_lse(e, a - alpha * log_neff, b - beta * log_d)
        return lse, [w_e, w_a, w_b, -log_neff * w_a, -log_d * w_b, -alpha * w_a * dkeep]

    def _default_starts(self, X, y):
        span = np.log(max(y.max() - y.min(), 1e-3 * y.max()))
        exponents = np.array([0.2, 0.5, 1.0])
        return {"E": np.log(y.min()) + np.array([-2.0, -0.3]),
                "A": span + np.median(np.log(X["N"])) * exponents,
                "B": span + np.median(np.log(X["D"])) * exponents,
                "alpha": exponents, "beta": exponents, "gamma": np.log([1.0, 3.0])}

    def effective_params(self, N, P) -> np.ndarray:
        """N_eff = N·(1 − exp(−P/gamma)): what N weights trained at P bits are worth."""
        check_is_fitted(self)
        return np.asarray(N, float) * -np.expm1(-np.asarray(P, float) / self.params_["gamma"])


class QATFractionLaw(Law):
    """Fit the loss of FP-then-QAT runs in the QAT fraction f and the samples per
    parameter-byte S = D/(N·P/8) (after Dremov et al. 2025; see the module's docstring).

    >>> law = QATFractionLaw().fit(runs, params="params", samples="samples",
    ...                            fraction="qat_fraction", bits="param_bits")
    >>> law.optimal_fraction(N=1e6, D=1e5, P=4)
    """

    param_names = ("E", "A", "B", "alpha", "beta", "eta", "G", "phi", "psi")
    log_params = frozenset({"E", "A", "B", "G"})
    inputs = {"N": "params", "D": "samples", "F": "fraction", "P": "bits"}
    default_bounds = {"alpha": (1e-3, 5.0), "beta": (1e-3, 5.0), "eta": (1e-3, 1.0),
                      "phi": (1e-3, 3.0), "psi": (1e-3, 3.0)}
    identified_by = {("N",): ("E", "A", "alpha"), ("D", "F", "P"): ("B", "beta", "eta", "G",
                                                                     "phi", "psi")}
    formula = ("L = E + A/N^alpha + B/(D·(1 − (1 − eta)·f))^beta + G·S_fp^phi/S_qat^psi;\n"
               "              S = D/(N·P/8), S_fp = (1 − f)·S, S_qat = f·S")

    def fit(self, data=None, params="params", samples="samples", fraction="qat_fraction",
            bits="param_bits", y="val_loss", group=None) -> "QATFractionLaw":
        """Fit to ``params`` (N), ``samples`` (D, samples seen in all), ``fraction`` (f,
        the QAT share of them), ``bits`` (P, QAT weight bits) and ``y`` of QAT runs."""
        return self._fit(data, {"N": params, "D": samples, "F": fraction, "P": bits}, y, group)

    def _check_inputs(self, X, y):
        law = type(self).__name__
        if ((X["F"] <= 0) | (X["F"] > 1)).any():
            raise TableError(f"{law}.fit: the QAT fraction must be in (0, 1]; fit QAT runs "
                             f"only (weight_bits set), dropping full-precision ones.")
        self._check_positive(X, ("N", "D", "P"))
        if np.unique(X["F"]).size < 3:
            raise TableError(f"{law}.fit: the runs hold {np.unique(X['F']).size} QAT "
                             f"fractions; the law needs three or more (e.g. qat_fraction: "
                             f"[0.1, 0.3, 1.0]).")

    @staticmethod
    def bytes_ratio(N, D, P):
        """S = D/(N·P/8), samples per parameter-byte (Dremov et al. 2025, §4.1)."""
        return np.asarray(D, float) / (np.asarray(N, float) * np.asarray(P, float) / 8.0)

    def _log_predict(self, theta, X):
        e, a, b, alpha, beta, eta, g, phi, psi = (theta[..., j] for j in range(9))
        f = X["F"]
        log_n, log_d = np.log(X["N"]), np.log(X["D"])
        log_s = np.log(self.bytes_ratio(X["N"], X["D"], X["P"]))
        worth = 1.0 - (1.0 - eta) * f
        log_deff = log_d + np.log(worth)
        log_sfp = log_s + np.log(np.maximum(1.0 - f, 1e-12))
        log_sq = log_s + np.log(f)
        lse, (w_e, w_a, w_b, w_g) = softmax_lse(e, a - alpha * log_n, b - beta * log_deff,
                                                g + phi * log_sfp - psi * log_sq)
        return lse, [w_e, w_a, w_b, -log_n * w_a, -log_deff * w_b, -beta * w_b * f / worth,
                     w_g, log_sfp * w_g, -log_sq * w_g]

    def _default_starts(self, X, y):
        span = np.log(max(y.max() - y.min(), 1e-3 * y.max()))
        exponents = np.array([0.3, 0.8])
        return {"E": np.log(y.min()) + np.array([-2.0, -0.3]),
                "A": span + np.median(np.log(X["N"])) * exponents,
                "B": span + np.median(np.log(X["D"])) * exponents,
                "alpha": exponents, "beta": exponents, "eta": np.array([0.5]),
                "G": np.array([span - 1.0, span + 1.0]), "phi": np.array([0.3]),
                "psi": np.array([0.3])}

    def optimal_fraction(self, N, D, P, grid: int = 999) -> np.ndarray:
        """f* in (0, 1]: the QAT fraction of lowest predicted loss at N, D, P."""
        check_is_fitted(self)
        N, D, P = np.broadcast_arrays(*(np.asarray(v, float) for v in (N, D, P)))
        fs = np.linspace(1.0 / grid, 1.0, grid)
        loss = self.predict(N=N[..., None] * np.ones_like(fs), D=D[..., None] * np.ones_like(fs),
                            F=np.broadcast_to(fs, (*N.shape, grid)),
                            P=P[..., None] * np.ones_like(fs))
        out = fs[np.argmin(loss, axis=-1)]
        return out if out.ndim else float(out)


def best_bits_under_memory(law: PrecisionLaw, memory_bytes: float, D: float,
                           bits=(2, 3, 4, 5, 6, 8, 16, 32), level: float = 0.9) -> pd.DataFrame:
    """For each bit width P: the largest N whose weights fit ``memory_bytes`` (N·P/8 ≤ M),
    the law's loss there at D samples with its bootstrap interval, and how often each P is
    best across the bootstrap refits (``share_best``). Sorted by predicted loss."""
    check_is_fitted(law)
    bits = np.asarray(bits, float)
    n = np.floor(8.0 * memory_bytes / bits)
    d = np.full_like(n, float(D))
    pred = np.asarray(law.predict(N=n, D=d, P=bits), float)
    table = pd.DataFrame({"bits": bits.astype(int), "params": n, "prediction": pred})
    if law.bootstrap_params_ is not None:
        boot = law.predict_bootstrap(N=n, D=d, P=bits)
        lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2], axis=0)
        table["lower"], table["upper"] = lo, hi
        table["share_best"] = np.bincount(np.argmin(boot, axis=1), minlength=bits.size) / len(boot)
    return table.sort_values("prediction").reset_index(drop=True)


# ---- candidates of scalelab.laws.predict ----------------------------------------------
def _varies_bits(table, columns: dict):
    """None where the runs train at two or more weight precisions, else why not."""
    if columns["P"] in table.columns and table[columns["P"]].nunique() >= 2:
        return None
    return "the runs train at one weight precision (param_bits)"


def _varies_fraction(table, columns: dict):
    """None where every run is a QAT run and they hold 3+ QAT fractions, else why not."""
    if "weight_bits" not in table.columns or columns["F"] not in table.columns:
        return "the runs hold no QAT fraction"
    if not (pd.to_numeric(table["weight_bits"], errors="coerce").fillna(0) > 0).all():
        return "the table mixes full-precision and QAT runs (the law fits QAT runs only)"
    if table[columns["F"]].nunique() < 3:
        return "the QAT runs hold fewer than 3 QAT fractions"
    return None


def _register():
    from scalelab.laws.registry import Candidate, register_candidate

    register_candidate(Candidate(
        "PrecisionLaw", "E + A/N_eff^α + B/{D}^β, N_eff = N(1 − e^(−P/γ))", "joint",
        lambda ctx: PrecisionLaw(n_bootstrap=ctx.n_bootstrap, seed=ctx.seed),
        roles=("N", "D", "P"), min_sizes=3, applies=_varies_bits, order=36))
    register_candidate(Candidate(
        "QATFractionLaw", "E + A/N^α + B/{D}_eff^β + G·S_fp^φ/S_qat^ψ", "joint",
        lambda ctx: QATFractionLaw(n_bootstrap=ctx.n_bootstrap, seed=ctx.seed),
        roles=("N", "D", "F", "P"), min_sizes=3, applies=_varies_fraction, order=37))


_register()
