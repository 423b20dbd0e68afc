"""The loss-curve law with learning-rate annealing (Tissue et al. 2024, eq. 1).

L(s) = L0 + A·S1(s)^(−alpha) − C·S2(s), where over the steps i = 1…s of a run with
learning rates η_i,

- S1 = Σ_i η_i is the forward area (the "distance" travelled), and
- S2 = Σ_i m_i with m_i = λ·m_(i−1) + (η_(i−1) − η_i) is the annealing area: the drops
  of the learning rate, accumulated with momentum λ (0.999 in the paper, eq. 3–4).

One law fitted on whole training curves of several runs (any schedules: constant,
cosine, warmup–stable–decay) predicts the loss at every step of an unseen schedule.
It is fitted with the same robust objective as the other laws (Huber on log residuals,
grid of starts; :mod:`scalelab.laws.base`).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from scalelab._errors import TableError
from scalelab.laws.base import Law
from scalelab.runs.table import require_columns


def annealing_areas(lr, decay: float = 0.999):
    """Forward area S1 and annealing area S2 after each step of a per-step schedule.

    ``lr[i]`` is the learning rate of step i+1 (``lr[0]`` the first step's). Returns two
    arrays of ``len(lr)``: S1 after 1, 2, … steps and S2 after them (Tissue et al. 2024,
    eq. 1–4, with η_0 = η_1 so the first step adds no annealing).
    """
    try:
        if np.asarray(lr).dtype.kind == "b":
            raise TypeError  # True/False would be read as rates 1 and 0
        lr = np.asarray(lr, dtype=float).ravel()
    except (TypeError, ValueError):
        raise TableError(f"annealing_areas: lr must be the learning rate of each step (numbers), "
                         f"got {str(lr)[:40]!r}.") from None
    if not (np.isfinite(lr) & (lr >= 0)).all():
        raise TableError(f"annealing_areas: the learning rates must be finite and >= 0, but "
                         f"{int((~(np.isfinite(lr) & (lr >= 0))).sum())} of {lr.size} are not; "
                         f"check the schedule.")
    if not (isinstance(decay, numbers.Real) and 0 <= decay <= 1):
        raise TableError(f"annealing_areas: decay must be a number in [0, 1], got {decay!r}.")
    forward = np.cumsum(lr)
    drops = np.diff(lr, prepend=lr[:1]) * -1.0
    momentum = np.empty_like(lr)
    m = 0.0
    for i, drop in enumerate(drops):  # a first-order recursion; lr has one entry a step
        m = decay * m + drop
        momentum[i] = m
    return forward, np.cumsum(momentum)


class _CurveLaw(Law):
    """What the laws fitted to training curves share: the momentum ``decay`` of the
    annealing area and the curves table with S1 and S2 at each row."""

    def __init__(self, huber_delta: float = 1e-3, n_bootstrap: int = 200, seed: int = 0,
                 fixed: dict | None = None, bounds: dict | None = None,
                 shared: tuple | None = None, starts: dict | None = None,
                 drop_highest: int = 0, max_iter: int = 1000, method: str = "gauss-newton",
                 decay: float = 0.999):
        super().__init__(huber_delta, n_bootstrap, seed, fixed, bounds, shared, starts,
                         drop_highest, max_iter, method)
        self.decay = decay

    def _start_fit(self) -> None:
        super()._start_fit()
        self._check_number("decay", minimum=0, maximum=1)

    def areas(self, table: pd.DataFrame, step="step", lr="lr_step", run="run_id"):
        """S1 and S2 at each row of a curves table (per run, lr interpolated over steps)."""
        forward = np.empty(len(table))
        anneal = np.empty(len(table))
        groups = table.groupby(run, sort=False).indices if run else {None: np.arange(len(table))}
        for rows in groups.values():
            steps = table[step].to_numpy(dtype=float)[rows]
            rates = table[lr].to_numpy(dtype=float)[rows]
            order = np.argsort(steps)
            every = np.arange(1, int(steps.max()) + 1)
            s1, s2 = annealing_areas(np.interp(every, steps[order], rates[order]), self.decay)
            at = steps.astype(int) - 1
            forward[rows], anneal[rows] = s1[at], s2[at]
        return forward, anneal

    def _curve_table(self, data: pd.DataFrame, step, lr, y, run, *columns) -> pd.DataFrame:
        """The rows at step >= 1 with ``forward_area`` and ``annealing_area`` added."""
        law = type(self).__name__
        require_columns(data, *columns, step, lr, y, *([run] if run else []),
                        what=f"{law}.fit")
        table = data[data[step] >= 1].copy()
        if table.empty:
            raise TableError(f"{law}.fit: no rows with step >= 1; pass training curves with "
                             f"their steps.")
        if table[[step, lr]].isna().any().any():
            raise TableError(f"{law}.fit: the {step!r} or {lr!r} column holds NaN; drop those "
                             f"rows first.")
        table["forward_area"], table["annealing_area"] = self.areas(table, step, lr, run)
        return table


class AnnealingLaw(_CurveLaw):
    """Fit ``L(s) = L0 + A·S1^(−alpha) − C·S2`` on training curves (Tissue et al. 2024).

    >>> law = AnnealingLaw().fit(curves, step="step", lr="lr_step", y="train_loss", run="run_id")

    ``lr_step`` is the learning rate at each curve row in ``scalelab.load_runs`` tables
    (``lr`` there is the config's peak rate); name another column with ``lr=``.
    >>> law.predict_curve(my_schedule)       # loss after each step of a new schedule

    The curves table holds rows of (run, step, learning rate, loss); the learning rate
    between recorded rows is interpolated linearly (exact for linear warmup/decay and
    constant stretches). Rows at step 0 carry no information and are left out.
    """

    param_names = ("L0", "A", "alpha", "C")
    log_params = frozenset({"L0", "A"})
    inputs = {"S1": "forward_area", "S2": "annealing_area"}
    nonnegative_inputs = frozenset({"S2"})
    default_bounds = {"alpha": (0.0, 5.0), "C": (0.0, None)}
    formula = "L = L0 + A·S1^(−alpha) − C·S2"


    def fit(self, data: pd.DataFrame, step="step", lr="lr_step", y="train_loss",
            run: str | None = "run_id") -> "AnnealingLaw":
        """Fit to the curves in ``data``: one row per (run, step) with its lr and loss."""
        self._start_fit()
        table = self._curve_table(data, step, lr, y, run)
        return self._fit(table, {"S1": "forward_area", "S2": "annealing_area"}, y)



    def _check_inputs(self, X, y):
        if (X["S1"] <= 0).any():
            raise TableError(f"{type(self).__name__}.fit: the learning rate must be positive "
                             f"so the forward area grows; check the lr column.")
        if np.unique(X["S1"]).size < 4:
            raise TableError(f"{type(self).__name__}.fit needs curves with at least 4 distinct "
                             f"steps; record more evaluation rows.")

    def _log_predict(self, theta, X):
        l0, a, alpha, c = (theta[..., j] for j in range(4))
        log_s1 = np.log(X["S1"])
        power = np.exp(a - alpha * log_s1)
        loss = np.exp(l0) + power - c * X["S2"]
        with np.errstate(invalid="ignore", divide="ignore"):
            log_loss = np.where(loss > 0, np.log(np.where(loss > 0, loss, 1.0)), np.nan)
            inv = 1.0 / loss
        return log_loss, [np.exp(l0) * inv, power * inv, -log_s1 * power * inv, -X["S2"] * inv]

    def _default_starts(self, X, y):
        span = max(y.max() - y.min(), 1e-3 * y.max())
        log_s1 = np.log(X["S1"])
        alpha = np.array([0.2, 0.5, 1.0])
        return {"L0": np.log(y.min()) + np.array([-1.0, -0.2]),
                "A": np.log(span) + np.array([-1.0, 0.0, 1.0]) + 0 * log_s1.min(),
                "alpha": alpha,
                "C": np.array([0.0, 0.1 * span / max(X["S2"].max(), 1e-12)])}

    def _starts(self, X, ys):
        grid = super()._starts(X, ys)
        # place A so that A·S1^(−alpha) spans the data at the smallest S1
        j_a, j_alpha = self.param_names.index("A"), self.param_names.index("alpha")
        if "A" not in (self.fixed or {}) and "A" not in (self.starts or {}):
            grid[:, j_a] += grid[:, j_alpha] * np.log(X["S1"].min())
        return np.clip(grid, self._lower, self._upper)

    def predict_curve(self, lr) -> np.ndarray:
        """Predicted loss after each step of the per-step learning-rate schedule ``lr``."""
        forward, anneal = annealing_areas(lr, self.decay)
        return self.predict(S1=forward, S2=anneal)


class ScaledAnnealingLaw(_CurveLaw):
    """Fit ``L(N, s) = E + A·N^(−alpha) + B·S1^(−beta) − C·S2`` to the training curves of
    runs of every size at once: Tissue et al. 2024's annealing law (eq. 1) with its floor
    split into the model-size term of Hoffmann et al. 2022 (eq. 2), so every evaluation
    of every run informs the fit (the Hitchhiker's guide, Choshen et al. 2024, §5.2:
    intermediate checkpoints sharpen a law's estimate).

    >>> law = ScaledAnnealingLaw().fit(curves, params="params", step="step", lr="lr_step",
    ...                                y="val_loss", run="run_id")
    >>> law.predict(N=1e7, S1=..., S2=...)   # the areas of the schedule the big run follows
    """

    param_names = ("E", "A", "alpha", "B", "beta", "C")
    log_params = frozenset({"E", "A", "B"})
    inputs = {"N": "params", "S1": "forward_area", "S2": "annealing_area"}
    nonnegative_inputs = frozenset({"S2"})
    default_bounds = {"alpha": (0.0, 5.0), "beta": (0.0, 5.0), "C": (0.0, None)}
    formula = "L = E + A·N^(−alpha) + B·S1^(−beta) − C·S2"
    identified_by = {("N",): ("E", "A", "alpha")}


    def fit(self, data: pd.DataFrame, params="params", step="step", lr="lr_step",
            y="val_loss", run: str | None = "run_id") -> "ScaledAnnealingLaw":
        """Fit to the curves in ``data``: one row per (run, step) with N, lr and loss."""
        self._start_fit()
        table = self._curve_table(data, step, lr, y, run, params)
        return self._fit(table, {"N": params, "S1": "forward_area", "S2": "annealing_area"}, y)


    def _check_inputs(self, X, y):
        if (X["S1"] <= 0).any() or (X["N"] <= 0).any():
            raise TableError(f"{type(self).__name__}.fit: params and the learning rate must be "
                             f"positive (so the forward area grows); check those columns.")

    def _log_predict(self, theta, X):
        e, a, alpha, b, beta, c = (theta[..., j] for j in range(6))
        log_n, log_s1 = np.log(X["N"]), np.log(X["S1"])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # a start far from the data overflows; its rows are NaN and are dropped
            size = np.exp(a - alpha * log_n)
            data = np.exp(b - beta * log_s1)
            loss = np.exp(e) + size + data - c * X["S2"]
            ok = (loss > 0) & np.isfinite(loss)
            log_loss = np.where(ok, np.log(np.where(ok, loss, 1.0)), np.nan)
            inv = 1.0 / loss
            grads = [np.exp(e) * inv, size * inv, -log_n * size * inv, data * inv,
                     -log_s1 * data * inv, -X["S2"] * inv]
        return log_loss, grads

    def _default_starts(self, X, y):
        span = np.log(max(y.max() - y.min(), 1e-3 * y.max()))
        exponents = np.array([0.2, 0.5, 1.0])
        return {"E": np.log(y.min()) + np.array([-1.0, -0.2]),
                "A": span + exponents * np.median(np.log(X["N"])),
                "alpha": exponents,
                "B": span + exponents * np.median(np.log(X["S1"])),
                "beta": exponents,
                "C": np.array([0.0, 0.1 * np.exp(span) / max(X["S2"].max(), 1e-12)])}


# ---- candidates of scalelab.laws.predict ----------------------------------------------
def _register():
    from scalelab.laws.registry import Candidate, register_candidate

    register_candidate(Candidate(
        "ScaledAnnealingLaw", "E + A·N^(−α) + B·S1^(−β) − C·S2 on whole curves", "curves",
        lambda ctx: ScaledAnnealingLaw(n_bootstrap=ctx.n_bootstrap, seed=ctx.seed),
        roles=("N",), min_sizes=3, preference=0.6, order=40))


_register()
