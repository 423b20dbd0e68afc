"""The estimator contract every scaling law follows (scikit-learn / statsmodels style).

Hyper-parameters go to ``__init__`` and are only stored; ``fit(table, **columns)``
learns and returns ``self``; learned things end with an underscore (``params_``,
``bse_``, ``residuals_``, ``n_points_``); ``predict`` takes the same inputs as ``fit``;
``conf_int(level)`` and ``predict_interval(..., level=)`` give bootstrap intervals;
``summary()`` prints a table a reviewer could paste into a paper.

The fit follows Hoffmann et al. 2022 (§D.2) and Epoch AI's replication (Besiroglu et
al. 2024): parameters of scale (A, B, E, ...) are fitted in log form, the prediction is
written in log-sum-exp form, the Huber loss (δ = 1e-3) of log(observed) − log(predicted)
is summed over points and minimised from a full grid of starts, the best kept, by
damped Gauss–Newton on Huber's curvature (``method="gauss-newton"``, the default) or
L-BFGS as Hoffmann et al. and Epoch did (``method="lbfgs"``); both reach the same
optimum. All starts run at once (:mod:`scalelab.laws._optim`), and so do the bootstrap
refits: resampling points is a per-row weight (the count of each point), started from
the full-data optimum, as Epoch started theirs from one point. A fit of many points (past
``GRID_BUDGET`` start × point × parameter values) screens the grid on a seeded random
subsample (its summed Huber loss estimates the full one), polishes the best starts there
and the best two on every point; polish and bootstrap run in batches of ``BATCH_BUDGET``
values, so memory grows with the points alone (1e6 points: seconds, a few hundred MB;
``benchmarks/bench_fit_size.py``). Fits below the budget run exactly as before.

Bad input is refused in one sentence before any work: rows holding NaN or ±inf (never
dropped silently: the fitted points are the table's rows), an empty table, data that is
not a DataFrame or a dict of columns, too few distinct values of an input to identify the
parameters of its term (``identified_by``: E + A/N^alpha needs three distinct N unless E
is fixed), hyper-parameters out of range, and ``predict`` at NaN or non-positive inputs.
Columns are read as numpy would not read them silently wrong: a pandas Series is paired by
its index labels (put in the table's, or the first Series', order; refused when the labels
differ), a 2-D array of several columns is refused rather than flattened, booleans, dates,
durations and complex numbers are refused in ``fit`` and ``predict`` (numpy reads True as
1.0 and a date as nanoseconds), a column name the table holds twice is refused, and so is a
table whose ``loss_variant`` column mixes variants unless ``group=`` keeps them apart. Two
things a fit can do are told as :class:`~scalelab._errors.ScalelabWarning`: ending at a
bound the user gave (``bounds=``; the data pull the parameter beyond), and fitting a y that
rises with a size the law falls in (``falls_with``; its fit is then nearly flat).

What a fit learned is public and fresh: ``fitted_inputs_`` and ``y_`` are the points it
used, ``predict_bootstrap(...)`` the refitted laws' predictions; ``fit`` first forgets
everything an earlier fit learned (:mod:`scalelab._estimator`), and reading a learned
attribute before ``fit`` raises :class:`~scalelab._errors.NotFittedError`.
"""

from __future__ import annotations

import itertools
import numbers
import warnings

import numpy as np
import pandas as pd

from scalelab._errors import (InputTypeError, NotFittedError, ScalelabError,
                              ScalelabWarning, TableError)
from scalelab._estimator import Estimator, check_is_fitted
from scalelab.laws._objective import robust_objective
from scalelab.laws._optim import METHODS, BatchResult, minimize_stage


#: starts polished after the grid phase; the grid phase stops rows that cannot reach them.
#: Rows are not pruned while polished: one may pick up speed and overtake the one ahead.
N_POLISH = 8
#: ``fit`` warns when y rises with an input the law falls in, at this Spearman correlation
RISING_RHO = 0.5
#: the grid phase evaluates every start at every point at once, arrays of starts × points ×
#: parameters; past this many values (and SCREEN_POINTS points) it screens the starts on a
#: random subsample of that size instead, whose summed Huber loss estimates the full one
GRID_BUDGET = 1_000_000
#: the fewest points a screening subsample holds (no fit of this many points is screened)
SCREEN_POINTS = 512
#: after screening, the best N_POLISH starts are polished on the subsample, and this many
#: of them on every point
N_POLISH_ALL = 2
#: rows × points × parameters of one batch of the polish and bootstrap on every point: a
#: large fit runs its rows in batches of this size, so its memory grows with the points only
BATCH_BUDGET = 4_000_000


__all__ = ["Law", "NotFittedError", "check_level", "check_metric_column", "grid_starts"]


def check_level(level) -> float:
    """``level`` as a float if it is a number strictly between 0 and 1 (any real number,
    np.float32 too); one sentence otherwise. ``"90%"`` is refused, not guessed at: a
    string is not a number anywhere else in the API either."""
    number = isinstance(level, numbers.Real) and not isinstance(level, (bool, np.bool_))
    if not number or not 0 < level < 1:
        raise ScalelabError(f"level must be a number between 0 and 1 (e.g. 0.95 for a 95% "
                            f"interval), got {level!r}.")
    return float(level)


def check_metric_column(y, columns) -> str:
    """``y`` if it names a metric among a runs table's ``columns``; one sentence otherwise.

    Refused: a ``y`` that is not a column name, a column the table lacks, and a column
    that is not a measured result: a scaling axis (``params`` N, ``samples`` U,
    ``samples_seen`` D, ``epochs``, ``flops`` C), ``step``, ``run_id`` or a setting of the
    run's configuration (``width``, ``lr``, ...). Predicting ``params`` at ``params=1e8``
    would otherwise return a number (a law through the sizes themselves).
    """
    from scalelab.config import RunConfig
    from scalelab.runs.columns import AXES, axis_label

    if not isinstance(y, str):
        raise InputTypeError(f"y must be the name of a metric column, e.g. 'val_loss', got "
                             f"{type(y).__name__} {str(y)[:40]!r}.")
    if y in AXES:
        raise TableError(f"y={y!r} is a scaling axis ({axis_label(y)}), not a result to "
                         f"predict; name a metric the runs recorded, e.g. y='val_loss'.")
    if y in ("step", "run_id") or y in RunConfig.field_names():
        raise TableError(f"y={y!r} is a run's {'setting' if y != 'step' else 'step count'}, "
                         f"not a result to predict; name a metric the runs recorded, e.g. "
                         f"y='val_loss'.")
    columns = list(columns)
    if y not in columns:
        have = ", ".join(map(str, columns[:12])) or "none"
        raise TableError(f"the runs table has no column {y!r} (it has: {have}); name the "
                         f"metric with y=... .")
    return y


def _count(n: int, noun: str) -> str:
    """``"1 row"``, ``"3 rows"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _one_hot(gather: np.ndarray, n_full: int) -> np.ndarray:
    """The one-hot (n·P, P_full) matrix of a gather map (n, P) of points' parameters."""
    n, P = gather.shape
    scatter = np.zeros((n * P, n_full))
    scatter[np.arange(n * P), gather.ravel()] = 1.0
    return scatter


def _aligned(given: dict, data, law: str, what: str) -> dict:
    """``given`` ({role: name or values}) with pandas Series aligned on the index of the
    table (or of the first Series), as pandas aligns columns: a Series whose index holds
    the same labels in another order is put in that order; one whose labels differ is
    refused (pairing it by position would pair the wrong runs)."""
    series = {role: v for role, v in given.items() if isinstance(v, pd.Series)}
    if not series:
        return given
    if isinstance(data, pd.DataFrame):
        reference, ref_name = data.index, "the table's"
    else:
        ref_role = next(iter(series))
        reference, ref_name = series[ref_role].index, f"{ref_role}'s"
    out = dict(given)
    for role, values in series.items():
        if values.index.equals(reference) or len(values) != len(reference):
            continue  # (different lengths: refused as such by the caller)
        if (values.index.is_unique and reference.is_unique and len(values) == len(reference)
                and values.index.sort_values().equals(reference.sort_values())):
            out[role] = values.reindex(reference)
            continue
        raise TableError(f"{law}.{what}: {role} is a pandas Series whose index labels differ "
                         f"from {ref_name}, so its values cannot be paired with the other "
                         f"columns' by label; select the same rows, or pass .to_numpy() to "
                         f"pair them by position.")
    return out


def _same_grid(given: dict, data) -> dict:
    """Arrays given for every column (no table) that share one N-D shape, e.g. the
    ``np.meshgrid`` of sizes and the losses on it, flattened alike: their elements pair
    one to one. (Arrays of different shapes are left to :func:`_one_column`, which refuses
    one of several columns rather than flatten it against another's points.)"""
    if data is not None or any(isinstance(v, str) for v in given.values()):
        return given
    try:
        shapes = {np.shape(v) for v in given.values()}
    except ValueError:  # a ragged list: refused by _one_column
        return given
    if len(shapes) != 1 or len(next(iter(shapes))) < 2:
        return given
    return {role: np.ravel(v) for role, v in given.items()}


def _one_column(values, role: str, law: str, what: str) -> np.ndarray:
    """``values`` as a 1-D array: one value per point (a single row or column of a 2-D
    array is flattened; a table of several columns is refused, as flattening it would
    pair its values with the wrong points)."""
    if isinstance(values, (pd.Series, pd.Index)):
        return values.to_numpy()
    try:
        array = np.asarray(values)
    except ValueError:  # a ragged list
        raise TableError(f"{law}.{what}: {role} is a ragged list (rows of different "
                         f"lengths); pass one value per point.") from None
    if array.ndim > 1 and sum(size > 1 for size in array.shape) > 1:
        raise TableError(f"{law}.{what}: {role} must hold one value per point (1-D), got an "
                         f"array of shape {array.shape}; pass one column, e.g. "
                         f"{role}[:, 0], or flatten every column alike with .ravel().")
    return array.ravel()


#: dtypes a size or a metric cannot be: booleans, dates, durations, complex numbers
_NOT_A_NUMBER = {"b": "True/False values", "M": "dates", "m": "durations",
                 "c": "complex numbers"}


def _check_numeric_kind(values, name: str, where: str) -> None:
    """Refuse booleans, dates, durations and complex numbers where numbers belong: numpy
    reads True as 1.0 and a date as nanoseconds since 1970, which a law would fit silently."""
    array = values if isinstance(values, np.ndarray) else np.asarray(
        values.to_numpy() if isinstance(values, (pd.Series, pd.Index)) else values,
        dtype=object if isinstance(values, (list, tuple)) else None)
    kind = array.dtype.kind
    if kind == "O" and array.size:
        inferred = pd.api.types.infer_dtype(array.ravel(), skipna=True)
        kind = {"boolean": "b", "datetime": "M", "datetime64": "M", "date": "M",
                "timedelta": "m", "timedelta64": "m", "complex": "c"}.get(inferred, kind)
        if kind == "O" and inferred.startswith("mixed") and any(
                isinstance(v, (bool, np.bool_)) for v in array.ravel()):
            kind = "b"  # e.g. [1e8, True]: numpy would read the True as 1.0
    if kind in _NOT_A_NUMBER:
        raise InputTypeError(f"{where}: {name} holds {_NOT_A_NUMBER[kind]}, not numbers; pass "
                             f"sizes or metric values as numbers (a bool or a date would be "
                             f"read as 1.0 or as nanoseconds).")


def grid_starts(**values) -> np.ndarray:
    """All combinations of the given start values, as rows in keyword order."""
    return np.array(list(itertools.product(*[np.atleast_1d(v) for v in values.values()])),
                    dtype=float)


class Law(Estimator):
    """Base class of the law forms: the fit, the bootstrap, intervals and the summary.

    Parameters (hyper-parameters of every law)
    ----------
    huber_delta : δ of the Huber loss on log residuals (Hoffmann et al.: 1e-3).
    n_bootstrap : resamples of the points for intervals and standard errors (0: none).
    seed : seed of the bootstrap's random generator.
    fixed : ``{name: value}`` parameters held at a value (natural units, e.g. ``{"E": 1.7}``).
    bounds : ``{name: (low, high)}`` bounds in natural units (``None`` for open).
    shared : names of the parameters one value of which serves every group when ``fit``
        gets ``group=`` (e.g. ``("alpha", "beta")`` for one exponent across loss variants);
        the others are fitted per group.
    starts : ``{name: values}`` to replace the default grid of starts for a parameter
        (in the fitted coordinates: the log for A, B, E, ...).
    drop_highest : leave out the k points of highest y before fitting (Epoch AI drop the
        5 highest-loss Chinchilla points); the left-out rows are in ``excluded_``.
    max_iter : iterations when polishing the best starts and refitting resamples (the grid
        of starts gets a quarter of it with L-BFGS, a tenth with Gauss–Newton).
    method : the minimiser, ``"gauss-newton"`` (damped Gauss–Newton on Huber's curvature,
        :func:`scalelab.laws._optim.minimize_gauss_newton`) or ``"lbfgs"`` (batched
        L-BFGS, :func:`scalelab.laws._optim.minimize_batched`); the same optimum, the first
        several times faster.
    Learned by ``fit`` (besides ``params_``, ``bse_``, ``residuals_`` ...): ``fitted_inputs_``
    ``{symbol: values}`` and ``y_``, the points used (after ``drop_highest``), and
    ``fitted_groups_``, their groups (None without ``group=``).
    """

    _fitted_attribute = "params_"

    #: names of the parameters in ``params_`` order
    param_names: tuple[str, ...] = ()
    #: parameters fitted through their logarithm (positive, scale-like)
    log_params: frozenset = frozenset()
    #: the law's inputs, {symbol: keyword of fit() naming its column}
    inputs: dict = {}
    #: default natural-unit bounds of the law
    default_bounds: dict = {}
    #: the formula, printed by ``summary()``
    formula: str = ""
    #: ``{inputs: parameters}``: the parameters of a term in those inputs, which need at
    #: least as many distinct values of the inputs as there are free ones among them to be
    #: identified (E + A/N^alpha with only two distinct N fits every alpha equally well)
    identified_by: dict = {}
    #: inputs that may be 0 at ``predict`` (the others must be positive)
    nonnegative_inputs: frozenset = frozenset()
    #: inputs in which the law falls: ``fit`` warns when y rises with one of them
    falls_with: tuple = ()

    def __init__(self, huber_delta: float = 1e-3, n_bootstrap: int = 200, seed: int = 0,
                 fixed: dict | None = None, bounds: dict | None = None,
                 shared: tuple | None = None, starts: dict | None = None,
                 drop_highest: int = 0, max_iter: int = 1000, method: str = "gauss-newton"):
        self.huber_delta = huber_delta
        self.n_bootstrap = n_bootstrap
        self.seed = seed
        self.fixed = fixed
        self.bounds = bounds
        self.shared = shared
        self.starts = starts
        self.drop_highest = drop_highest
        self.max_iter = max_iter
        self.method = method

    # ---- what a law form provides -------------------------------------------------
    def _log_predict(self, theta, X):  # pragma: no cover - abstract
        """Log prediction (…, n) and its Jacobian, a list of P arrays, for theta (…, 1|n, P)."""
        raise NotImplementedError

    def _default_starts(self, X: dict, y: np.ndarray) -> dict:  # pragma: no cover
        """``{name: start values}`` in fitted coordinates."""
        raise NotImplementedError

    def _check_positive(self, X: dict, symbols=None) -> None:
        """One TableError sentence for the first input (of ``symbols``, default all) holding a
        value <= 0, which a law in log space cannot read."""
        law = type(self).__name__
        for symbol in (X if symbols is None else symbols):
            if (X[symbol] <= 0).any():
                raise TableError(f"{law}.fit: {self.inputs[symbol]} must be positive for a "
                                 f"power law in log space; drop the non-positive rows.")

    def _check_inputs(self, X: dict, y: np.ndarray) -> None:
        """Law-specific checks of the data (raise TableError)."""
        law = type(self).__name__
        self._check_positive(X)
        for symbol, values in X.items():
            if np.unique(values).size < 2:
                raise TableError(f"{law}.fit: all points have the same "
                                 f"{self.inputs[symbol]} ({values[0]:g}); a law in it needs "
                                 f"runs at two or more values, so add runs of other sizes.")

    def _check_identified(self, X: dict) -> None:
        """Refuse a fit whose parameters the inputs cannot tell apart (``identified_by``)."""
        law = type(self).__name__
        for symbols, params in self.identified_by.items():
            free = [p for p in params if p not in (self.fixed or {})]
            distinct = int((~pd.DataFrame({s: X[s] for s in symbols}).duplicated()).sum())
            if distinct < len(free):
                axis = " and ".join(self.inputs[s] for s in symbols)
                raise TableError(f"{law}.fit: the points hold {distinct} distinct values of "
                                 f"{axis}, too few to identify {', '.join(free)} (at least "
                                 f"{len(free)} are needed; with fewer, many values fit equally well); "
                                 f"add runs at more {axis} values or fix a parameter, e.g. "
                                 f"fixed={{{free[0]!r}: ...}}.")

    # ---- coordinates ----------------------------------------------------------------
    def _to_internal(self, name: str, value: float) -> float:
        base = name.split("[")[0]
        if base in self.log_params:
            with np.errstate(divide="ignore"):
                return float(np.log(value)) if value > 0 else -np.inf
        return float(value)

    def _to_natural(self, theta: np.ndarray) -> np.ndarray:
        theta = np.array(theta, dtype=float, copy=True)
        for j, name in enumerate(self.full_names_):
            if name.split("[")[0] in self.log_params:
                theta[..., j] = np.exp(theta[..., j])
        return theta

    # ---- fit --------------------------------------------------------------------
    def _as_table(self, data, what: str):
        """``data`` as a DataFrame: a DataFrame as it is, a dict of columns made into one,
        None kept (columns given as arrays); anything else refused in one sentence."""
        law = type(self).__name__
        if data is None or isinstance(data, pd.DataFrame):
            return data
        if isinstance(data, dict):
            columns = _aligned({k: v for k, v in data.items()}, None, law, what)
            columns = {k: _one_column(v, k, law, what) for k, v in columns.items()}
            try:
                return pd.DataFrame(columns)
            except ValueError:
                sizes = sorted({np.size(v) for v in data.values()})
                raise TableError(f"{law}.{what}: the dict's columns have different lengths "
                                 f"({sizes}); pass columns of one table.") from None
        raise InputTypeError(f"{law}.{what}: data must be a DataFrame or a dict of columns, "
                             f"got {type(data).__name__}; pass arrays as keywords instead, e.g. "
                             f"{what}(x=..., y=...).")

    def _read(self, data, columns: dict, y, group, what: str):
        law = type(self).__name__
        given = _aligned({**{self.inputs[s]: c for s, c in columns.items()}, "y": y,
                          **({"group": group} if group is not None else {})},
                         data, law, what)
        given = _same_grid(given, data)
        columns = {s: given[self.inputs[s]] for s in columns}
        y, group = given["y"], given.get("group")
        X = {symbol: self._column(data, col, self.inputs[symbol], law)
             for symbol, col in columns.items()}
        ys = self._column(data, y, "y", law)
        sizes = {v.size for v in X.values()} | {ys.size}
        if len(sizes) != 1:
            raise TableError(f"{law}.{what}: the columns have different lengths ({sorted(sizes)}); "
                             f"pass columns of one table.")
        if ys.size == 0:
            raise TableError(f"{law}.{what}: the table has no rows; fit a table of runs with "
                             f"their results.")
        groups = None
        if group is not None:
            if isinstance(group, str) and data is not None and group not in data.columns:
                raise TableError(f"{law}.{what}: the table has no column {group!r} for group; "
                                 f"name a column of the table or pass the groups as an array.")
            groups = (np.asarray(data[group]) if isinstance(group, str) and data is not None
                      else _one_column(group, "group", law, what))
            if groups.size != ys.size:
                raise TableError(f"{law}.{what}: group has {groups.size} values for {ys.size} "
                                 f"points; pass a column of the same table.")
            missing = int(pd.isna(groups).sum())
            if missing:
                raise TableError(f"{law}.{what}: group has {_count(missing, 'missing value')} "
                                 f"(NaN or None), so those points belong to no group; fill them "
                                 f"or drop those rows.")
        self._check_one_variant(data, groups, law, what)
        # NaN and ±inf are refused, never dropped: a fitted law's points are the table's
        # rows, and an infinite loss is usually a diverged run the user should see
        named = {**{self.inputs[s]: (columns[s], v) for s, v in X.items()}, "y": (y, ys)}
        counts = {(c if isinstance(c, str) else role): (int(np.isnan(v).sum()),
                                                        int(np.isinf(v).sum()))
                  for role, (c, v) in named.items()}
        bad = ~np.isfinite(ys) | np.any([~np.isfinite(v) for v in X.values()], axis=0)
        if bad.any():
            where = ", ".join(f"{name}: " + " and ".join(
                f"{n} {kind}" for n, kind in zip(count, ("NaN", "infinite")) if n)
                for name, count in counts.items() if any(count))
            raise TableError(f"{law}.{what}: found NaN or infinite values in "
                             f"{_count(int(bad.sum()), 'row')} "
                             f"({where}); drop them first, e.g. "
                             f"table[np.isfinite(table[[...]]).all(axis=1)].")
        return X, ys, groups

    @staticmethod
    def _check_one_variant(data, groups, law: str, what: str) -> None:
        """Refuse a table whose rows hold several loss variants (a ``loss_variant`` column
        with more than one value) unless ``group`` keeps them apart: the variants' losses
        are on different scales and their laws differ, so one law through all of them
        describes none (as :func:`scalelab.laws.predict` refuses them)."""
        if not isinstance(data, pd.DataFrame) or "loss_variant" not in data.columns:
            return
        variants = data["loss_variant"]
        if isinstance(variants, pd.DataFrame) or variants.nunique() < 2:
            return
        if groups is not None and pd.DataFrame({"g": groups, "v": variants.to_numpy()}
                                               ).groupby("g")["v"].nunique().max() < 2:
            return  # every group holds one variant
        names = sorted(map(str, variants.dropna().unique()))
        raise TableError(f"{law}.{what}: the table holds several loss variants "
                         f"({', '.join(names)}), whose laws differ; select one, e.g. "
                         f"table[table.loss_variant == {names[0]!r}], or fit one law per "
                         f"variant with group='loss_variant'.")

    def _start_fit(self) -> None:
        """Forget an earlier fit and check the hyper-parameters, before any work."""
        self._reset()
        self._check_number("huber_delta", minimum=0, exclusive=True)
        self._check_number("n_bootstrap", integer=True, minimum=0)
        self._check_number("max_iter", integer=True, minimum=1)
        self._check_number("drop_highest", integer=True, minimum=0)
        self._check_number("seed", integer=True, minimum=0)
        if self.method not in METHODS:
            raise ScalelabError(f"{type(self).__name__}: method={self.method!r} is not a "
                                f"minimiser here; use one of {', '.join(map(repr, METHODS))}.")
        self._check_parameter_options()

    def _check_parameter_options(self) -> None:
        """``fixed``, ``bounds``, ``starts`` and ``shared`` name parameters and hold numbers
        (a scale parameter fitted through its log, e.g. E, cannot be negative)."""
        law = type(self).__name__

        def refuse(option, text, fix="fix it"):
            raise ScalelabError(f"{law}: {option} {text}; {fix}.")

        def number(value, option, name, allow_none=False):
            if allow_none and value is None:
                return
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not ok or np.isnan(value) or (np.isinf(value) and option == "fixed"):
                refuse(option, f"gives {name} the value {value!r}, which is not a "
                               f"{'finite ' if option == 'fixed' else ''}number",
                       "give a number")
            if name in self.log_params and value < 0:
                refuse(option, f"gives {name} the value {value!r}, but {name} is a positive "
                               f"scale (fitted through its log)", "use a value >= 0")

        if self.shared is not None and (isinstance(self.shared, str)
                                        or not isinstance(self.shared, (tuple, list))):
            refuse("shared", f"must be a tuple of parameter names, got {self.shared!r}",
                   f"e.g. shared=({self.param_names[-1]!r},)")
        for option in ("fixed", "bounds", "starts"):
            value = getattr(self, option)
            if value is not None and not isinstance(value, dict):
                refuse(option, f"must be a dict, got {type(value).__name__}",
                       f"e.g. {option}={{{self.param_names[0]!r}: ...}}")
            for name in (value or {}):
                if name not in self.param_names:
                    refuse(option, f"names an unknown parameter {name!r}",
                           f"its parameters are {', '.join(self.param_names)}")
        for name, value in (self.fixed or {}).items():
            number(value, "fixed", name)
        for name, pair in (self.bounds or {}).items():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                refuse("bounds", f"gives {name} {pair!r}, not a pair (low, high)",
                       "use None for an open end, e.g. (0, None)")
            for value in pair:
                number(value, "bounds", name, allow_none=True)
        for name, values in (self.starts or {}).items():
            try:
                ok = np.isfinite(np.asarray(values, dtype=float)).all() and np.size(values)
            except (TypeError, ValueError):
                ok = False
            if not ok:
                refuse("starts", f"gives {name} {values!r}, not finite numbers",
                       f"give start values in the fitted coordinates (the log for "
                       f"{', '.join(sorted(self.log_params))})")

    def _fit(self, data, columns: dict, y, group=None) -> "Law":
        law = type(self).__name__
        self._start_fit()
        data = self._as_table(data, "fit")
        X, ys, groups = self._read(data, columns, y, group, "fit")
        if (ys <= 0).any():
            raise TableError(f"{law}.fit: y must be positive (the fit is on log y), but "
                             f"{int((ys <= 0).sum())} values are <= 0; fit a positive metric "
                             f"(e.g. an error, not a signed skill) or drop those rows.")
        labels = (data.index.to_numpy() if isinstance(data, pd.DataFrame)
                  else np.arange(ys.size))
        keep = np.ones(ys.size, dtype=bool)
        if self.drop_highest:
            if not 0 <= self.drop_highest < ys.size:
                raise ScalelabError(f"{law}: drop_highest={self.drop_highest} must be between 0 "
                                    f"and the number of points ({ys.size}) minus one.")
            keep[np.argsort(ys, kind="stable")[ys.size - self.drop_highest:]] = False
        self.excluded_ = labels[~keep]
        X = {k: v[keep] for k, v in X.items()}
        ys = ys[keep]
        groups = groups[keep] if groups is not None else None
        self._check_inputs(X, ys)
        self._check_identified(X)
        self._warn_rising(X, ys, groups, columns, y)
        self._setup_params(groups)
        n_free = int(np.sum(self._lower < self._upper))
        if ys.size <= n_free:
            raise TableError(f"{law}.fit needs more points than free parameters ({n_free}), got "
                             f"{ys.size}; add runs or fix parameters with fixed={{...}}.")
        self.column_names_ = {s: (c if isinstance(c, str) else s) for s, c in columns.items()}
        self.y_name_ = y if isinstance(y, str) else "y"
        self.fitted_inputs_, self.y_, self.fitted_groups_ = X, ys, groups

        starts = self._starts(X, ys)
        fun_grad = self._objective(X, np.log(ys), None)
        # a fit of many points screens its starts on a subsample (memory and time O(n))
        screen = max(SCREEN_POINTS, int(GRID_BUDGET // starts.size))
        sub = self._screening_points(X, groups, screen) if ys.size > screen else None
        grid_fun = fun_grad if sub is None else self._objective(
            {k: v[sub] for k, v in X.items()}, np.log(ys[sub]), None, points=sub)
        # phase 1: every start, loose stopping tests (scipy L-BFGS-B's defaults), rows
        # that cannot reach the best few pruned (scalelab.laws._optim.STAGES)
        res = minimize_stage(grid_fun, starts, self._lower, self._upper, method=self.method,
                             stage="grid", max_iter=self.max_iter, keep_best=N_POLISH)
        order = np.argsort(res.fun)
        if not np.isfinite(res.fun[order[0]]):
            raise TableError(f"{law}.fit found no start with a finite objective; check that the "
                             f"table holds the law's inputs and a positive y.")
        # phase 2: polish the best few to tight tolerances
        top = res.x[order[:N_POLISH]]
        if sub is not None:  # on the subsample first; the best few then on every point
            screened = minimize_stage(grid_fun, top, self._lower, self._upper,
                                      method=self.method, stage="polish", max_iter=self.max_iter)
            top = screened.x[np.argsort(screened.fun)[:N_POLISH_ALL]]
        polished = self._minimize_in_batches(fun_grad, top, "polish", ys.size)
        best = int(np.argmin(polished.fun))
        theta = polished.x[best]
        self._warn_at_bounds(theta)
        self.theta_ = theta
        self.objective_ = float(polished.fun[best])
        self.n_starts_ = int(starts.shape[0])
        self.converged_ = bool(polished.converged[best])
        self.n_points_ = int(ys.size)
        self.residuals_ = np.log(ys) - self._log_predict_full(theta[None], X)[0]
        self.rmse_log_ = float(np.sqrt(np.mean(self.residuals_**2)))
        self.input_range_ = {s: (float(v.min()), float(v.max())) for s, v in X.items()}
        self._bootstrap(fun_grad_factory=lambda w: self._objective(X, np.log(ys), w),
                        groups=groups, n=ys.size)
        # set last: its presence is what "fitted" means
        self.params_ = pd.Series(self._to_natural(theta), index=list(self.full_names_),
                                 name=law)
        return self

    def _warn_rising(self, X: dict, ys: np.ndarray, groups, columns: dict, y) -> None:
        """Warn when y rises with an input in which the law falls (``falls_with``): the
        law cannot follow it and fits a flat curve instead (e.g. PSNR or accuracy fitted
        where a loss or an error belongs, or x and y paired wrongly)."""
        law = type(self).__name__
        y_name = y if isinstance(y, str) else "y"
        strata = ([(None, np.arange(ys.size))] if groups is None
                  else [(g, np.flatnonzero(groups == g)) for g in pd.unique(groups)])
        for symbol in self.falls_with:
            for g, idx in strata:
                x = pd.Series(X[symbol][idx])
                if idx.size < 3 or x.nunique() < 2:
                    continue
                rho = x.corr(pd.Series(ys[idx]), method="spearman")
                if rho > RISING_RHO:
                    where = "" if g is None else f" in group {g!r}"
                    x_name = (columns[symbol] if isinstance(columns[symbol], str)
                              else self.inputs[symbol])
                    warnings.warn(f"{law}.fit: {y_name} rises with {x_name}{where} (Spearman "
                                  f"rho = {rho:+.2f} over {idx.size} points), but the law can "
                                  f"only fall with it, so its fit is nearly flat; such a law "
                                  f"describes a metric that falls with size (a loss or an "
                                  f"error, not e.g. PSNR), so check the metric and that the "
                                  f"columns are paired.", ScalelabWarning, stacklevel=4)
                    return

    def _warn_at_bounds(self, theta: np.ndarray) -> None:
        """Warn, naming the parameter, when the fit ended at a bound the user gave
        (``bounds=``, not fixing it): the optimum the data point to lies beyond, so the law
        is held there. (A law's default bounds, e.g. BrokenPowerLaw's sharpness, are
        reached by ordinary fits and are not warned of.)"""
        law = type(self).__name__
        bounds = self.bounds or {}
        for j, name in enumerate(self.full_names_):
            lo, hi = self._lower[j], self._upper[j]
            if lo == hi or name.split("[")[0] not in bounds:
                continue
            for end, word in ((lo, "lower"), (hi, "upper")):
                if np.isfinite(end) and abs(theta[j] - end) <= 1e-8 * max(1.0, abs(end)):
                    base = name.split("[")[0]
                    value = self._to_natural_value(base, end)
                    warnings.warn(f"{law}.fit: {name} ended at its {word} bound {value:g} "
                                  f"(bounds {tuple(bounds[base])}), so the data pull it "
                                  f"beyond and the law is held there; widen bounds="
                                  f"{{{base!r}: ...}} if that is allowed, or check the data.",
                                  ScalelabWarning, stacklevel=4)

    def _to_natural_value(self, name: str, value: float) -> float:
        return float(np.exp(value)) if name in self.log_params else float(value)

    def _setup_params(self, groups) -> None:
        law = type(self).__name__
        shared = tuple(self.shared or ())
        for name in [*shared, *(self.fixed or {}), *(self.bounds or {}), *(self.starts or {})]:
            if name not in self.param_names:
                raise ScalelabError(f"{law}: unknown parameter {name!r}; its parameters are "
                                    f"{', '.join(self.param_names)}.")
        if groups is None:
            self.groups_ = None
            names = list(self.param_names)
            gather = None
        else:
            self.groups_ = list(pd.unique(groups))
            names, column = [], {}
            for p in self.param_names:
                if p in shared:
                    column[(p, None)] = len(names)
                    names.append(p)
                else:
                    for g in self.groups_:
                        column[(p, g)] = len(names)
                        names.append(f"{p}[{g}]")
            # one row of columns per group, then one per point by the point's group
            per_group = np.array([[column[(p, None)] if p in shared else column[(p, g)]
                                   for p in self.param_names] for g in self.groups_])
            gather = per_group[pd.Index(self.groups_).get_indexer(groups)]
        self.full_names_ = tuple(names)
        self._gather = gather
        self._scatter = None if gather is None else _one_hot(gather, len(names))
        bounds = {**self.default_bounds, **(self.bounds or {})}
        lower, upper = [], []
        for name in names:
            base = name.split("[")[0]
            lo, hi = bounds.get(base, (None, None))
            if base in (self.fixed or {}):
                lo = hi = self.fixed[base]
            lower.append(-np.inf if lo is None else self._to_internal(base, lo))
            upper.append(np.inf if hi is None else self._to_internal(base, hi))
        self._lower, self._upper = np.array(lower), np.array(upper)
        if (self._lower > self._upper).any():
            raise ScalelabError(f"{law}: a lower bound exceeds its upper bound; check bounds=.")

    def _starts(self, X, ys) -> np.ndarray:
        values = self._default_starts(X, ys)
        values.update({k: v for k, v in (self.starts or {}).items()})
        for name, value in (self.fixed or {}).items():
            values[name] = [self._to_internal(name, value)]
        grid = grid_starts(**{p: values[p] for p in self.param_names})
        if self._gather is not None:  # every group starts from the same grid point
            col = [self.param_names.index(n.split("[")[0]) for n in self.full_names_]
            grid = grid[:, col]
        return np.clip(grid, self._lower, self._upper)

    def _objective(self, X, log_y, weights, points=None):
        """The summed Huber objective of the points X, log_y (``points``: their rows among
        the fitted points, when a subsample)."""
        gather, scatter = self._gather, self._scatter
        if points is not None and gather is not None:
            gather = gather[points]
            scatter = _one_hot(gather, len(self.full_names_))
        return robust_objective(self._log_predict, X, log_y, self.huber_delta, weights,
                                gather, scatter)

    def _screening_points(self, X: dict, groups, size: int) -> np.ndarray:
        """Rows of a subsample of about ``size`` points to screen the starts on: one point
        of every distinct input value (when they are few), the ends of every input, the rest
        drawn at random (seeded) within each group in proportion to its points."""
        rng = np.random.default_rng(0)
        n = next(iter(X.values())).size
        inputs = np.column_stack(list(X.values()))
        first = np.flatnonzero(~pd.DataFrame(inputs).duplicated().to_numpy())
        picked = [first] if first.size <= size // 2 else []
        strata = ([np.arange(n)] if groups is None
                  else [np.flatnonzero(groups == g) for g in pd.unique(groups)])
        for idx in strata:
            picked += [idx[np.argmin(inputs[idx], axis=0)], idx[np.argmax(inputs[idx], axis=0)]]
            take = min(idx.size, max(1, -(-size * idx.size // n)))
            picked.append(rng.choice(idx, size=take, replace=False))
        return np.unique(np.concatenate(picked))

    def _minimize_in_batches(self, fun_grad, x0, stage: str, n: int):
        """``minimize_stage`` of rows x0 (unpruned, so independent), in batches of at most
        BATCH_BUDGET rows × points × parameters; one call when they fit in one."""
        per_batch = max(1, int(BATCH_BUDGET // (n * x0.shape[1])))
        if x0.shape[0] <= per_batch:
            return minimize_stage(fun_grad, x0, self._lower, self._upper, method=self.method,
                                  stage=stage, max_iter=self.max_iter)
        parts = [minimize_stage(fun_grad, x0[i:i + per_batch], self._lower, self._upper,
                                method=self.method, stage=stage, max_iter=self.max_iter)
                 for i in range(0, x0.shape[0], per_batch)]
        return BatchResult(**{field: np.concatenate([getattr(p, field) for p in parts])
                              for field in ("x", "fun", "grad", "n_iter", "converged",
                                            "reason")})

    def _log_predict_full(self, theta, X, groups=None):
        """Log predictions (S, n) for full parameter rows theta (S, P_full)."""
        if self._gather is None:
            return self._log_predict(theta[:, None, :], X)[0]
        gather = self._gather if groups is None else self._group_gather(groups)
        return self._log_predict(theta[:, gather], X)[0]

    def _group_gather(self, groups):
        law = type(self).__name__
        rows = []
        for g in np.atleast_1d(groups):
            if g not in self.groups_:
                raise ScalelabError(f"{law}.predict: unknown group {g!r}; fitted groups are "
                                    f"{', '.join(map(str, self.groups_))}.")
            rows.append([self.full_names_.index(p if p in (self.shared or ()) else f"{p}[{g}]")
                         for p in self.param_names])
        return np.array(rows)

    # ---- bootstrap ------------------------------------------------------------------
    def _bootstrap(self, fun_grad_factory, groups, n: int) -> None:
        B = int(self.n_bootstrap)
        if B <= 0:
            self.bootstrap_theta_ = None
            self.bootstrap_params_ = None
            self.bse_ = None
            return
        rng = np.random.default_rng(self.seed)
        strata = [np.arange(n)] if groups is None else [np.flatnonzero(groups == g)
                                                        for g in pd.unique(groups)]
        # resamples in batches of BATCH_BUDGET values (one batch for a small fit), so a
        # fit of many points never holds all resamples' weights at once
        per_batch = max(1, int(BATCH_BUDGET // (n * self.theta_.size)))
        parts = []
        for first in range(0, B, per_batch):
            size = min(per_batch, B - first)
            weights = np.zeros((size, n))
            for idx in strata:  # resample within each group so every group stays fitted
                weights[:, idx] = rng.multinomial(idx.size, np.full(idx.size, 1.0 / idx.size),
                                                  size=size)
            parts.append(minimize_stage(fun_grad_factory(weights),
                                        np.repeat(self.theta_[None], size, axis=0),
                                        self._lower, self._upper, method=self.method,
                                        stage="bootstrap", max_iter=self.max_iter).x)
        self.bootstrap_theta_ = np.concatenate(parts)
        self.bootstrap_params_ = pd.DataFrame(self._to_natural(self.bootstrap_theta_),
                                              columns=list(self.full_names_))
        self.bse_ = self.bootstrap_params_.std(ddof=1).rename("std err")

    # ---- results --------------------------------------------------------------------
    def _need_bootstrap(self, what: str) -> None:
        check_is_fitted(self)
        if self.bootstrap_params_ is None:
            raise ScalelabError(f"{type(self).__name__}.{what} needs bootstrap resamples; fit "
                                f"with n_bootstrap > 0 (e.g. n_bootstrap=1000).")

    @staticmethod
    def _check_level(level: float) -> float:
        return check_level(level)

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Bootstrap percentile intervals of the parameters (columns ``lower``, ``upper``)."""
        level = self._check_level(level)
        self._need_bootstrap("conf_int")
        q = [(1 - level) / 2, (1 + level) / 2]
        table = self.bootstrap_params_.quantile(q).T
        table.columns = ["lower", "upper"]
        return table

    def cov_params(self) -> pd.DataFrame:
        """Bootstrap covariance of the parameters (natural units)."""
        self._need_bootstrap("cov_params")
        return self.bootstrap_params_.cov()

    def _inputs_from(self, data, kwargs: dict, what: str) -> dict:
        law = type(self).__name__
        X = {}
        for symbol, keyword in self.inputs.items():
            if symbol in kwargs:
                value = kwargs.pop(symbol)
            elif keyword in kwargs:
                value = kwargs.pop(keyword)
            elif isinstance(data, pd.DataFrame) and self.column_names_[symbol] in data:
                value = data[self.column_names_[symbol]]
            elif data is not None and not isinstance(data, pd.DataFrame) and len(self.inputs) == 1:
                value = data
            else:
                raise ScalelabError(f"{law}.{what} needs {symbol}= (the {keyword}); e.g. "
                                    f"{what}({', '.join(f'{s}=...' for s in self.inputs)}).")
            name = symbol if keyword == symbol else f"{symbol} (the {keyword})"
            _check_numeric_kind(value, name, f"{law}.{what}")
            try:
                X[symbol] = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                raise InputTypeError(f"{law}.{what}: {name} must be numeric, got "
                                    f"{type(value).__name__} {str(value)[:40]!r}.") from None
            self._check_predict_input(symbol, X[symbol], what)
        if kwargs:
            raise ScalelabError(f"{law}.{what}: unexpected argument {next(iter(kwargs))!r}; "
                                f"its inputs are {', '.join(self.inputs)}.")
        shape = np.broadcast_shapes(*[v.shape for v in X.values()])
        return {k: np.broadcast_to(v, shape) for k, v in X.items()}, shape

    def _check_predict_input(self, symbol: str, values: np.ndarray, what: str) -> None:
        """Refuse NaN and out-of-domain inputs (a power law in log x needs x > 0), which would
        give NaN or inf predictions; +inf is allowed (the law's limit, e.g. E)."""
        low = 0.0 if symbol in self.nonnegative_inputs else None
        bad = np.isnan(values) | ((values < 0) if low is not None else (values <= 0))
        if bad.any():
            keyword = self.inputs[symbol]
            name = symbol if keyword == symbol else f"{symbol} (the {keyword})"
            first = values[bad].ravel()[0]
            need = "non-negative" if low is not None else "positive"
            raise ScalelabError(f"{type(self).__name__}.{what}: {name} must be {need} and not "
                                f"NaN, got {_count(int(bad.sum()), 'bad value')} "
                                f"(e.g. {first:g}); predict at sizes within the law's domain.")

    def _predict_theta(self, theta, data, kwargs, what):
        check_is_fitted(self)
        kwargs = dict(kwargs)
        group = kwargs.pop("group", None)
        X, shape = self._inputs_from(data, kwargs, what)
        flat = {k: v.ravel() for k, v in X.items()}
        n = int(np.prod(shape)) if shape else 1
        if self.groups_ is not None:
            if group is None:
                raise ScalelabError(f"{type(self).__name__}.{what}: the law was fitted per "
                                    f"group; pass group=<one of {self.groups_}>.")
            gather = self._group_gather(np.broadcast_to(group, (n,)))
            log_pred = self._log_predict(theta[:, gather], flat)[0]
        else:
            with np.errstate(invalid="ignore", over="ignore"):  # the unused Jacobian at x = inf
                log_pred = self._log_predict(theta[:, None, :], flat)[0]
        return np.exp(log_pred), shape

    def predict(self, data=None, **inputs) -> np.ndarray:
        """Predicted y at the given inputs (keywords, or a table holding the fitted columns)."""
        check_is_fitted(self)
        pred, shape = self._predict_theta(self.theta_[None], data, inputs, "predict")
        out = pred[0].reshape(shape)
        return out if shape else float(out)

    def predict_bootstrap(self, data=None, **inputs) -> np.ndarray:
        """The bootstrap refits' predictions at the given inputs, shape (n_bootstrap, *shape).

        Row b is the law refitted to resample b of the points (``bootstrap_params_.iloc[b]``);
        its percentiles are ``predict_interval(kind="mean")``, and pairing the rows of two
        laws compares them under resampling (:func:`scalelab.laws.crossover`).
        """
        self._need_bootstrap("predict_bootstrap")
        pred, shape = self._predict_theta(self.bootstrap_theta_, data, inputs,
                                          "predict_bootstrap")
        return pred.reshape((pred.shape[0], *shape))

    def predict_interval(self, data=None, level: float = 0.9, kind: str = "mean",
                         **inputs) -> pd.DataFrame:
        """Bootstrap interval of the prediction at the given inputs.

        ``kind="mean"``: percentile interval of the refitted laws' predictions (where the
        law's curve lies); ``kind="observation"``: each bootstrap prediction also times a
        resampled exp(residual) of the fit (where one new run's value lies).
        Returns a DataFrame with ``prediction``, ``lower``, ``upper``.
        """
        level = self._check_level(level)
        self._need_bootstrap("predict_interval")
        if kind not in ("mean", "observation"):
            raise ScalelabError(f"kind must be 'mean' or 'observation', got {kind!r}.")
        pred, shape = self._predict_theta(self.bootstrap_theta_, data, inputs, "predict_interval")
        if kind == "observation":
            rng = np.random.default_rng(self.seed + 1)
            pred = pred * np.exp(rng.choice(self.residuals_, size=pred.shape))
        centre, _ = self._predict_theta(self.theta_[None], data, inputs, "predict_interval")
        lower, upper = np.quantile(pred, [(1 - level) / 2, (1 + level) / 2], axis=0)
        return pd.DataFrame({"prediction": centre[0], "lower": lower, "upper": upper})

    def backtest(self, data, **options) -> pd.DataFrame:
        """Run :func:`scalelab.laws.backtest` with this law, keep the result as ``backtest_``
        (shown by ``summary()``) and return it."""
        from scalelab.laws.backtest import backtest

        self.backtest_ = backtest(self, data, **options)
        return self.backtest_

    def params_table(self) -> pd.DataFrame:
        """Parameters as a DataFrame: estimate, std err and 95% interval where known."""
        check_is_fitted(self)
        table = pd.DataFrame({"estimate": self.params_})
        if self.bse_ is not None:
            table["std err"] = self.bse_
            ci = self.conf_int(0.95)
            table["[0.025"] = ci["lower"]
            table["0.975]"] = ci["upper"]
        return table

    def summary(self) -> str:
        """A statsmodels-like text table: law, objective, points, parameters with intervals."""
        check_is_fitted(self)
        width = 78
        boot = (f"{self.n_bootstrap} resamples (seed {self.seed})"
                if self.bse_ is not None else "none")
        left_out = len(self.excluded_)
        lines = [f"{type(self).__name__} results".center(width), "=" * width,
                 f"Law:          {self.formula}",
                 f"Objective:    Huber(δ={self.huber_delta:g}) on log residuals, summed = "
                 f"{self.objective_:.6g}",
                 f"Points used:  {self.n_points_}   left out: {left_out}"
                 + (f" (rows {self.excluded_[:8].tolist()})" if left_out else ""),
                 f"Starts:       {self.n_starts_} ({self.method}, best kept)   RMS log-residual: "
                 f"{self.rmse_log_:.4g}",
                 f"Bootstrap:    {boot}"]
        backtest = getattr(self, "backtest_", None)
        if backtest is not None and len(backtest):
            lines.append(f"Backtest:     mean ARE {backtest['are'].mean():.3%} over "
                         f"{len(backtest)} hold-outs, interval covered "
                         f"{backtest['covered'].mean():.0%}")
        lines.append("-" * width)
        lines.append(self.params_table().to_string(float_format=lambda v: f"{v:.5g}"))
        lines.append("=" * width)
        return "\n".join(lines)

    # ---- helpers ----------------------------------------------------------------------
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
            copies = int((data.columns == name_or_values).sum())
            if copies > 1:
                raise TableError(f"{law}.fit: the table has {copies} columns named "
                                 f"{name_or_values!r} (for {role}), so which one is meant is "
                                 f"unclear; keep one, e.g. "
                                 f"table.loc[:, ~table.columns.duplicated()].")
            values = data[name_or_values]
            name = f"{role} (column {name_or_values!r})"
        else:
            values = name_or_values
            name = role
            try:
                scalar = np.ndim(values) == 0
            except ValueError:  # a ragged list: refused as such just below
                scalar = False
            if scalar:
                raise InputTypeError(f"{law}.fit: {role} must be a column name or an array "
                                     f"of values, got {type(values).__name__} {values!r}.")
        values = _one_column(values, role, law, "fit")
        _check_numeric_kind(values, name, f"{law}.fit")
        try:
            return np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise TableError(f"{law}.fit: {name} must be numeric; convert it, e.g. with "
                             f"pd.to_numeric.") from None
