"""Learning-rate sensitivity across scale: each size's optimal learning rate, how much the
loss suffers away from it, and the laws of both in N.

Wortsman et al. 2023, "Small-scale proxies for large-scale Transformer training
instabilities" (§2, and their Figure 1): sweep the learning rate η at each size, draw the
final loss against η, and summarise each curve by its **LR sensitivity**

    S = E_{η ∈ [a, b]} [ min(ℓ(η), ℓ₀) − min_{η ∈ [a, b]} ℓ(η) ],

the expected gap to the best loss over log-spaced rates in [a, b], where ℓ₀ is the loss at
initialisation: a run that diverged (or ended worse than it started) counts as ℓ₀, never
as missing. Over the rates tried, the expectation is their mean (``estimator="mean"``, as
the paper's log-spaced sweeps take it) or the trapezoid rule in log η
(``estimator="trapezoid"``, the log-uniform expectation for any spacing). A run's ℓ₀ is its
step-0 evaluation, which scalelab's runs record before training (or ``initial=``).

Each size's optimal rate η* is the vertex of a parabola in log₁₀ η fitted to the best
rate tried and up to ``window`` rates on each side that trained (capped loss below ℓ₀);
its interval comes from a parametric bootstrap, redrawing the fitted points with the
residual scale pooled over the sizes' parabolas. Where the parabola's vertex is not inside
the rates it was fitted to (the best rate is the smallest or largest tried, or the points
do not curve upward), the optimum is *not bracketed*: it is reported as the best rate
tried and left out of the law.

Laws in N: η*(N) = a·N^(−b) by least squares of log η* on log N over the bracketed
optima; b's interval is the union of the OLS t-interval (the scatter of the optima about
the line) and the percentile interval of the line refitted to each bootstrap draw of the
optima (the noise of each optimum), so neither is ignored. The sensitivity's trend is
S(N) = S₀ + s·log₁₀ N (OLS; s: change per decade of N, with its t-interval; its predictions
are clipped at 0, as a sensitivity cannot be negative). Under μP
(``parametrization: mup``, Yang et al. 2022) b should be near 0: the optimum transfers
across width; in the standard parametrisation with Adam it falls with width.

>>> sens = LRSensitivity().fit(runs)                 # runs of one setting: sizes × rates
>>> sens.optima_                                       # per N: η*, its interval, S, ...
>>> sens.params_                                       # a, b, sensitivity_slope, ...
>>> sens.predict(params=1e7)                           # η* and S at a larger N, intervals
>>> print(sens.summary()); sens.advice(params=1e7, lr=3e-3)

Torch-free (numpy, pandas, statsmodels).
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import statsmodels.api as sm

from scalelab._errors import InputTypeError, ScalelabError, TableError
from scalelab._estimator import Estimator, check_is_fitted
from scalelab.runs.table import require_columns

#: how the expectation over the rates tried is taken
ESTIMATORS = ("mean", "trapezoid")
#: run statuses whose result counts (a diverged run counts at its initial loss)
COUNTED = ("finished", "diverged")
#: config columns compared between the runs of one size (another setting varying there is
#: a second axis: fit each value apart)
SETTING_COLUMNS = ("family", "width", "depth", "scale", "field", "field_size", "degradation",
                   "samples", "val_samples", "loss_variant", "optimizer", "weight_decay",
                   "batch_size", "steps", "schedule", "warmup_steps", "ensemble_members",
                   "amp", "options", "parametrization")


def _cell_text(value) -> str:
    """A setting's value as text, so dicts (``options``) and NaN compare."""
    if isinstance(value, float) and np.isnan(value):
        return "—"
    return str(value)


def _quadratic_fits(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Least-squares parabolas of each column of ``Y`` (n, B) in ``x`` (n,): (3, B) of
    (c2, c1, c0), y = c2·x² + c1·x + c0."""
    design = np.column_stack([x**2, x, np.ones_like(x)])
    coef, *_ = np.linalg.lstsq(design, Y, rcond=None)
    return coef


def _vertices(coef: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """The minimiser over [lo, hi] of each parabola (3, B): its vertex when it curves upward
    and lies inside, else the lower end point."""
    c2, c1, c0 = coef
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = -c1 / (2 * c2)
    ends = np.where(c2 * lo**2 + c1 * lo <= c2 * hi**2 + c1 * hi, lo, hi)
    inside = (c2 > 0) & (vertex >= lo) & (vertex <= hi)
    return np.where(inside, vertex, ends)


def sensitivity(lrs, losses, initial, lr_range=None, estimator: str = "mean") -> float:
    """Wortsman et al. 2023's LR sensitivity of one size: the mean over the rates in
    ``lr_range`` (all when None) of min(loss, initial) − the lowest of them.

    ``losses`` may hold NaN or inf for runs that diverged (counted at ``initial``);
    ``initial`` is one number or one per rate. ``estimator="trapezoid"`` weighs the rates
    by the trapezoid rule in log η (the expectation over log-uniform η for any spacing).
    """
    if estimator not in ESTIMATORS:
        raise ScalelabError(f"estimator must be one of {', '.join(ESTIMATORS)}, got "
                            f"{estimator!r}.")
    lrs = np.asarray(lrs, dtype=float)
    losses = np.asarray(losses, dtype=float)
    initial = np.broadcast_to(np.asarray(initial, dtype=float), losses.shape)
    capped = np.where(np.isfinite(losses), np.minimum(losses, initial), initial)
    keep = np.ones(lrs.shape, bool) if lr_range is None else (
        (lrs >= lr_range[0] * (1 - 1e-9)) & (lrs <= lr_range[1] * (1 + 1e-9)))
    lrs, capped = lrs[keep], capped[keep]
    if lrs.size == 0:
        return float("nan")
    order = np.argsort(lrs)
    lrs, capped = lrs[order], capped[order]
    gap = capped - capped.min()
    if estimator == "mean" or lrs.size == 1:
        return float(gap.mean())
    x = np.log(lrs)
    if x[-1] == x[0]:
        return float(gap.mean())
    return float(np.trapezoid(gap, x) / (x[-1] - x[0]))


class LRSensitivity(Estimator):
    """Each size's optimal learning rate and LR sensitivity, and their laws in N.

    Hyper-parameters: ``lr_range`` — (a, b) of the sensitivity's expectation (default:
    the rates every size tried, the intersection of their ranges); ``window`` — rates on
    each side of the best one that the parabola takes (default 2: up to 5 points);
    ``estimator`` — ``"mean"`` or ``"trapezoid"``; ``n_bootstrap``, ``level``, ``seed``.
    """

    _fitted_attribute = "params_"

    def __init__(self, lr_range=None, window: int = 2, estimator: str = "mean",
                 n_bootstrap: int = 200, level: float = 0.9, seed: int = 0):
        self.lr_range = lr_range
        self.window = window
        self.estimator = estimator
        self.n_bootstrap = n_bootstrap
        self.level = level
        self.seed = seed

    # ---- checks -------------------------------------------------------------------------
    def _check_hyper(self) -> None:
        self._check_number("window", integer=True, minimum=1)
        self._check_number("n_bootstrap", integer=True, minimum=0)
        self._check_number("level", minimum=0, exclusive=True, maximum=0.999999)
        self._check_number("seed", integer=True, minimum=0)
        if self.estimator not in ESTIMATORS:
            raise ScalelabError(f"LRSensitivity: estimator must be one of "
                                f"{', '.join(ESTIMATORS)}, got {self.estimator!r}.")
        if self.lr_range is not None:
            ok = (isinstance(self.lr_range, (tuple, list)) and len(self.lr_range) == 2
                  and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                          and np.isfinite(v) and v > 0 for v in self.lr_range)
                  and self.lr_range[0] < self.lr_range[1])
            if not ok:
                raise ScalelabError(f"LRSensitivity: lr_range must be two positive rates "
                                    f"(a, b) with a < b, e.g. (1e-4, 1e-1), got "
                                    f"{self.lr_range!r}.")

    # ---- the runs ------------------------------------------------------------------------
    def _runs(self, runs: pd.DataFrame, lr: str, y: str, size: str, initial, run: str,
              step: str, ignore=()) -> pd.DataFrame:
        """One row per counted run: size, lr, loss (final finite value or NaN), initial,
        diverged, capped, and the settings checked."""
        if not isinstance(runs, pd.DataFrame):
            raise InputTypeError(f"LRSensitivity.fit needs a runs table (pandas DataFrame), got "
                                 f"{type(runs).__name__}; load one with scalelab.load_runs(path).")
        require_columns(runs, lr, y, size, what="LRSensitivity.fit")
        if runs.empty:
            raise TableError("LRSensitivity.fit: the runs table is empty; run a sweep over "
                             "learning rates first.")
        table = runs.copy()
        for column in (lr, y, size):
            table[column] = pd.to_numeric(table[column], errors="coerce")
        curves = run in table.columns and step in table.columns
        if not curves:  # one row per run already
            table[run] = np.arange(len(table))
            table[step] = np.nan
        table[step] = pd.to_numeric(table[step], errors="coerce")
        self.left_out_ = []
        if "status" in table.columns:
            status = table["status"].fillna("finished")
            other = table.loc[~status.isin(COUNTED)].drop_duplicates(run)
            if len(other):
                words = ", ".join(f"{n} {s}" for s, n in other["status"].value_counts().items())
                self.left_out_.append(f"left out {len(other)} runs that have no result "
                                      f"({words}).")
            table = table[status.isin(COUNTED)]
        rows = []
        for run_id, g in table.groupby(run, sort=False):
            g = g.sort_values(step, kind="stable")
            values = g[y].to_numpy(dtype=float)
            finite = np.isfinite(values)
            at_zero = g[step].to_numpy() == 0
            status = str(g["status"].iloc[0]) if "status" in g.columns else "finished"
            if initial is None:
                init = float(values[at_zero & finite][0]) if (at_zero & finite).any() else np.nan
            elif isinstance(initial, str):
                init = float(pd.to_numeric(g[initial], errors="coerce").iloc[0])
            else:
                init = float(initial)
            trained = finite & ~at_zero if curves else finite
            loss = float(values[trained][-1]) if trained.any() else np.nan
            diverged = status == "diverged" or not np.isfinite(loss)
            row = {"run": run_id, "size": float(g[size].iloc[0]), "lr": float(g[lr].iloc[0]),
                   "loss": np.nan if diverged else loss, "initial": init,
                   "diverged": bool(diverged)}
            for column in SETTING_COLUMNS:
                if column in g.columns and column != size and column not in ignore:
                    row[f"setting:{column}"] = _cell_text(g[column].iloc[0])
            rows.append(row)
        frame = pd.DataFrame(rows)
        if frame.empty:
            raise TableError("LRSensitivity.fit: no run of the table has a result (finished or "
                             "diverged); run the sweep first.")
        bad = ~((frame["size"] > 0) & np.isfinite(frame["size"]))
        bad |= ~((frame["lr"] > 0) & np.isfinite(frame["lr"]))
        if bad.any():
            raise TableError(f"LRSensitivity.fit: {int(bad.sum())} runs have a {size} or {lr} "
                             f"that is missing or not positive; correct or drop them.")
        if isinstance(initial, str) or initial is None:  # a size's median for runs without
            median = frame.groupby("size")["initial"].transform("median")
            frame["initial"] = frame["initial"].fillna(median)
        if frame["initial"].isna().any():
            where = frame.loc[frame["initial"].isna(), "size"].iloc[0]
            raise TableError(f"LRSensitivity.fit: no run at {size} = {where:g} has its loss at "
                             f"initialisation (a step-0 row of {y}, which scalelab's runs "
                             f"record); pass initial= a column or a number.")
        frame["capped"] = np.where(frame["diverged"], frame["initial"],
                                   np.minimum(frame["loss"], frame["initial"]))
        # finished, but no better than at initialisation: counted at ℓ0 too, and flagged
        frame["above_initial"] = ~frame["diverged"] & (frame["loss"] >= frame["initial"])
        self._check_settings(frame, size)
        return frame

    def _check_settings(self, frame: pd.DataFrame, size: str) -> None:
        """Refuse runs of one size that differ in a setting other than the rate and seed."""
        for column in [c for c in frame.columns if c.startswith("setting:")]:
            varying = frame.groupby("size")[column].nunique()
            if (varying > 1).any():
                name = column.removeprefix("setting:")
                values = ", ".join(sorted(frame[column].unique())[:4])
                raise TableError(f"LRSensitivity.fit: the runs of one {size} differ in {name} "
                                 f"({values}) as well as in the learning rate; fit each value "
                                 f"apart, e.g. lr_sensitivity_by(runs, by={name!r}), or select "
                                 f"one with runs[runs.{name} == ...].")

    # ---- fit ----------------------------------------------------------------------------
    def fit(self, runs: pd.DataFrame, lr: str = "lr", y: str = "val_loss",
            size: str = "params", initial=None, run: str = "run_id",
            step: str = "step", ignore=()) -> "LRSensitivity":
        """Fit to a runs table of several sizes × learning rates (curves or final rows).

        ``lr``: the peak learning rate of each run (the config's ``lr``); ``y``: the loss;
        ``size``: N (or ``width``); ``initial``: each run's loss at initialisation — by
        default its step-0 row of ``y``, else a column name or one number. Diverged runs
        (``status == "diverged"``, or no finite trained value) count at their initial
        loss and are flagged (``diverged`` in :attr:`runs_` and :attr:`points_`), as are
        finished runs that ended no better than they started (``above_initial``). Runs of
        one size that differ in a setting other than the rate and the seed are refused,
        unless that setting is named in ``ignore`` (e.g. a weight decay drawn at random
        with the rate: the curves then mix its values).
        """
        self._reset()
        self._check_hyper()
        ignore = (ignore,) if isinstance(ignore, str) else tuple(ignore or ())
        frame = self._runs(runs, lr, y, size, initial, run, step, ignore)
        self.columns_ = {"lr": lr, "y": y, "size": size}
        self.runs_ = frame.drop(columns=[c for c in frame.columns if c.startswith("setting:")])
        points = (frame.groupby(["size", "lr"], as_index=False)
                  .agg(capped=("capped", "mean"), loss=("loss", "mean"),
                       initial=("initial", "mean"), runs=("run", "size"),
                       diverged=("diverged", "sum"), above_initial=("above_initial", "sum")))
        points[["diverged", "above_initial"]] = points[["diverged", "above_initial"]].astype(int)
        self.points_ = points
        sizes = np.sort(points["size"].unique())
        if sizes.size < 2:
            raise TableError(f"LRSensitivity.fit needs runs at 2 or more values of {size} to "
                             f"fit a law in it, got {sizes.size}; add sizes.")
        lows = points.groupby("size")["lr"].min()
        highs = points.groupby("size")["lr"].max()
        a, b = self.lr_range if self.lr_range is not None else (lows.max(), highs.min())
        if not a < b:
            raise TableError(f"LRSensitivity.fit: the sizes' learning rates share no range "
                             f"(smallest rates {lows.max():g} above largest {highs.min():g}); "
                             f"give lr_range=(a, b).")
        self.lr_range_ = (float(a), float(b))
        few = points.groupby("size")["lr"].nunique()
        if (few < 3).any():
            raise TableError(f"LRSensitivity.fit needs 3 or more learning rates at each "
                             f"{size} (a parabola's vertex), got {int(few.min())} at {size} = "
                             f"{few.idxmin():g}; add rates.")
        self._fit_optima(points, sizes)
        self._fit_laws()
        self.params_ = pd.Series({"a": self._a, "b": self._b,
                                  "sensitivity_intercept": self._s0,
                                  "sensitivity_slope": self._s1}, name="LRSensitivity")
        return self

    def _window(self, g: pd.DataFrame) -> pd.DataFrame:
        """The best rate of one size and up to ``window`` rates on each side that trained."""
        trained = g[g["capped"] < g["initial"] * (1 - 1e-12)].reset_index(drop=True)
        if trained.empty:
            return trained
        best = int(trained["capped"].idxmin())
        return trained.iloc[max(0, best - self.window):best + self.window + 1]

    def _fit_optima(self, points: pd.DataFrame, sizes: np.ndarray) -> None:
        rows, fits = [], []
        for n in sizes:
            g = points[points["size"] == n].sort_values("lr").reset_index(drop=True)
            best = g.loc[g["capped"].idxmin()]
            window = self._window(g)
            row = {"size": float(n), "lrs_tried": int(len(g)), "runs": int(g["runs"].sum()),
                   "diverged": int(g["diverged"].sum()),
                   "above_initial": int(g["above_initial"].sum()), "best_lr": float(best["lr"]),
                   "best_loss": float(best["capped"]),
                   "initial": float(g["initial"].median()),
                   "sensitivity": sensitivity(g["lr"], g["capped"], g["initial"],
                                              self.lr_range_, self.estimator),
                   "largest_stable_lr": float(g.loc[g["capped"] < g["initial"], "lr"].max())
                   if (g["capped"] < g["initial"]).any() else np.nan,
                   "smallest_diverged_lr": float(g.loc[g["diverged"] > 0, "lr"].min())
                   if (g["diverged"] > 0).any() else np.nan}
            fit = None
            if len(window) >= 3:
                x = np.log10(window["lr"].to_numpy(dtype=float))
                yv = window["capped"].to_numpy(dtype=float)
                coef = _quadratic_fits(x, yv[:, None])[:, 0]
                lo, hi = x.min(), x.max()
                vertex = -coef[1] / (2 * coef[0]) if coef[0] > 0 else np.nan
                bracketed = bool(coef[0] > 0 and lo < vertex < hi)
                rss = float(np.sum((np.polyval(coef, x) - yv) ** 2))
                fit = {"x": x, "coef": coef, "lo": lo, "hi": hi, "rss": rss,
                       "df": len(x) - 3, "bracketed": bracketed}
                row.update({"lr_opt": float(10**vertex) if bracketed else float(best["lr"]),
                            "loss_opt": float(np.polyval(coef, vertex)) if bracketed
                            else float(best["capped"]), "bracketed": bracketed,
                            "window_points": int(len(x))})
            else:
                row.update({"lr_opt": float(best["lr"]), "loss_opt": float(best["capped"]),
                            "bracketed": False, "window_points": int(len(window))})
            rows.append(row)
            fits.append(fit)
        optima = pd.DataFrame(rows)
        df = sum(f["df"] for f in fits if f is not None)
        self.residual_scale_ = float(np.sqrt(sum(f["rss"] for f in fits if f is not None) / df)) \
            if df > 0 else float("nan")
        # parametric bootstrap of each optimum: the fitted points plus noise of the pooled scale
        rng = np.random.default_rng(self.seed)
        B = int(self.n_bootstrap)
        draws = np.full((len(sizes), B), np.nan)
        q = [(1 - self.level) / 2, (1 + self.level) / 2]
        lower, upper = np.full(len(sizes), np.nan), np.full(len(sizes), np.nan)
        for i, fit in enumerate(fits):
            if fit is None or not fit["bracketed"]:
                continue
            if B and np.isfinite(self.residual_scale_):
                fitted = np.polyval(fit["coef"], fit["x"])
                noisy = fitted[:, None] + rng.normal(0, self.residual_scale_,
                                                     (fit["x"].size, B))
                draws[i] = _vertices(_quadratic_fits(fit["x"], noisy), fit["lo"], fit["hi"])
                lower[i], upper[i] = 10 ** np.quantile(draws[i], q)
        optima["lr_lower"], optima["lr_upper"] = lower, upper
        cols = ["size", "lr_opt", "lr_lower", "lr_upper", "bracketed", "loss_opt", "best_lr",
                "best_loss", "sensitivity", "initial", "largest_stable_lr",
                "smallest_diverged_lr", "lrs_tried", "runs", "diverged", "above_initial",
                "window_points"]
        self.optima_ = optima[cols]
        self.bootstrap_log_lr_ = draws  # (sizes, B) log10 η* draws; NaN where not bracketed

    def _fit_laws(self) -> None:
        optima = self.optima_
        used = optima[optima["bracketed"]]
        self.law_sizes_ = used["size"].to_numpy()
        not_used = optima.loc[~optima["bracketed"], "size"]
        if len(not_used):
            self.left_out_.append(
                f"the optimum is not bracketed by the rates tried at {self.columns_['size']} = "
                + ", ".join(f"{v:.3g}" for v in not_used)
                + " (the best rate is at an end of those that trained, or the loss does not "
                  "curve upward around it), so those sizes are left out of η*(N).")
        self._a = self._b = np.nan
        self.lr_ols_ = None
        self.bootstrap_exponents_ = np.array([])
        self.bootstrap_log_a_ = np.array([])
        if len(used) >= 2:
            log_n = np.log(used["size"].to_numpy(dtype=float))
            log_lr = np.log(used["lr_opt"].to_numpy(dtype=float))
            self.lr_ols_ = sm.OLS(log_lr, sm.add_constant(log_n)).fit()
            intercept, slope = self.lr_ols_.params
            self._a, self._b = float(np.exp(intercept)), float(-slope)
            draws = self.bootstrap_log_lr_[optima["bracketed"].to_numpy()] * np.log(10)
            ok = np.isfinite(draws).all(axis=0)
            if ok.any():
                design = np.column_stack([np.ones_like(log_n), log_n])
                coef, *_ = np.linalg.lstsq(design, draws[:, ok], rcond=None)
                self.bootstrap_log_a_, self.bootstrap_exponents_ = coef[0], -coef[1]
        sens = optima[np.isfinite(optima["sensitivity"])]
        self._s0 = self._s1 = np.nan
        self.sensitivity_ols_ = None
        if len(sens) >= 2:
            x = np.log10(sens["size"].to_numpy(dtype=float))
            self.sensitivity_ols_ = sm.OLS(sens["sensitivity"].to_numpy(dtype=float),
                                           sm.add_constant(x)).fit()
            self._s0, self._s1 = map(float, self.sensitivity_ols_.params)

    # ---- results ------------------------------------------------------------------------
    def conf_int(self, level: float | None = None) -> pd.DataFrame:
        """Intervals of ``a``, ``b`` (η* = a·N^(−b): the union of the OLS t-interval and the
        bootstrap's percentile interval), ``sensitivity_intercept`` and
        ``sensitivity_slope`` (OLS t-intervals; slope per decade of N). NaN where too few
        points (an OLS interval needs 3 sizes)."""
        check_is_fitted(self)
        level = self.level if level is None else level
        out = pd.DataFrame(np.nan, index=list(self.params_.index), columns=["lower", "upper"])
        if self.lr_ols_ is not None and self.lr_ols_.df_resid > 0:
            ci = np.asarray(self.lr_ols_.conf_int(1 - level))
            out.loc["a"] = np.exp(ci[0])
            out.loc["b"] = sorted(-ci[1])
        q = [(1 - level) / 2, (1 + level) / 2]
        if self.bootstrap_exponents_.size:
            for name, values in (("b", self.bootstrap_exponents_),
                                 ("a", np.exp(self.bootstrap_log_a_))):
                lo, hi = np.quantile(values, q)
                cur = out.loc[name]
                out.loc[name] = [np.nanmin([cur["lower"], lo]), np.nanmax([cur["upper"], hi])]
        if self.sensitivity_ols_ is not None and self.sensitivity_ols_.df_resid > 0:
            ci = np.asarray(self.sensitivity_ols_.conf_int(1 - level))
            out.loc["sensitivity_intercept"], out.loc["sensitivity_slope"] = ci[0], ci[1]
        return out

    def predict(self, params=None, level: float | None = None, **sizes) -> pd.DataFrame:
        """η* and the LR sensitivity at sizes ``params`` (or the size column's name as a
        keyword, e.g. ``width=64``), with ``level`` intervals: ``lr_opt``, ``lr_lower``,
        ``lr_upper``, ``sensitivity``, ``sensitivity_lower``, ``sensitivity_upper``."""
        check_is_fitted(self)
        level = self.level if level is None else level
        name = self.columns_["size"]
        if params is None and name in sizes:
            params = sizes.pop(name)
        if sizes or params is None:
            raise ScalelabError(f"LRSensitivity.predict takes the sizes as params=... (or "
                                f"{name}=...), e.g. predict(params=1e7).")
        try:
            n = np.atleast_1d(np.asarray(params, dtype=float))
        except (TypeError, ValueError):
            raise InputTypeError(f"LRSensitivity.predict: sizes must be numbers, got "
                                 f"{str(params)[:40]!r}.") from None
        if not (np.isfinite(n) & (n > 0)).all():
            raise ScalelabError("LRSensitivity.predict: sizes must be positive, finite numbers.")
        out = pd.DataFrame(index=pd.Index(n, name=name))
        q = [(1 - level) / 2, (1 + level) / 2]
        if self.lr_ols_ is None:
            out["lr_opt"] = out["lr_lower"] = out["lr_upper"] = np.nan
        else:
            exog = sm.add_constant(np.log(n), has_constant="add")
            mean = exog @ np.asarray(self.lr_ols_.params)
            out["lr_opt"] = np.exp(mean)
            lo = hi = mean.copy()
            if self.lr_ols_.df_resid > 0:
                frame = self.lr_ols_.get_prediction(exog).summary_frame(alpha=1 - level)
                lo, hi = frame["mean_ci_lower"].to_numpy(), frame["mean_ci_upper"].to_numpy()
            if self.bootstrap_exponents_.size:
                lines = (self.bootstrap_log_a_[:, None]
                         - self.bootstrap_exponents_[:, None] * np.log(n)[None, :])
                b_lo, b_hi = np.quantile(lines, q, axis=0)
                lo, hi = np.minimum(lo, b_lo), np.maximum(hi, b_hi)
            out["lr_lower"], out["lr_upper"] = np.exp(lo), np.exp(hi)
            if self.lr_ols_.df_resid == 0 and not self.bootstrap_exponents_.size:
                out["lr_lower"] = out["lr_upper"] = np.nan
        if self.sensitivity_ols_ is None:
            out["sensitivity"] = out["sensitivity_lower"] = out["sensitivity_upper"] = np.nan
        else:
            # a sensitivity is ≥ 0 (a mean of gaps to the best): the line is clipped there
            exog = sm.add_constant(np.log10(n), has_constant="add")
            out["sensitivity"] = np.maximum(exog @ np.asarray(self.sensitivity_ols_.params), 0)
            if self.sensitivity_ols_.df_resid > 0:
                frame = self.sensitivity_ols_.get_prediction(exog).summary_frame(alpha=1 - level)
                out["sensitivity_lower"] = np.maximum(frame["obs_ci_lower"].to_numpy(), 0)
                out["sensitivity_upper"] = np.maximum(frame["obs_ci_upper"].to_numpy(), 0)
            else:
                out["sensitivity_lower"] = out["sensitivity_upper"] = np.nan
        return out

    def exponent_sentence(self) -> str:
        """η*(N)'s exponent with its interval, in one sentence."""
        check_is_fitted(self)
        symbol = "N" if self.columns_["size"] == "params" else self.columns_["size"]
        if not np.isfinite(self._b):
            return (f"η*({symbol}) not fitted: fewer than 2 sizes have an optimum bracketed by "
                    f"the rates tried.")
        lo, hi = self.conf_int().loc["b"]
        interval = (f" ({self.level:.0%} interval {lo:.3f} to {hi:.3f})" if np.isfinite(lo)
                    else " (no interval: 3 sizes with bracketed optima are needed)")
        return (f"η*({symbol}) = {self._a:.3g}·{symbol}^(−b), b = {self._b:.3f}{interval}, "
                f"from "
                f"{len(self.law_sizes_)} sizes.")

    def sensitivity_sentence(self) -> str:
        """The LR sensitivity's trend in N, in one sentence."""
        check_is_fitted(self)
        symbol = "N" if self.columns_["size"] == "params" else self.columns_["size"]
        o = self.optima_
        values = ", ".join(f"{s:.3g}" for s in o["sensitivity"])
        if not np.isfinite(self._s1):
            return f"LR sensitivity per {symbol}: {values}."
        lo, hi = self.conf_int().loc["sensitivity_slope"]
        interval = (f" ({self.level:.0%} interval {lo:+.3g} to {hi:+.3g})"
                    if np.isfinite(lo) else "")
        trend = ("grows" if np.isfinite(lo) and lo > 0 else "falls" if np.isfinite(hi)
                 and hi < 0 else "shows no clear trend")
        return (f"LR sensitivity over η ∈ [{self.lr_range_[0]:.3g}, {self.lr_range_[1]:.3g}]: "
                f"{values} at {symbol} = " + ", ".join(f"{s:.3g}" for s in o["size"])
                + f"; it {trend} with {symbol}: {self._s1:+.3g} per decade{interval}.")

    def advice(self, params: float, lr: float) -> str:
        """Whether rate ``lr`` is safe for a run of size ``params``: the predicted optimum and
        interval, and the largest size's divergence boundary, in sentences."""
        check_is_fitted(self)
        pred = self.predict(params=params).iloc[0]
        biggest = self.optima_.iloc[-1]
        symbol = "N" if self.columns_["size"] == "params" else self.columns_["size"]
        parts = []
        if np.isfinite(pred["lr_opt"]):
            inside = (np.isfinite(pred["lr_lower"])
                      and pred["lr_lower"] <= lr <= pred["lr_upper"])
            parts.append(f"At {symbol} = {params:.3g} the optimal rate is predicted at "
                         f"{pred['lr_opt']:.3g} ({self.level:.0%} interval "
                         f"{pred['lr_lower']:.3g} to {pred['lr_upper']:.3g}); lr = {lr:.3g} is "
                         f"{lr / pred['lr_opt']:.2g}× it, "
                         + ("inside the interval." if inside else "outside the interval."))
        else:
            parts.append("No law of the optimal rate could be fitted (see left_out_).")
        if np.isfinite(biggest["smallest_diverged_lr"]):
            parts.append(f"At the largest size tried ({symbol} = {biggest['size']:.3g}) runs "
                         f"diverged from lr = {biggest['smallest_diverged_lr']:.3g}"
                         + (" — lr is at or above it: unsafe." if lr >= biggest[
                             "smallest_diverged_lr"] else "."))
        if np.isfinite(pred["sensitivity"]):
            parts.append(f"Predicted LR sensitivity there: {pred['sensitivity']:.3g} (largest "
                         f"size tried: {biggest['sensitivity']:.3g}).")
        return " ".join(parts)

    def summary(self) -> str:
        """The optima per size, the laws with intervals, and what was left out."""
        check_is_fitted(self)
        o = self.optima_
        size = self.columns_["size"]
        lines = [f"LRSensitivity of {self.columns_['y']} over {self.columns_['lr']} "
                 f"(Wortsman et al. 2023); sensitivity over [{self.lr_range_[0]:.3g}, "
                 f"{self.lr_range_[1]:.3g}], {self.estimator}; {self.level:.0%} intervals",
                 f"{size:>12} {'rates':>5} {'runs':>4} {'div':>3} {'best lr':>9} "
                 f"{'η*':>9} {'interval':>21} {'sensitivity':>11}"]
        for _, r in o.iterrows():
            interval = (f"{r['lr_lower']:.3g} – {r['lr_upper']:.3g}"
                        if np.isfinite(r["lr_lower"]) else "—")
            star = f"{r['lr_opt']:.3g}" + ("" if r["bracketed"] else "*")
            lines.append(f"{r['size']:>12.4g} {r['lrs_tried']:>5d} {r['runs']:>4d} "
                         f"{r['diverged']:>3d} {r['best_lr']:>9.3g} {star:>9} {interval:>21} "
                         f"{r['sensitivity']:>11.4g}")
        if not o["bracketed"].all():
            lines.append("* not bracketed: the best rate tried, left out of the law")
        lines.append(self.exponent_sentence())
        lines.append(self.sensitivity_sentence())
        lines.append(f"residual scale of the parabolas (pooled): {self.residual_scale_:.3g}")
        lines += self.left_out_
        return "\n".join(lines)


def lr_sensitivity_by(runs: pd.DataFrame, by, **fit_kwargs) -> dict:
    """One :class:`LRSensitivity` per value of the column(s) ``by`` (e.g.
    ``"parametrization"``): ``{value: fitted, or the sentence why it could not be}``.
    Hyper-parameters of the estimator go in ``estimator_kwargs`` (a dict)."""
    options = dict(fit_kwargs.pop("estimator_kwargs", {}) or {})
    by = [by] if isinstance(by, str) else list(by)
    require_columns(runs, *by, what="lr_sensitivity_by")
    out = {}
    keys = [runs[c].map(_cell_text).rename(c) for c in by]
    for value, g in runs.groupby(keys, sort=True):
        value = value[0] if len(by) == 1 else value
        try:
            out[value] = LRSensitivity(**options).fit(g, **fit_kwargs)
        except ScalelabError as err:
            out[value] = str(err)
    return out
