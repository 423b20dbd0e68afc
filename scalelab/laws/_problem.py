"""What :func:`scalelab.laws.predict` fits and holds out: targets, problems, folds, baselines.

- A **target** names any of ``params`` (N), ``samples`` (U, distinct samples),
  ``samples_seen`` (D, samples seen), ``epochs`` (D/U) and ``compute`` (C); it is resolved
  to a point in the columns the table varies (epochs with U gives D; compute with N gives
  the data axis through the table's FLOPs per parameter-sample; a size the target leaves
  out is the largest the table swept, D following U at the table's epochs).
- A **problem** is a target over a table: the axis extrapolated (the named size furthest
  beyond the runs, or the compute C), the runs at the target's other sizes (the
  *slice*, for laws in one variable) and every run (for joint laws, whatever grid they
  lie on: fixed U per N, multiples of N, IsoFLOP budgets, many epochs).
- **Folds** (Choshen et al. 2024, §3–5): leave the k largest sizes of the axis out with
  everything at them (k = 1, 2, 3 while 4+ sizes remain in; k = 1, 2 from 3 when fewer), fit on the rest, predict
  what was left out: the slice's runs when the target has a slice, else every run left
  out; for a compute target the k largest budgets and their best runs.
- **Baselines** at each held-out point: persistence (the runs of the largest size left
  in, the nearest to the point in the other sizes; their mean) and the log–log line
  through the largest three sizes left in (their runs nearest to the point).

Torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError, TableError
from scalelab.runs.columns import axis_symbol

#: the size columns a law may extrapolate in, in the order they are tried
SIZE_AXES = ("params", "samples", "samples_seen")
#: sizes the log–log line is drawn through
LINE_SIZES = 3
#: most leave-largest-k-out folds
MAX_FOLDS = 3
#: budgets of the loss envelope for compute targets read off training curves
N_BUDGETS = 12
#: relative gap in log10 FLOPs that separates two IsoFLOP budgets
BUDGET_GAP = 0.02
#: FLOPs per parameter-sample when the table records none
DEFAULT_FLOPS_PER_PARAM_SAMPLE = 6.0


def symbol(axis: str) -> str:
    return axis_symbol(axis)


@dataclass
class Fold:
    """One backtest: fit on ``left``, predict ``held`` (with ``truth``, ``distance``,
    and the baselines' predictions at each held-out point)."""

    k: int
    cut: float
    left: pd.DataFrame  # every run (or envelope point) left in
    left_slice: pd.DataFrame | None  # the slice's runs left in (slice laws)
    held: pd.DataFrame  # the points predicted: their sizes and y
    distance: np.ndarray
    persistence: np.ndarray
    line: np.ndarray
    pooled: "Fold | None" = None  # every run left out (joint laws), when held is a slice


@dataclass
class Problem:
    kind: str  # "size" or "compute"
    axis: str  # the column extrapolated
    point: dict  # the target in the table's columns
    runs: pd.DataFrame  # every run's result (one row per run)
    table: pd.DataFrame  # what slice laws fit: the slice's runs, or the compute envelope
    exact_slice: bool
    axes: list  # the size columns the table varies
    data_axes: list  # the varying data columns a joint law's D may be
    folds: list
    sizes: np.ndarray  # distinct sizes of the axis among the points evaluated
    y: str
    distance: float  # how far beyond the runs the target lies
    flops_per_param_sample: float = DEFAULT_FLOPS_PER_PARAM_SAMPLE
    notes: list = field(default_factory=list)
    other: str | None = None  # the one other size swept (grouped laws), if one
    curves: pd.DataFrame | None = None  # every evaluation of the runs (curve laws), if any
    lr: str | None = None  # the curves' learning-rate column

    @property
    def at(self) -> dict:
        return {k: v for k, v in self.point.items() if k != self.axis and k in self.axes}


# ---- targets ----------------------------------------------------------------------------
def _varies(table: pd.DataFrame, column: str) -> bool:
    return column in table.columns and table[column].nunique() >= 2


def varying_axes(results: pd.DataFrame) -> list:
    axes = [c for c in SIZE_AXES if _varies(results, c)]
    if {"samples", "samples_seen"} <= set(axes) and np.allclose(
            results["samples"].astype(float), results["samples_seen"].astype(float), rtol=1e-6):
        axes.remove("samples_seen")  # one epoch everywhere: D is U
    return axes


def flops_per_param_sample(results: pd.DataFrame, data_axis: str | None) -> float:
    """The table's FLOPs per parameter per sample (median of C/(N·D)), or 6."""
    if data_axis and {"flops", "params", data_axis} <= set(results.columns):
        ratio = (results["flops"].astype(float) /
                 (results["params"].astype(float) * results[data_axis].astype(float)))
        ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
        if len(ratio):
            return float(ratio.median())
    return DEFAULT_FLOPS_PER_PARAM_SAMPLE


def _fmt(value) -> str:
    value = float(value)
    return f"{value:,.0f}" if value.is_integer() and abs(value) < 1e7 else f"{value:.3g}"


def resolve_point(target: dict, results: pd.DataFrame) -> tuple[dict, list, list]:
    """The target as a point in the table's size columns, the axes named, and notes."""
    target = dict(target)
    notes: list = []
    for key in ("params", "samples", "samples_seen"):
        if key in target and key not in results.columns:
            if key == "samples_seen" and "samples" in results.columns:
                continue  # D without a samples_seen column: the runs saw each sample once
            raise TableError(f"predict: the target names {key} but the runs table has no "
                             f"{key!r} column; name a column the table holds.")
    if "epochs" in target:
        epochs = target.pop("epochs")
        if "samples" in target and "samples_seen" in target:
            raise ScalelabError("a target gives at most two of samples, samples_seen and "
                                "epochs (the third is D = epochs·U); drop one.")
        if "samples_seen" in target:
            target["samples"] = target["samples_seen"] / epochs
        else:
            if "samples" not in target:
                if "samples" not in results.columns:
                    raise TableError("predict: the target names epochs but the runs table "
                                     "has no 'samples' column (distinct samples U) to count "
                                     "them against.")
                target["samples"] = float(results["samples"].max())
            target["samples_seen"] = target["samples"] * epochs
    named = [k for k in SIZE_AXES if k in target]
    if "compute" in target:
        compute = target.pop("compute")
        axes = varying_axes(results)
        data = [a for a in ("samples_seen", "samples") if a in axes]
        if "params" not in target or [a for a in data if a in target]:
            raise ScalelabError("a compute target stands alone (compute=C) or with the "
                                "model size (params=N,compute=C, which gives the samples "
                                "seen as C/(k·N)); drop the other sizes.")
        axis = data[0] if data else ("samples_seen" if "samples_seen" in results.columns
                                     else "samples")
        k = flops_per_param_sample(results, axis)
        target[axis] = compute / (k * target["params"])
        notes.append(f"compute = {_fmt(compute)} at N = {_fmt(target['params'])} is "
                     f"{symbol(axis)} = {_fmt(target[axis])} at the table's "
                     f"{k:.3g} FLOPs per parameter-sample.")
        named.append(axis)
    point = {}
    for key in SIZE_AXES:
        if key in target:
            point[key] = float(target[key])
        elif key in results.columns:
            values = results[key].astype(float)
            if key == "samples_seen" and "samples" in point and "samples" in results.columns:
                # D follows U at the epochs of the runs at the largest U
                top = results[np.isclose(results["samples"].astype(float),
                                         float(results["samples"].max()))]
                epochs = float((top["samples_seen"] / top["samples"]).max())
                point[key] = point["samples"] * max(epochs, 1.0)
            else:
                point[key] = float(values.max())
    if "samples_seen" in point and "samples_seen" not in results.columns:
        point.pop("samples_seen")
    return point, named, notes


# ---- size problems ----------------------------------------------------------------------
def nearest_runs(left: pd.DataFrame, point: dict, others: list) -> pd.DataFrame:
    """The rows of ``left`` nearest to ``point`` in the ``others`` columns (log distance)."""
    if not others or left.empty:
        return left
    gap = np.zeros(len(left))
    for col in others:
        gap += np.abs(np.log(left[col].to_numpy(float)) - math.log(point[col]))
    return left[gap <= gap.min() + 1e-9]


def _baselines_at(left: pd.DataFrame, axis: str, others: list, y: str, point: dict):
    """Persistence and the log–log line at ``point`` from the rows ``left``."""
    sizes = np.sort(left[axis].unique().astype(float))
    if sizes.size == 0:
        return math.nan, math.nan
    top = left[np.isclose(left[axis].astype(float), sizes[-1])]
    persistence = float(nearest_runs(top, point, others)[y].astype(float).mean())
    xs, ys = [], []
    for size in sizes[-LINE_SIZES:]:
        rows = nearest_runs(left[np.isclose(left[axis].astype(float), size)], point, others)
        xs.append(math.log(size))
        ys.append(math.log(float(rows[y].astype(float).mean())))
    if len(xs) < 2:
        return persistence, math.nan
    slope, intercept = np.polyfit(xs, ys, 1)
    return persistence, float(np.exp(intercept + slope * math.log(point[axis])))


def _distance(held: pd.DataFrame, left: pd.DataFrame, axes: list) -> np.ndarray:
    d = np.ones(len(held))
    for col in axes:
        top = float(left[col].astype(float).max())
        d = np.maximum(d, held[col].to_numpy(float) / top)
    return d


def _fold_ks(n_sizes: int) -> list:
    ks = [k for k in range(1, MAX_FOLDS + 1) if n_sizes - k >= 4]
    if len(ks) < 2:  # a second fold from 3 sizes rather than one fold: errors to compare
        ks = [k for k in (1, 2) if n_sizes - k >= 3]
    return ks


def size_problem(results: pd.DataFrame, target: dict, y: str) -> Problem:
    """Extrapolation in a size (N, U or D) at the target's other sizes."""
    point, named, notes = resolve_point(target, results)
    axes = varying_axes(results)
    if not named:
        raise ScalelabError("a target names a size: params, samples, samples_seen, epochs "
                            "or compute (e.g. params=1e8).")
    candidates = [a for a in named if a in axes] or named
    axis = max(candidates, key=lambda a: point[a] / float(results[a].astype(float).max()))
    for col in named:
        if col not in axes and col != axis and col in results.columns:
            value = float(results[col].iloc[0])
            if not np.isclose(value, point[col], rtol=1e-9):
                notes.append(f"every run has {col} = {_fmt(value)}; {col} = "
                             f"{_fmt(point[col])} is not modelled, so this is the "
                             f"prediction at {col} = {_fmt(value)}.")
                point[col] = value
    if results[axis].nunique() < 2:
        raise TableError(f"predict: every run has {axis} = {_fmt(results[axis].iloc[0])}; "
                         f"a prediction in {axis} needs runs at 2 or more {axis} values (3+ "
                         f"for a law, 4+ for a backtest), so add runs of other sizes.")
    others = [a for a in axes if a != axis]
    data_axes = [a for a in ("samples", "samples_seen") if a in axes]
    match = np.ones(len(results), dtype=bool)
    for col in others:
        match &= np.isclose(results[col].astype(float), point[col], rtol=1e-6)
    slice_table = results[match]
    exact = bool(match.any())
    if not exact and others:
        near = nearest_runs(results, point, others)
        swept = ", ".join(f"{c} = {_fmt(near[c].iloc[0])}" for c in others)
        notes.append(f"{', '.join(f'{c} = {_fmt(point[c])}' for c in others)} was not swept: "
                     f"only the joint laws predict there (the nearest runs swept are at "
                     f"{swept}).")
    evaluated = slice_table if exact else results
    sizes = np.sort(evaluated[axis].unique().astype(float))
    folds = []
    for k in _fold_ks(sizes.size):
        cut = sizes[-k]
        left = results[results[axis].astype(float) < cut * (1 - 1e-9)]
        held = evaluated[evaluated[axis].astype(float) >= cut * (1 - 1e-9)]
        baselines = [_baselines_at(left, axis, others, y, row)
                     for row in held[axes or [axis]].to_dict("records")]
        fold = Fold(k=k, cut=float(cut), left=left,
                    left_slice=slice_table[slice_table[axis].astype(float) < cut * (1 - 1e-9)]
                    if exact else None,
                    held=held, distance=_distance(held, left, axes or [axis]),
                    persistence=np.array([b[0] for b in baselines]),
                    line=np.array([b[1] for b in baselines]))
        everything = results[results[axis].astype(float) >= cut * (1 - 1e-9)]
        if exact and others and len(everything) > len(held):
            pooled = [_baselines_at(left, axis, others, y, row)
                      for row in everything[axes].to_dict("records")]
            fold.pooled = Fold(k=k, cut=float(cut), left=left, left_slice=None,
                               held=everything, distance=_distance(everything, left, axes),
                               persistence=np.array([b[0] for b in pooled]),
                               line=np.array([b[1] for b in pooled]))
        else:
            fold.pooled = fold
        folds.append(fold)
    distance = max([1.0] + [point[a] / float(results[a].astype(float).max())
                            for a in (axes or [axis]) if a in point])
    other = others[0] if len(others) == 1 else None
    return Problem(kind="size", axis=axis, point=point, runs=results, table=slice_table,
                   exact_slice=exact, axes=axes or [axis], data_axes=data_axes, folds=folds,
                   sizes=np.sort(slice_table[axis].unique().astype(float)) if exact else sizes,
                   y=y, distance=float(distance),
                   flops_per_param_sample=flops_per_param_sample(
                       results, data_axes[-1] if data_axes else None),
                   notes=notes, other=other)


def target_baselines(problem: Problem) -> tuple[float, float]:
    """Persistence and the log–log line at the target, from every run."""
    if problem.kind == "compute":
        env = problem.table
        persistence = float(env[problem.y].min())
        tail = env.iloc[-LINE_SIZES:]
        if len(tail) < 2:
            return persistence, math.nan
        slope, intercept = np.polyfit(np.log(tail["flops"].to_numpy(float)),
                                      np.log(tail[problem.y].to_numpy(float)), 1)
        return persistence, float(np.exp(intercept + slope * math.log(problem.point["flops"])))
    others = [a for a in problem.axes if a != problem.axis]
    return _baselines_at(problem.runs, problem.axis, others, problem.y, problem.point)


# ---- compute problems -------------------------------------------------------------------
def _budgets(results: pd.DataFrame) -> np.ndarray:
    """A budget label per run: runs whose FLOPs agree within BUDGET_GAP (in log10) share one."""
    logs = np.log10(results["flops"].to_numpy(float))
    order = np.argsort(logs)
    labels = np.empty(len(logs), dtype=int)
    label, previous = 0, None
    for i in order:
        if previous is not None and logs[i] - previous > BUDGET_GAP:
            label += 1
        labels[i] = label
        previous = logs[i]
    return labels


def is_isoflop(results: pd.DataFrame) -> bool:
    """Whether the runs' final FLOPs fall into shared budgets (2+ budgets of 2+ runs)."""
    if "flops" not in results.columns or len(results) < 4:
        return False
    counts = np.bincount(_budgets(results))
    return int((counts >= 2).sum()) >= 2


def budget_envelope(results: pd.DataFrame, y: str) -> pd.DataFrame:
    """The best run of each IsoFLOP budget: ``flops`` (the budget's median), ``y`` and the
    best run's sizes."""
    labels = _budgets(results)
    rows = []
    for label in np.unique(labels):
        part = results[labels == label]
        best = part.loc[part[y].astype(float).idxmin()]
        row = {"flops": float(part["flops"].astype(float).median()), y: float(best[y])}
        for col in SIZE_AXES:
            if col in part.columns:
                row[col] = float(best[col])
        rows.append(row)
    return pd.DataFrame(rows).sort_values("flops").reset_index(drop=True)


def compute_problem(results: pd.DataFrame, curves: pd.DataFrame, target: dict,
                    y: str) -> Problem:
    """Extrapolation of the best loss reachable at a compute budget C."""
    from scalelab.laws.allocation import loss_envelope
    from scalelab.runs.table import require_columns

    require_columns(results, "flops", y, what="a compute target")
    point = {"flops": float(target["compute"])}
    isoflop = is_isoflop(results)
    if isoflop:
        envelope = budget_envelope(results, y)
        ends = results["flops"].astype(float)
    else:
        require_columns(curves, "run_id", "flops", y, what="a compute target")
        curves = curves[np.isfinite(pd.to_numeric(curves[y], errors="coerce"))]
        envelope = loss_envelope(curves, y, n_budgets=N_BUDGETS)
        ends = curves.groupby("run_id")["flops"].max()
    sizes = np.sort(envelope["flops"].to_numpy(float))
    top = float(sizes[-1])
    folds, seen = [], set()
    for k in _fold_ks(sizes.size):
        cut = float(sizes[-k])
        if isoflop:
            left_runs = results[results["flops"].astype(float) < cut * 10**(-BUDGET_GAP / 2)]
            left = envelope[envelope["flops"] < cut * (1 - 1e-9)]
            held = envelope[envelope["flops"] >= cut * (1 - 1e-9)]
        else:
            kept = ends[ends < cut].index
            if frozenset(kept) in seen:  # no run ends between these budgets: the same fold
                continue
            seen.add(frozenset(kept))
            left_runs = results[results["run_id"].isin(kept)] if "run_id" in results else \
                results.iloc[:0]
            left = loss_envelope(curves[curves["run_id"].isin(kept)], y, n_budgets=N_BUDGETS)
            left = left[left["flops"] < top]
            held = envelope.iloc[[-1]]
        if len(left) < 3:
            continue
        baselines = [_baselines_at(left, "flops", [], y, row)
                     for row in held[["flops"]].to_dict("records")]
        fold = Fold(k=k, cut=cut, left=left_runs, left_slice=left, held=held,
                    distance=held["flops"].to_numpy(float) / float(left["flops"].max()),
                    persistence=np.array([float(left[y].min())] * len(held)),
                    line=np.array([b[1] for b in baselines]))
        fold.pooled = fold
        folds.append(fold)
    axes = varying_axes(results)
    data_axes = [a for a in ("samples", "samples_seen") if a in axes]
    return Problem(kind="compute", axis="flops", point=point, runs=results, table=envelope,
                   exact_slice=True, axes=["flops"], data_axes=data_axes, folds=folds,
                   sizes=sizes, y=y, distance=max(1.0, point["flops"] / top),
                   flops_per_param_sample=flops_per_param_sample(
                       results, data_axes[-1] if data_axes else None),
                   notes=[] if isoflop else [])
