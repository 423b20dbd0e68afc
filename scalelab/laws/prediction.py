"""Predictions that say whether they beat the naive guess.

For a target (``params=2e5``, ``samples=1e6``, ``params=2e5,samples=1e6`` or
``compute=1e15``) :func:`predict` fits every law form the data allow, backtests each,
compares them with two naive guesses and returns a :class:`Prediction`:

- **Candidates.** In the size being extrapolated (x: parameters N, samples D, or
  compute C) at the target's other size: the saturating power law E + A·x^(−α)
  (Hestness et al. 2017; Kaplan et al. 2020, eq. 1.1–1.3), the pure power law A·x^(−α)
  (E held at ~0), the smoothly broken power law (Caballero et al. 2023, eq. 1) where 6+
  sizes allow it. Where the table sweeps both N and D, the joint laws too, whose
  predictions for different D cannot cross: the power law with its A and α shared by
  every D (one floor E_D per D, so the curves are parallel), Chinchilla's
  E + A/N^α + B/D^β (Hoffmann et al. 2022, eq. 2) and Kaplan's
  [(N_c/N)^(α_N/α_D) + D_c/D]^α_D (Kaplan et al. 2020, eq. 1.5). A compute target is
  predicted from the loss envelope of the training curves (the lowest value any run
  reached at each compute, Hoffmann et al. 2022 approach 1).
- **Backtests** (Choshen et al. 2024, "A Hitchhiker's Guide to Scaling Law Estimation",
  §3–5): leave the k largest sizes out (k = 1, and 2, 3 while 4+ sizes remain), fit on
  the rest, predict the largest; the absolute relative error ARE = |pred − truth|/truth
  at each k, its mean the candidate's backtest error, and whether the interval covered.
- **Baselines.** Persistence: the value of the largest run left in (the mean over its
  seeds). The log–log line through the largest three sizes left in (a local power law
  with no floor).
- **Choice.** ``choose="best"`` (default) takes the candidate of lowest backtest error;
  ``choose="weighted"`` blends the candidates that beat persistence with weights ∝
  1/ARE² (bounds blended the same way). Where no law beats persistence the prediction
  is persistence, with an interval from the runs' spread (seeds at the largest size and
  persistence's own backtest error), and ``sentence`` says why in words: the largest
  runs are undertrained, the value is at its floor, or the trend is too noisy.

Torch-free: a runs table in (one row per run × evaluation, or one per run), numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import norm

from scalelab._errors import ScalelabError, TableError
from scalelab.laws.allocation import loss_envelope
from scalelab.laws.base import Law
from scalelab.laws.chinchilla import ChinchillaLaw, KaplanLaw
from scalelab.laws.power import BrokenPowerLaw, PowerLaw
from scalelab.laws.regime import (UNDERTRAINED_THRESHOLD, check_result, result_rows,
                                  undertrained_runs)

LEVEL = 0.9
CHOICES = ("best", "weighted")
TARGET_KEYS = ("params", "samples", "compute")
#: sizes the log–log line is drawn through
LINE_SIZES = 3
#: most leave-largest-k-out folds
MAX_FOLDS = 3
#: budgets of the loss envelope for compute targets
N_BUDGETS = 12
SYMBOL = {"params": "N", "samples": "D", "flops": "C"}


@dataclass
class Prediction:
    """A prediction for one target with the evidence for trusting it.

    ``candidates``: one row per law form tried — ``law`` (name), ``formula``,
    ``backtest_are`` (mean ARE over the folds), ``are_k1``, ``are_k2``, … (ARE when
    the k largest sizes were left out), ``covered`` (share of backtest truths inside the
    interval), ``prediction``/``lower``/``upper`` at the target, ``weight`` in the
    choice, ``note`` (why a form could not be fitted). ``baselines``: the same columns
    for ``persistence`` and ``log–log line``. ``backtests``: one row per candidate ×
    fold × held-out run (truth, prediction, interval, ARE).
    """

    target: dict
    y: str
    result: str
    level: float
    choose: str
    prediction: float
    lower: float
    upper: float
    law: str
    axis: str
    at: dict  # the other size held fixed ({"samples": 4096}), or {}
    candidates: pd.DataFrame
    baselines: pd.DataFrame
    backtests: pd.DataFrame
    sentence: str | None = None  # set when no law beats persistence
    notes: list = field(default_factory=list)
    undertrained: pd.DataFrame = field(default_factory=pd.DataFrame)
    laws: dict = field(default_factory=dict)  # candidate name -> law fitted on all runs

    @property
    def target_text(self) -> str:
        return target_text(self.target)

    @property
    def backtest_are(self) -> float:
        """Backtest error of what was used (the chosen law, blend or persistence)."""
        if self.law == "persistence":
            return self.persistence_are
        rows = self.candidates[self.candidates["weight"] > 0]
        if rows.empty:
            return math.nan
        if len(rows) == 1:
            return float(rows["backtest_are"].iloc[0])
        return float(self._blend_are)

    @property
    def persistence_are(self) -> float:
        return float(self.baselines.set_index("law").loc["persistence", "backtest_are"])

    @property
    def loglog_are(self) -> float:
        return float(self.baselines.set_index("law").loc["log–log line", "backtest_are"])

    @property
    def beats_persistence(self) -> bool:
        return self.sentence is None and self.law != "persistence"

    _blend_are: float = math.nan

    def to_dict(self) -> dict:
        """JSON-ready: the keys of ``scalelab predict --json``."""
        def num(value):
            value = float(value)
            return value if math.isfinite(value) else None

        table = pd.concat([self.candidates, self.baselines], ignore_index=True)
        folds = [c for c in table.columns if c.startswith("are_k")]
        return {
            "target": self.target_text, "y": self.y, "result": self.result,
            "prediction": num(self.prediction), "lower": num(self.lower),
            "upper": num(self.upper), "level": self.level, "law": self.law,
            "choose": self.choose, "at": {k: num(v) for k, v in self.at.items()},
            "backtest_are": num(self.backtest_are),
            "persistence_are": num(self.persistence_are),
            "loglog_are": num(self.loglog_are),
            "beats_persistence": self.beats_persistence, "sentence": self.sentence,
            "notes": list(self.notes),
            "candidates": [{"law": r["law"], "formula": r["formula"],
                            "backtest_are": num(r["backtest_are"]),
                            "are_by_k": {c[5:]: num(r[c]) for c in folds},
                            "covered": num(r["covered"]), "prediction": num(r["prediction"]),
                            "lower": num(r["lower"]), "upper": num(r["upper"]),
                            "weight": num(r["weight"]), "note": r["note"]}
                           for _, r in table.iterrows()],
            "undertrained": [str(r) for r in self.undertrained.loc[
                self.undertrained["undertrained"], "run_id"]] if len(self.undertrained) else [],
        }

    def table(self) -> pd.DataFrame:
        """Candidates and baselines in one table, sorted by backtest error."""
        both = pd.concat([self.candidates, self.baselines], ignore_index=True)
        return both.sort_values("backtest_are", na_position="last").reset_index(drop=True)

    def summary(self) -> str:
        """The prediction, its interval, the law used and every backtest, as text."""
        at = "".join(f", {k} = {_fmt(v)}" for k, v in self.at.items())
        lines = [f"{self.y} at {self.target_text}{at} ({self.result} values)",
                 f"  prediction {self.prediction:.5g}   {self.level:.0%} interval "
                 f"[{self.lower:.5g}, {self.upper:.5g}]   law: {self.law}"]
        if self.sentence:
            lines.append(f"  {self.sentence}")
        folds = [c for c in self.candidates.columns if c.startswith("are_k")]
        lines.append(f"  backtest (leave the k largest {self.axis} out, predict the largest; "
                     f"ARE):")
        head = f"    {'law':<34}" + "".join(f"{'k=' + c[5:]:>8}" for c in folds) + \
            f"{'mean':>8}{'covered':>9}   prediction [interval]"
        lines.append(head)
        for _, r in self.table().iterrows():
            cells = "".join(f"{_pct(r[c]):>8}" for c in folds)
            mark = "*" if r["weight"] > 0 else " "
            pred = (f"{r['prediction']:.4g}" + (f" [{r['lower']:.4g}, {r['upper']:.4g}]"
                                                if np.isfinite(r["lower"]) else "")
                    if np.isfinite(r["prediction"]) else r["note"][:60])
            lines.append(f"  {mark} {r['law']:<34}{cells}{_pct(r['backtest_are']):>8}"
                         f"{_pct(r['covered'], 0):>9}   {pred}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# ---- candidates -------------------------------------------------------------------------
@dataclass
class _Candidate:
    name: str
    formula: str
    joint: bool  # fitted on every D (or N), not only the target's
    min_sizes: int
    make: Callable[[], Law]
    fit: Callable  # (law, table) -> fitted law
    inputs: Callable  # (point dict) -> predict keywords


def _chinchilla_starts(joint: pd.DataFrame | None, y: str) -> dict | None:
    """Starts for E + A/N^α + B/D^β placed on the data's scale (162 instead of Epoch's
    4,500, which span language-model scales): the floor below the lowest value, each
    term starting at the spread of the values at the median size."""
    if joint is None or not {"params", "samples"} <= set(joint.columns):
        return None
    values = joint[y].to_numpy(float)
    span = math.log(max(values.max() - values.min(), 1e-3 * values.max()))
    exponents = np.array([0.2, 0.5, 1.0])
    log_n = float(np.median(np.log(joint["params"].to_numpy(float))))
    log_d = float(np.median(np.log(joint["samples"].to_numpy(float))))
    return {"E": math.log(values.min()) + np.array([-2.0, -0.3]),
            "A": span + exponents * log_n, "B": span + exponents * log_d,
            "alpha": exponents, "beta": exponents}


def _candidates(axis: str, other: str | None, y: str, n_bootstrap: int, seed: int,
                y_min: float, joint: pd.DataFrame | None = None) -> list[_Candidate]:
    x = SYMBOL[axis]
    starts = _chinchilla_starts(joint, y)
    opts = dict(n_bootstrap=n_bootstrap, seed=seed)
    one = [
        _Candidate("PowerLaw", f"E + A·{x}^(−α)", False, 3, lambda: PowerLaw(**opts),
                   lambda law, t: law.fit(t, x=axis, y=y), lambda p: {"x": p[axis]}),
        # the floor held at a negligible value: the pure power law through every point
        _Candidate("PowerLaw(E=0)", f"A·{x}^(−α)", False, 2,
                   lambda: PowerLaw(fixed={"E": 1e-9 * y_min}, **opts),
                   lambda law, t: law.fit(t, x=axis, y=y), lambda p: {"x": p[axis]}),
        _Candidate("BrokenPowerLaw", f"broken power law in {x}", False, 6,
                   lambda: BrokenPowerLaw(**opts),
                   lambda law, t: law.fit(t, x=axis, y=y), lambda p: {"x": p[axis]}),
    ]
    if other is None or axis == "flops":
        return one
    joint = [
        _Candidate("PowerLaw(shared A, α)", f"E_{SYMBOL[other]} + A·{x}^(−α)", True, 3,
                   lambda: PowerLaw(shared=("A", "alpha"), **opts),
                   lambda law, t: law.fit(t, x=axis, y=y, group=other),
                   lambda p: {"x": p[axis], "group": p[other]}),
        _Candidate("ChinchillaLaw", "E + A/N^α + B/D^β", True, 3,
                   lambda: ChinchillaLaw(starts=starts, **opts),
                   lambda law, t: law.fit(t, params="params", samples="samples", y=y),
                   lambda p: {"N": p["params"], "D": p["samples"]}),
        _Candidate("KaplanLaw", "[(N_c/N)^(α_N/α_D) + D_c/D]^α_D", True, 3,
                   lambda: KaplanLaw(**opts),
                   lambda law, t: law.fit(t, params="params", samples="samples", y=y),
                   lambda p: {"N": p["params"], "D": p["samples"]}),
    ]
    return one + joint


# ---- the problem: what is fitted, what is held out --------------------------------------
@dataclass
class _Fold:
    k: int
    cut: float  # the smallest size left out
    table: pd.DataFrame  # the slice's runs left in
    joint: pd.DataFrame | None  # every run left in (joint laws)
    truths: pd.DataFrame  # held-out runs at the largest size: the points and y
    persistence: float
    line: tuple | None  # (log x, log y) of the largest sizes left in


@dataclass
class _Problem:
    axis: str
    other: str | None
    point: dict
    table: pd.DataFrame
    joint: pd.DataFrame | None
    folds: list
    sizes: np.ndarray
    y: str
    exact_slice: bool
    notes: list


def _size_means(table: pd.DataFrame, axis: str, y: str) -> pd.Series:
    return table.groupby(axis)[y].mean().sort_index()


def _line_points(table: pd.DataFrame, axis: str, y: str):
    means = _size_means(table, axis, y)
    if len(means) < 2:
        return None
    means = means.iloc[-LINE_SIZES:]
    return np.log(means.index.to_numpy(float)), np.log(means.to_numpy(float))


def _line_predict(line, x: float) -> float:
    if line is None:
        return math.nan
    slope, intercept = np.polyfit(line[0], line[1], 1)
    return float(np.exp(intercept + slope * np.log(x)))


def _folds(table: pd.DataFrame, joint: pd.DataFrame | None, axis: str, y: str,
           sizes: np.ndarray) -> list:
    n = sizes.size
    ks = [k for k in range(1, MAX_FOLDS + 1) if n - k >= 4] or ([1] if n >= 4 else [])
    folds = []
    for k in ks:
        cut = sizes[-k]
        left = table[table[axis] < cut]
        held = table[table[axis] == sizes[-1]]
        means = _size_means(left, axis, y)
        folds.append(_Fold(k=k, cut=float(cut), table=left,
                           joint=None if joint is None else joint[joint[axis] < cut],
                           truths=held, persistence=float(means.iloc[-1]),
                           line=_line_points(left, axis, y)))
    return folds


def _size_problem(results: pd.DataFrame, target: dict, y: str) -> _Problem:
    """Extrapolation in N or D, at the target's (or the largest swept) other size."""
    sizes_in = [k for k in ("params", "samples") if k in target]
    for key in sizes_in:
        if key not in results.columns:
            raise TableError(f"predict: the target names {key} but the runs table has no "
                             f"{key!r} column; name a column the table holds.")
    if len(sizes_in) == 2:  # extrapolate in the size furthest beyond the runs
        axis = max(sizes_in, key=lambda k: target[k] / float(results[k].max()))
    else:
        axis = sizes_in[0]
    other = "samples" if axis == "params" else "params"
    notes = []
    if other not in results.columns or results[other].nunique() < 2:
        other_value = float(results[other].iloc[0]) if other in results.columns else None
        slice_table = results
        joint = None
        exact = other not in target or other_value == target[other]
        if other in target and not exact:
            notes.append(f"every run has {other} = {_fmt(other_value)}; {other} = "
                         f"{_fmt(target[other])} is not modelled, so this is the prediction "
                         f"at {other} = {_fmt(other_value)}.")
        other = None if other_value is None else other
    else:
        swept = np.sort(results[other].unique().astype(float))
        other_value = float(target.get(other, swept[-1]))
        exact = bool(np.isclose(swept, other_value, rtol=1e-9).any())
        near = float(swept[np.argmin(np.abs(np.log(swept) - np.log(other_value)))])
        slice_table = results[np.isclose(results[other].astype(float), near, rtol=1e-9)]
        joint = results
        if not exact:
            notes.append(f"{other} = {_fmt(other_value)} was not swept: only the joint laws "
                         f"predict there; backtests and baselines use the runs at the "
                         f"nearest {other} swept, {_fmt(near)}.")
    point = {axis: float(target[axis])}
    if other is not None and other_value is not None:
        point[other] = other_value
    sizes = np.sort(slice_table[axis].unique().astype(float))
    return _Problem(axis=axis, other=other if joint is not None or other else None,
                    point=point, table=slice_table, joint=joint,
                    folds=_folds(slice_table, joint, axis, y, sizes), sizes=sizes, y=y,
                    exact_slice=exact, notes=notes)


def _compute_problem(curves: pd.DataFrame, target: dict, y: str) -> _Problem:
    from scalelab.runs.table import require_columns

    require_columns(curves, "run_id", "flops", y, what="a compute target")
    curves = curves[np.isfinite(pd.to_numeric(curves[y], errors="coerce"))]
    ends = curves.groupby("run_id")["flops"].max().sort_values()
    table = loss_envelope(curves, y, n_budgets=N_BUDGETS)
    sizes = np.sort(ends.unique().astype(float))
    folds = []
    ks = [k for k in range(1, MAX_FOLDS + 1) if sizes.size - k >= 4] or \
        ([1] if sizes.size >= 4 else [])
    top = float(sizes[-1])
    truth = table.iloc[[-1]].copy()
    for k in ks:
        kept = ends[ends < sizes[-k]].index
        left = loss_envelope(curves[curves["run_id"].isin(kept)], y, n_budgets=N_BUDGETS)
        left = left[left["flops"] < top]
        if len(left) < 4:
            continue
        folds.append(_Fold(k=k, cut=float(sizes[-k]), table=left, joint=None, truths=truth,
                           persistence=float(left[y].min()),
                           line=(np.log(left["flops"].to_numpy(float)[-LINE_SIZES:]),
                                 np.log(left[y].to_numpy(float)[-LINE_SIZES:]))))
    envelope_sizes = np.sort(table["flops"].to_numpy(float))
    return _Problem(axis="flops", other=None, point={"flops": float(target["compute"])},
                    table=table, joint=None, folds=folds, sizes=envelope_sizes, y=y,
                    exact_slice=True, notes=[])


# ---- predict ----------------------------------------------------------------------------
def predict(runs: pd.DataFrame, target, y: str = "val_loss", result: str = "final",
            level: float = LEVEL, choose: str = "best", where: str | None = None,
            n_bootstrap: int = 100, seed: int = 0,
            undertrained_threshold: float = UNDERTRAINED_THRESHOLD) -> Prediction:
    """Predict ``y`` at ``target`` with the law that backtests best, or say it cannot.

    Parameters
    ----------
    runs : runs table (one row per run × evaluation, as ``scalelab.load_runs`` gives, or
        one row per run).
    target : ``"params=2e5"``, ``"params=2e5,samples=4096"``, ``"compute=1e15"`` or the
        same as a dict.
    y : the column predicted (a positive metric: a loss, an error, CRPS).
    result : ``"final"`` (each run's last value) or ``"best"`` (lowest over its curve,
        as early stopping keeps).
    level : level of the prediction interval (0.9: the 5%–95% range of a new run's value).
    choose : ``"best"`` (the candidate of lowest backtest error) or ``"weighted"`` (a
        blend of those beating persistence, weights ∝ 1/ARE²).
    where : a pandas query selecting runs first (e.g. ``"params < 1e5"``).
    n_bootstrap, seed : bootstrap resamples of each fit (intervals) and their seed.
    undertrained_threshold : relative fall over the last fifth of training above which a
        run is flagged undertrained.
    """
    return predict_many(runs, [target], y=y, result=result, level=level, choose=choose,
                        where=where, n_bootstrap=n_bootstrap, seed=seed,
                        undertrained_threshold=undertrained_threshold)[0]


def predict_many(runs: pd.DataFrame, targets, y: str = "val_loss", result: str = "final",
                 level: float = LEVEL, choose: str = "best", where: str | None = None,
                 n_bootstrap: int = 100, seed: int = 0,
                 undertrained_threshold: float = UNDERTRAINED_THRESHOLD) -> list:
    """:func:`predict` for several targets; fits shared between targets are made once."""
    check_result(result)
    if choose not in CHOICES:
        raise ScalelabError(f"choose must be 'best' (the law of lowest backtest error) or "
                            f"'weighted' (a blend weighted by it), got {choose!r}.")
    if not 0 < level < 1:
        raise ScalelabError(f"level must be between 0 and 1 (e.g. 0.9), got {level}.")
    targets = [parse_target(t) for t in (targets if isinstance(targets, (list, tuple))
                                         else [targets])]
    if not targets:
        raise ScalelabError("predict needs at least one target, e.g. target='params=2e5'.")
    runs = select_runs(runs, where)
    if "loss_variant" in runs.columns and runs["loss_variant"].nunique() > 1:
        names = ", ".join(map(str, sorted(runs["loss_variant"].unique())))
        raise ScalelabError(f"predict: the runs hold several loss variants ({names}), whose "
                            f"laws differ; select one, e.g. runs[runs.loss_variant == "
                            f"'{sorted(runs['loss_variant'].unique())[0]}'] or --where "
                            f"\"loss_variant == '...'\".")
    results = result_rows(runs, y, result)
    results = results[np.isfinite(pd.to_numeric(results[y], errors="coerce"))]
    results = results[results[y].astype(float) > 0].reset_index(drop=True)
    if results.empty:
        raise TableError(f"predict: no run has a finite, positive {y!r}; fit a positive "
                         f"metric (a loss or an error) of finished runs.")
    flags = undertrained_runs(runs, y, result, undertrained_threshold)
    cache: dict = {}
    out = []
    for target in targets:
        if "compute" in target:
            if len(target) > 1:
                raise ScalelabError(f"target {target_text(target)}: a compute target stands "
                                    f"alone; write compute=C, or params=N[,samples=D].")
            curves = runs[runs["run_id"].isin(results["run_id"])] if "run_id" in runs else runs
            problem = _compute_problem(curves, target, y)
        else:
            problem = _size_problem(results, target, y)
        out.append(_solve(problem, target, y, result, level, choose, n_bootstrap, seed,
                          flags, undertrained_threshold, cache))
    return out


def select_runs(runs: pd.DataFrame, where: str | None = None) -> pd.DataFrame:
    """The finished runs, narrowed by a pandas query ``where``; one sentence if none is left."""
    if not isinstance(runs, pd.DataFrame):
        raise TableError(f"predict needs a runs table (pandas DataFrame), got "
                         f"{type(runs).__name__}; load one with scalelab.load_runs(path).")
    if "status" in runs.columns:
        runs = runs[runs["status"].fillna("finished") == "finished"]
    if where:
        try:
            runs = runs.query(where)
        except Exception as err:  # pandas raises many kinds for a bad expression
            raise ScalelabError(f"--where {where!r} is not a valid selection ({err}); write a "
                                f"pandas query over the table's columns, e.g. "
                                f"\"params < 1e5 and samples == 4096\".") from None
    if runs.empty:
        raise TableError("predict: no run is left to fit" + (f" after --where {where!r}"
                                                             if where else "") +
                         "; loosen the selection or check the store.")
    return runs


def _fit(candidate: _Candidate, table: pd.DataFrame, cache: dict, key):
    """The candidate fitted to ``table``, or the sentence why not (cached by key)."""
    key = (candidate.name, key)
    if key not in cache:
        try:
            cache[key] = candidate.fit(candidate.make(), table)
        except ScalelabError as err:
            cache[key] = str(err)
    return cache[key]


def _band(law, candidate: _Candidate, point: dict, level: float):
    inputs = candidate.inputs(point)
    if "group" in inputs:  # the group as the law stored it (4096, not 4096.0)
        same = [g for g in law.groups_ if np.isclose(float(g), float(inputs["group"]))]
        if not same:
            return math.nan, math.nan, math.nan, f"no runs at {inputs['group']:g} were fitted"
        inputs["group"] = same[0]
    try:
        band = law.predict_interval(level=level, kind="observation", **inputs)
    except ScalelabError as err:
        return math.nan, math.nan, math.nan, str(err)
    pred, lower, upper = (float(v) for v in band.iloc[0][["prediction", "lower", "upper"]])
    return pred, lower, upper, ""


def _solve(problem: _Problem, target, y, result, level, choose, n_bootstrap, seed, flags,
           threshold, cache) -> Prediction:
    axis = problem.axis
    y_min = float(problem.table[y].min())
    candidates = _candidates(axis, problem.other, y, n_bootstrap, seed, y_min, problem.joint)
    slice_key = (axis, problem.other, tuple(sorted(problem.table.index)), result)
    fold_rows, summary_rows, laws = [], [], {}
    for cand in candidates:
        if cand.joint and (problem.joint is None or problem.other is None):
            continue
        if not cand.joint and not problem.exact_slice:
            continue
        table = problem.joint if cand.joint else problem.table
        n_sizes = problem.sizes.size
        note = ""
        if n_sizes < cand.min_sizes:
            note = f"needs {cand.min_sizes}+ sizes, the runs have {n_sizes}"
        law = None
        if not note:
            law = _fit(cand, table, cache, ("all",) + slice_key)
            if isinstance(law, str):
                note, law = law, None
        pred = lower = upper = math.nan
        if law is not None:
            pred, lower, upper, why = _band(law, cand, problem.point, level)
            note = note or why
            laws[cand.name] = law
        ares, covered = {}, []
        if law is not None:
            for fold in problem.folds:
                fold_table = fold.joint if cand.joint else fold.table
                if np.unique(fold_table[axis]).size < cand.min_sizes:
                    continue
                fitted = _fit(cand, fold_table, cache, (fold.k,) + slice_key)
                if isinstance(fitted, str):
                    continue
                errors = []
                for _, row in fold.truths.iterrows():
                    point = {c: float(row[c]) for c in (axis, problem.other) if c}
                    p, lo, hi, _ = _band(fitted, cand, point, level)
                    truth = float(row[y])
                    are = abs(p - truth) / truth
                    errors.append(are)
                    covered.append(bool(lo <= truth <= hi))
                    fold_rows.append({"law": cand.name, "k": fold.k,
                                      "left_out_from": fold.cut,
                                      axis: point[axis], "truth": truth, "prediction": p,
                                      "lower": lo, "upper": hi, "are": are,
                                      "covered": covered[-1]})
                ares[fold.k] = float(np.mean(errors))
        summary_rows.append(_summary_row(cand.name, cand.formula, ares, covered, pred, lower,
                                         upper, note, problem.folds))
    baselines = _baselines(problem, y, fold_rows)
    candidates_table = pd.DataFrame(summary_rows)
    if candidates_table.empty:
        candidates_table = pd.DataFrame(columns=baselines.columns)
    candidates_table["weight"] = 0.0
    return _choose(problem, target, y, result, level, choose, candidates_table, baselines,
                   pd.DataFrame(fold_rows), flags, threshold, laws)


def _summary_row(name, formula, ares: dict, covered, pred, lower, upper, note, folds) -> dict:
    row = {"law": name, "formula": formula,
           "backtest_are": float(np.mean(list(ares.values()))) if ares else math.nan}
    for fold in folds:
        row[f"are_k{fold.k}"] = ares.get(fold.k, math.nan)
    row.update({"covered": float(np.mean(covered)) if covered else math.nan,
                "prediction": pred, "lower": lower, "upper": upper, "note": note})
    if folds and not ares and not note:
        row["note"] = "could not be fitted with the largest sizes left out"
    return row


def _baselines(problem: _Problem, y: str, fold_rows: list) -> pd.DataFrame:
    axis = problem.axis
    target_x = problem.point[axis]
    rows = []
    for name, formula in (("persistence", "value of the largest run"),
                          ("log–log line", f"line through the largest {LINE_SIZES} sizes")):
        ares = {}
        for fold in problem.folds:
            errors = []
            for _, row in fold.truths.iterrows():
                truth = float(row[y])
                p = fold.persistence if name == "persistence" else \
                    _line_predict(fold.line, float(row[axis]))
                errors.append(abs(p - truth) / truth)
                fold_rows.append({"law": name, "k": fold.k,
                                  "left_out_from": fold.cut,
                                  axis: float(row[axis]), "truth": truth, "prediction": p,
                                  "lower": math.nan, "upper": math.nan, "are": errors[-1],
                                  "covered": False})
            ares[fold.k] = float(np.mean(errors))
        if name == "persistence":
            pred = _persistence_value(problem)
        else:
            line = (_line_points(problem.table, axis, y) if axis != "flops" else
                    (np.log(problem.table["flops"].to_numpy(float)[-LINE_SIZES:]),
                     np.log(problem.table[y].to_numpy(float)[-LINE_SIZES:])))
            pred = _line_predict(line, target_x)
        row = _summary_row(name, formula, ares, [], pred, math.nan, math.nan, "", problem.folds)
        row["covered"] = math.nan
        row["weight"] = 0.0
        rows.append(row)
    return pd.DataFrame(rows)


def _persistence_value(problem: _Problem) -> float:
    if problem.axis == "flops":
        return float(problem.table[problem.y].min())
    return float(_size_means(problem.table, problem.axis, problem.y).iloc[-1])


def _seed_spread(problem: _Problem) -> float:
    """Standard deviation of log y over the seeds of the largest size (0 with one seed)."""
    if problem.axis == "flops":
        return 0.0
    top = problem.table[problem.table[problem.axis] == problem.sizes[-1]][problem.y]
    return float(np.std(np.log(top.astype(float)), ddof=1)) if len(top) > 1 else 0.0


def _choose(problem, target, y, result, level, choose, cands, baselines, backtests, flags,
            threshold, laws) -> Prediction:
    persistence = baselines.set_index("law").loc["persistence"]
    p_are = float(persistence["backtest_are"])
    notes = list(problem.notes)
    flagged = _flagged(problem, flags)
    if flagged:
        notes.append(f"{len(flagged)} of the runs at the two largest {problem.axis} are still "
                     f"improving at their last step (a fall of more than {threshold:.0%} over "
                     f"the last fifth of training): undertrained ({', '.join(flagged[:4])}"
                     f"{', …' if len(flagged) > 4 else ''}).")
    scored = cands[np.isfinite(cands["backtest_are"]) & np.isfinite(cands["prediction"])]
    common = dict(target=target, y=y, result=result, level=level, choose=choose,
                  axis=problem.axis, at={k: v for k, v in problem.point.items()
                                         if k != problem.axis},
                  baselines=baselines, backtests=backtests, notes=notes,
                  undertrained=flags, laws=laws)
    if not problem.folds:
        notes.append(f"not backtested: a backtest needs runs at 4 or more {problem.axis} "
                     f"values, the table has {problem.sizes.size}.")
        usable = cands[np.isfinite(cands["prediction"])]
        if usable.empty:
            return _persistence(problem, cands, p_are, level, common,
                                "no law could be fitted and there is no backtest; this is "
                                "the value of the largest run.")
        i = usable.index[0]
        cands.loc[i, "weight"] = 1.0
        row = cands.loc[i]
        return Prediction(prediction=row["prediction"], lower=row["lower"],
                          upper=row["upper"], law=f"{row['law']} (not backtested)",
                          candidates=cands, **common)
    beating = scored[scored["backtest_are"] < p_are]
    if beating.empty:
        best = scored.sort_values("backtest_are").iloc[0] if len(scored) else None
        return _persistence(problem, cands, p_are, level, common,
                            _why_persistence(problem, best, p_are, flagged))
    if choose == "best":
        i = beating["backtest_are"].idxmin()
        cands.loc[i, "weight"] = 1.0
        row = cands.loc[i]
        return Prediction(prediction=row["prediction"], lower=row["lower"], upper=row["upper"],
                          law=row["law"], candidates=cands, **common)
    weights = 1.0 / np.maximum(beating["backtest_are"].to_numpy(float), 1e-6) ** 2
    weights /= weights.sum()
    cands.loc[beating.index, "weight"] = weights
    blend = {c: float(np.dot(weights, beating[c].to_numpy(float)))
             for c in ("prediction", "lower", "upper")}
    names = " + ".join(f"{w:.2f}·{n}" for w, n in zip(weights, beating["law"]))
    pred = Prediction(**blend, law=f"blend {names}" if len(beating) > 1 else
                      str(beating["law"].iloc[0]), candidates=cands, **common)
    pred._blend_are = _blend_are(backtests, dict(zip(beating["law"], weights)))
    return pred


def _blend_are(backtests: pd.DataFrame, weights: dict) -> float:
    rows = backtests[backtests["law"].isin(weights)]
    if rows.empty:
        return math.nan
    rows = rows.assign(w=rows["law"].map(weights))
    ares = []
    for _, fold in rows.groupby("k"):
        per_truth = fold.groupby("truth").apply(
            lambda g: abs(np.dot(g["w"], g["prediction"]) / g["w"].sum() - g.name) / g.name,
            include_groups=False)
        ares.append(float(per_truth.mean()))
    return float(np.mean(ares))


def _flagged(problem: _Problem, flags: pd.DataFrame) -> list:
    if flags.empty or problem.axis == "flops" or problem.axis not in flags.columns:
        return [str(r) for r in flags.loc[flags["undertrained"], "run_id"]] \
            if len(flags) else []
    top = problem.sizes[-2:]
    ids = problem.table.loc[problem.table[problem.axis].isin(top), "run_id"] \
        if "run_id" in problem.table else []
    sel = flags[flags["run_id"].isin(ids) & flags["undertrained"]]
    return [str(r) for r in sel["run_id"]]


def _why_persistence(problem: _Problem, best, p_are: float, flagged: list) -> str:
    head = (f"No law beats persistence in the backtest (best law {best['law']}: ARE "
            f"{best['backtest_are']:.2%}; persistence {p_are:.2%})" if best is not None else
            f"No law could be backtested (persistence ARE {p_are:.2%})")
    reasons = []
    if flagged:
        reasons.append("the largest runs are undertrained: still improving at their last "
                       "step, so their values confound size with training length")
    if problem.axis != "flops" and problem.sizes.size >= 2:
        means = _size_means(problem.table, problem.axis, problem.y)
        drop = 1 - float(means.iloc[-1] / means.iloc[-2])
        noise = max(0.01, 2 * _seed_spread(problem))
        if drop < noise:
            reasons.append(f"the value is at its floor: it fell {drop:.1%} from the "
                           f"second-largest to the largest {problem.axis}, within the "
                           f"{noise:.1%} of noise between runs, so a bigger run is not "
                           f"expected to do measurably better")
    if not reasons:
        reasons.append("the trend over the sizes swept is too irregular to extrapolate")
    return (head + ": " + "; and ".join(reasons) + ". The prediction is the value of the "
            "largest run, with an interval from the runs' spread.")


def _persistence(problem, cands, p_are, level, common, sentence) -> Prediction:
    value = _persistence_value(problem)
    z = float(norm.ppf(0.5 + level / 2))
    spread = math.hypot(_seed_spread(problem), p_are if math.isfinite(p_are) else 0.0)
    return Prediction(prediction=value, lower=value * math.exp(-z * spread),
                      upper=value * math.exp(z * spread), law="persistence",
                      candidates=cands, sentence=sentence, **common)


# ---- targets ----------------------------------------------------------------------------
def parse_target(target) -> dict:
    """``"params=2e5"``, ``"params=2e5,samples=1e6"`` or a dict → ``{"params": 2e5, ...}``."""
    from scalelab.targets import parse_target as parse_text

    if isinstance(target, dict):
        return parse_text(",".join(f"{k}={v}" for k, v in target.items()))
    return parse_text(str(target))


def target_text(target: dict) -> str:
    return ",".join(f"{k}={v:g}" for k, v in target.items())


def _fmt(value) -> str:
    value = float(value)
    return f"{value:,.0f}" if value.is_integer() and abs(value) < 1e7 else f"{value:.3g}"


def _pct(value, digits: int = 1) -> str:
    return f"{value:.{digits}%}" if isinstance(value, (int, float)) and math.isfinite(value) \
        else "—"
