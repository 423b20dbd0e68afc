"""Compute-optimal allocation: how to split a compute budget C between parameters N and
data D (Hoffmann et al. 2022, §3).

- Approach 3, :func:`compute_optimal`: from a fitted :class:`ChinchillaLaw` with
  C = k·N·D (k = 6 FLOPs per parameter per sample for a transformer, Kaplan et al. 2020
  §2.1; use the measured FLOPs per parameter-sample of your network otherwise), the
  minimiser of L(N, C/(kN)) is N_opt = G·(C/k)^a, D_opt = G⁻¹·(C/k)^b with
  a = beta/(alpha+beta), b = alpha/(alpha+beta), G = (alpha·A/(beta·B))^(1/(alpha+beta))
  (Hoffmann et al. 2022, eq. 4); intervals from the law's bootstrap refits. D here is
  the samples *seen* (steps × batch, the ``samples_seen`` column), which C counts; it
  equals the distinct samples U (``samples``) only when no sample is seen twice, so
  for multi-epoch runs fit the law with ``samples="samples_seen"``.
- Approach 1, :func:`envelope_allocation`: for each budget C, the run whose training
  curve reaches the lowest loss at C (the envelope of the loss-vs-FLOPs curves) gives
  N_opt(C); a power law N_opt = k·C^a is fitted by least squares in log–log.
- Approach 2, :func:`isoflop_allocation`: for each budget (an IsoFLOP profile), a
  parabola of final loss against log N, its vertex N_opt(C); then the same power law.
  :func:`isoflop_profiles` reads such profiles off training curves instead of final rows.

Both read a run's loss at a budget the same way, :func:`loss_at_flops`: its training
curve interpolated linearly in log FLOPs (Hoffmann et al. 2022, §3.1, smooth the curves
before taking the envelope; here the curve between evaluations is the line in log C).

Approaches 1 and 2 fit log N_opt = log k + a·log C with statsmodels OLS, whose
``conf_int`` gives the interval of the exponent.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm

from scalelab._errors import InputTypeError, ScalelabError, TableError
from scalelab._estimator import check_is_fitted
from scalelab.runs.table import require_columns


def compute_optimal(law, flops, flops_per_param_sample: float = 6.0, level: float = 0.9,
                    group=None) -> pd.DataFrame:
    """N_opt(C), D_opt(C) and the loss there, from a fitted ChinchillaLaw (approach 3).

    Returns a DataFrame indexed by ``flops`` with ``params``, the data axis the law was
    fitted on (``samples_seen`` when its D column was that, else ``samples``), ``loss``
    and, when the law has bootstrap refits, ``params_lower/upper`` and the data axis's
    ``_lower/_upper`` at ``level``.
    """
    from scalelab.laws.chinchilla import ChinchillaLaw

    if not isinstance(law, ChinchillaLaw):
        raise ScalelabError(f"compute_optimal needs a fitted ChinchillaLaw, got "
                            f"{type(law).__name__}; fit L(N, D) = E + A/N^alpha + B/D^beta first.")
    check_is_fitted(law)
    for name, value in (("flops", flops), ("flops_per_param_sample", flops_per_param_sample),
                        ("level", level)):
        if isinstance(value, (bool, np.bool_)) or np.asarray(value).dtype.kind == "b":
            raise InputTypeError(f"compute_optimal: {name} holds True/False, not a number; "
                                 f"give a number (e.g. flops=1e21).")
    if not isinstance(level, numbers.Real) or not 0 < level < 1:
        raise ScalelabError(f"compute_optimal: level must be a number between 0 and 1 (e.g. "
                            f"0.9), got {level!r}.")
    if np.ndim(flops) > 1 or np.size(flops) == 0:
        raise ScalelabError(f"compute_optimal: flops must be one budget or a 1-D list of them, "
                            f"got {np.size(flops)} values of shape {np.shape(flops)}.")
    try:
        flops = np.atleast_1d(np.asarray(flops, dtype=float))
        per_sample = float(flops_per_param_sample)
    except (TypeError, ValueError):
        raise ScalelabError(f"compute_optimal: flops and flops_per_param_sample must be "
                            f"numbers, got {str(flops)[:40]!r} and "
                            f"{str(flops_per_param_sample)[:40]!r}.") from None
    if not (np.isfinite(flops) & (flops > 0)).all() or not (np.isfinite(per_sample)
                                                           and per_sample > 0):
        raise ScalelabError("compute_optimal: flops and flops_per_param_sample must be "
                            "positive, finite numbers (a NaN budget has no optimum).")
    names = ["E", "A", "B", "alpha", "beta"]

    def pick(table: pd.DataFrame) -> np.ndarray:
        cols = [n if n in table.columns else f"{n}[{group}]" for n in names]
        missing = [c for c in cols if c not in table.columns]
        if missing:
            raise ScalelabError(f"compute_optimal: the law was fitted per group; pass group= "
                                f"one of {law.groups_}.")
        return table[cols].to_numpy()

    def optimum(p):
        E, A, B, alpha, beta = (p[:, j:j + 1] for j in range(5))
        G = (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))
        budget = flops[None, :] / flops_per_param_sample
        n_opt = G * budget ** (beta / (alpha + beta))
        d_opt = budget / n_opt
        return n_opt, d_opt, E + A * n_opt**-alpha + B * d_opt**-beta

    axis = "samples_seen" if getattr(law, "column_names_", {}).get("D") == "samples_seen" \
        else "samples"
    n_opt, d_opt, loss = optimum(pick(law.params_.to_frame().T))
    out = pd.DataFrame({"params": n_opt[0], axis: d_opt[0], "loss": loss[0]},
                       index=pd.Index(flops, name="flops"))
    if law.bootstrap_params_ is not None:
        q = [(1 - level) / 2, (1 + level) / 2]
        n_b, d_b, _ = optimum(pick(law.bootstrap_params_))
        out["params_lower"], out["params_upper"] = np.quantile(n_b, q, axis=0)
        out[f"{axis}_lower"], out[f"{axis}_upper"] = np.quantile(d_b, q, axis=0)
    return out


@dataclass
class Allocation:
    """A compute-optimal frontier N_opt(C) = k·C^a fitted in log–log (approach 1 or 2)."""

    frontier: pd.DataFrame  # one row per budget: flops, params (N_opt), loss
    ols: object  # statsmodels OLS results of log N_opt on log C
    approach: str

    @property
    def exponent(self) -> float:
        """a in N_opt ∝ C^a."""
        return float(self.ols.params[1])

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """OLS interval of log k (``log_coefficient``) and a (``exponent``)."""
        ci = np.asarray(self.ols.conf_int(1 - level))
        return pd.DataFrame(ci, index=["log_coefficient", "exponent"], columns=["lower", "upper"])

    def predict(self, flops, level: float = 0.9) -> pd.DataFrame:
        """N_opt at ``flops`` with the OLS interval of the fitted line (``mean_ci``)."""
        flops = np.atleast_1d(np.asarray(flops, dtype=float))
        exog = sm.add_constant(np.log(flops), has_constant="add")
        frame = self.ols.get_prediction(exog).summary_frame(alpha=1 - level)
        return pd.DataFrame({"params": np.exp(frame["mean"].to_numpy()),
                             "lower": np.exp(frame["mean_ci_lower"].to_numpy()),
                             "upper": np.exp(frame["mean_ci_upper"].to_numpy())},
                            index=pd.Index(flops, name="flops"))

    def __repr__(self) -> str:
        lo, hi = self.conf_int(0.95).loc["exponent"]
        return (f"Allocation(approach {self.approach}: N_opt ∝ C^{self.exponent:.3f} "
                f"[95%: {lo:.3f}, {hi:.3f}], {len(self.frontier)} budgets)")


def _power_fit(frontier: pd.DataFrame, approach: str) -> Allocation:
    if len(frontier) < 3:
        raise TableError(f"approach {approach} found optima at {len(frontier)} budgets; at least "
                         f"3 are needed to fit N_opt ∝ C^a, so add runs at more budgets.")
    exog = sm.add_constant(np.log(frontier["flops"].to_numpy()))
    ols = sm.OLS(np.log(frontier["params"].to_numpy()), exog).fit()
    return Allocation(frontier=frontier.reset_index(drop=True), ols=ols, approach=approach)


def _check_numeric(table: pd.DataFrame, columns, what: str) -> None:
    """One sentence when a column that must hold numbers holds words."""
    for column in columns:
        values = table[column]
        if not pd.api.types.is_numeric_dtype(values):
            words = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
            if len(words):
                raise TableError(f"{what}: the column {column!r} must hold numbers, but "
                                 f"{len(words)} rows do not (e.g. {str(words.iloc[0])[:30]!r}); "
                                 f"fix or drop them.")


def _check_budgets(n_budgets, what: str) -> None:
    if not isinstance(n_budgets, (int, np.integer)) or isinstance(n_budgets, bool) \
            or n_budgets < 3:
        raise ScalelabError(f"{what}: n_budgets must be a whole number >= 3 (a power law in C "
                            f"needs 3 budgets), got {n_budgets!r}.")


def _curves(curves: pd.DataFrame, params: str, flops: str, y: str, run: str) -> list:
    """Each run's curve with finite values and positive FLOPs, sorted by FLOPs (2+ rows)."""
    table = curves[(pd.to_numeric(curves[flops], errors="coerce") > 0)
                   & np.isfinite(pd.to_numeric(curves[y], errors="coerce"))
                   & curves[params].notna()]
    runs = [g.sort_values(flops, kind="stable") for _, g in table.groupby(run)]
    return [g for g in runs if len(g) >= 2]


def _interpolate(runs: list, budgets, params: str, flops: str, y: str, run: str) -> pd.DataFrame:
    rows = []
    for budget in np.atleast_1d(np.asarray(budgets, dtype=float)):
        for g in runs:
            f = g[flops].to_numpy(dtype=float)
            if not f[0] <= budget <= f[-1]:
                continue
            loss = float(np.interp(np.log(budget), np.log(f), g[y].to_numpy(dtype=float)))
            rows.append({"flops": float(budget), "run": g[run].iloc[0],
                         "params": float(g[params].iloc[0]), "loss": loss})
    return pd.DataFrame(rows, columns=["flops", "run", "params", "loss"])


def loss_at_flops(curves: pd.DataFrame, budgets, params: str = "params", flops: str = "flops",
                  y: str = "val_loss", run: str = "run_id") -> pd.DataFrame:
    """Each run's ``y`` at each compute budget its training curve reaches.

    ``curves`` holds one row per run × evaluation with the FLOPs spent so far. A run's
    value at budget C is its curve interpolated linearly in log C between the two
    evaluations around C; budgets before a run's first or after its last evaluation are
    not extrapolated (the run has no row there). Rows with NaN ``y`` or no FLOPs, and
    runs with fewer than 2 such rows, are left out.

    Returns a DataFrame with ``flops`` (the budget), ``run``, ``params`` (the run's size)
    and ``loss`` (its ``y`` there), budgets in the order given and runs in ``run`` order.
    """
    require_columns(curves, params, flops, y, run, what="loss_at_flops")
    _check_numeric(curves, (params, flops, y), "loss_at_flops")
    try:
        values = np.atleast_1d(np.asarray(budgets, dtype=float))
    except (TypeError, ValueError):
        raise ScalelabError(f"loss_at_flops: budgets must be numbers of FLOPs, got "
                            f"{budgets!r}.") from None
    if not (np.isfinite(values) & (values > 0)).all():
        raise ScalelabError(f"loss_at_flops: budgets must be positive, finite FLOPs, got "
                            f"{values[~(np.isfinite(values) & (values > 0))][0]:g}.")
    return _interpolate(_curves(curves, params, flops, y, run), budgets, params, flops, y, run)


def loss_envelope(curves: pd.DataFrame, y: str = "val_loss", flops: str = "flops",
                  run: str = "run_id", n_budgets: int = 12, best_so_far: bool = False,
                  from_first_start: bool = False) -> pd.DataFrame:
    """The lowest ``y`` any run reached at each compute (Hoffmann et al. 2022, approach 1).

    Budgets are spaced log-evenly from the second-earliest start of the curves (the
    earliest with ``from_first_start``) to the latest end. A run's value at a budget is
    its curve interpolated linearly in log compute, for runs spanning the budget; with
    ``best_so_far`` it is the best value the run had reached by then, and a run past
    its end keeps its best. Runs with fewer than 2 evaluations with FLOPs > 0 and a
    finite ``y`` are left out. Returns a DataFrame with columns ``flops`` and ``y``.
    """
    table = curves[(curves[flops] > 0) & np.isfinite(pd.to_numeric(curves[y], errors="coerce"))]
    runs = [g.sort_values(flops) for _, g in table.groupby(run)]
    runs = [g for g in runs if len(g) >= 2]
    if not runs:
        raise TableError("no run has a training curve (2+ evaluations with FLOPs > 0) to take "
                         "a loss envelope of; pass the full runs table, not only final rows.")
    starts = np.sort([g[flops].iloc[0] for g in runs])
    lo = starts[0] if from_first_start else starts[min(1, starts.size - 1)]
    hi = max(g[flops].iloc[-1] for g in runs)
    rows = []
    for budget in np.geomspace(lo, hi, n_budgets):
        reached = []
        for g in runs:
            f, values = g[flops].to_numpy(float), g[y].to_numpy(float)
            inside = f[0] <= budget <= f[-1] * (1 + 1e-12)
            at = float(np.interp(np.log(budget), np.log(f), values)) if inside else np.inf
            if best_so_far and budget >= f[0]:
                at = min(at, float(values[f <= budget].min()))
            if np.isfinite(at):
                reached.append(at)
        if reached:
            rows.append({flops: float(budget), y: min(reached)})
    return pd.DataFrame(rows, columns=[flops, y])


def envelope_allocation(curves: pd.DataFrame, params: str = "params", flops: str = "flops",
                        y: str = "val_loss", run: str = "run_id", n_budgets: int = 20) -> Allocation:
    """Chinchilla approach 1: the envelope of loss-vs-FLOPs training curves.

    ``curves`` holds one row per run × evaluation with the run's parameter count, the
    FLOPs spent so far and the loss. For ``n_budgets`` budgets spaced log-evenly over
    the range that at least two runs reach, each run's loss at the budget is interpolated
    (linearly in log FLOPs, :func:`loss_at_flops`) along its curve; the smallest gives
    N_opt(C). Budgets whose best run is the smallest or the largest size are skipped
    (the optimum may lie beyond).
    """
    require_columns(curves, params, flops, y, run, what="envelope_allocation")
    _check_budgets(n_budgets, "envelope_allocation")
    _check_numeric(curves, (params, flops, y), "envelope_allocation")
    runs = _curves(curves, params, flops, y, run)
    if len(runs) < 2:
        raise TableError("envelope_allocation needs training curves (2+ rows each) of at least "
                         "2 runs; pass the full runs table, not only final rows.")
    starts = np.sort([g[flops].iloc[0] for g in runs])
    ends = np.sort([g[flops].iloc[-1] for g in runs])
    lo, hi = starts[1], ends[-2]
    if not hi > lo:
        raise TableError("envelope_allocation: the curves do not overlap in FLOPs; runs must "
                         "share a range of compute.")
    sizes = [float(g[params].iloc[0]) for g in runs]
    at = _interpolate(runs, np.geomspace(lo, hi, n_budgets), params, flops, y, run)
    best = at.loc[at.groupby("flops", sort=False)["loss"].idxmin()]  # first of equal losses
    bracketed = ~best["params"].isin([min(sizes), max(sizes)])  # optimum inside the sizes
    frontier = best.loc[bracketed, ["flops", "params", "loss"]].reset_index(drop=True)
    return _power_fit(frontier, "1 (envelope)")


def isoflop_profiles(curves: pd.DataFrame, params: str = "params", flops: str = "flops",
                     y: str = "val_loss", run: str = "run_id", n_budgets: int = 5) -> pd.DataFrame:
    """IsoFLOP profiles read off training curves: the loss of each size at fixed compute.

    ``n_budgets`` budgets are spaced log-evenly between the median of the runs' first
    and the median of their last FLOPs; at each, every run reaching it gives its loss
    (:func:`loss_at_flops`) and each size keeps its best run. Budgets reached by fewer
    than 2 runs are left out. Returns a DataFrame with ``flops``, ``params``, ``loss``
    and ``best`` (True at each budget's lowest loss), sorted by budget and size.
    """
    require_columns(curves, params, flops, y, run, what="isoflop_profiles")
    if not isinstance(n_budgets, (int, np.integer)) or n_budgets < 1:
        raise ScalelabError(f"isoflop_profiles: n_budgets must be a whole number >= 1, got "
                            f"{n_budgets!r}.")
    _check_numeric(curves, (params, flops, y), "isoflop_profiles")
    runs = _curves(curves, params, flops, y, run)
    if len(runs) < 3:
        raise TableError("IsoFLOP profiles need the training curves (2+ rows each) of at "
                         "least 3 runs; pass the full runs table, not only final rows.")
    lo = np.quantile([g[flops].iloc[0] for g in runs], 0.5)
    hi = np.quantile([g[flops].iloc[-1] for g in runs], 0.5)
    if not hi > lo:
        raise TableError("the runs' curves share no range of compute for IsoFLOP profiles.")
    at = _interpolate(runs, np.geomspace(lo, hi, n_budgets), params, flops, y, run)
    at = at[at.groupby("flops")["run"].transform("size") >= 2]
    profiles = at.groupby(["flops", "params"], as_index=False)["loss"].min()
    profiles["best"] = False
    profiles.loc[profiles.groupby("flops")["loss"].idxmin(), "best"] = True
    return profiles


def isoflop_allocation(runs: pd.DataFrame, params: str = "params", flops: str = "flops",
                       y: str = "val_loss", budget: str | None = None,
                       decimals: int = 1) -> Allocation:
    """Chinchilla approach 2: IsoFLOP profiles.

    ``runs`` holds each run's final row. Runs are grouped by their budget (the column
    ``budget``, or ``flops`` rounded to ``decimals`` in log10); for each budget with 3+
    sizes a parabola of ``y`` against log N is fitted and its vertex is N_opt(C)
    (budgets whose parabola opens downward or whose vertex lies outside the sizes tried
    are skipped, as the minimum is not bracketed).
    """
    require_columns(runs, params, flops, y, *([budget] if budget else []),
                    what="isoflop_allocation")
    _check_numeric(runs, (params, flops, y), "isoflop_allocation")
    table = runs.dropna(subset=[params, flops, y])
    table = table[(table[params] > 0) & (table[flops] > 0) & np.isfinite(table[y])]
    key = table[budget] if budget else np.round(np.log10(table[flops].astype(float)), decimals)
    rows = []
    for _, g in table.groupby(key):
        log_n = np.log(g[params].to_numpy(dtype=float))
        if np.unique(log_n).size < 3:
            continue
        c2, c1, c0 = np.polyfit(log_n, g[y].to_numpy(dtype=float), 2)
        if c2 <= 0:
            continue
        vertex = -c1 / (2 * c2)
        if not log_n.min() <= vertex <= log_n.max():
            continue
        rows.append({"flops": float(g[flops].astype(float).median()), "params": float(np.exp(vertex)),
                     "loss": float(c0 - c1**2 / (4 * c2))})
    return _power_fit(pd.DataFrame(rows, columns=["flops", "params", "loss"]), "2 (IsoFLOP)")
