"""Predictions that say whether they beat the naive guess, and how far to trust them.

For a target (``params=2e5``, ``params=1e9,samples=2e10``, ``params=1e6,epochs=40``,
``compute=1e18``) :func:`predict` fits every law form the data allow, backtests each,
compares them with two naive guesses and returns a :class:`Prediction`:

- **Candidates** are the registered laws (:mod:`scalelab.laws.registry`; a law declares
  itself beside its class): laws in one variable fitted at the target's other sizes
  (E + A·x^(−α), A·x^(−α), the smoothly broken power law), and joint laws fitted to
  every run of the table whatever grid it lies on (fixed U per N, over-training
  multiples of N, IsoFLOP budgets, many epochs): Chinchilla's, Kaplan's, the
  over-training law of Gadre et al. 2024, the data-constrained law of Muennighoff et al.
  2023 where runs repeat their data, the shared-exponent power law. A compute target is
  answered by the compute-envelope law L*(C) = E + A·C^(−α) fitted to each budget's best
  run (Hoffmann et al. 2022, approaches 1–2) and by the joint laws' lowest loss at C.
- **Backtests** (:mod:`scalelab.laws._problem`; Choshen et al. 2024, §3–5): the k largest
  sizes left out with every run at them, the rest fitted, what was left out predicted;
  the absolute relative error ARE = |pred − truth|/truth, its mean over the folds the
  candidate's backtest error.
- **Baselines**: persistence (the largest run left in, nearest in the other sizes) and
  the log–log line through the largest three sizes.
- **Choice**: ``choose="best"`` (default) takes the candidate of lowest backtest error
  that beats persistence; ``choose="weighted"`` blends those that beat it (weights ∝
  1/ARE²). Where none does, the prediction is persistence and ``sentence`` says why.
- **Intervals** (:mod:`scalelab.laws.intervals`): the bootstrap interval of what is used,
  widened by its own backtest errors as they grow with the distance of extrapolation
  (split-conformal on the folds). Each prediction states its ``distance`` (target ÷
  largest run), the ``backtested_distance`` its folds reached and the ``coverage`` of
  its intervals there (each fold's interval built from the other folds' errors);
  beyond twice the backtested distance it says so.

Torch-free: a runs table in (one row per run × evaluation, or one per run), numbers out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from scalelab._errors import ScalelabError, TableError
from scalelab.laws import intervals
from scalelab.laws._problem import (LINE_SIZES, Problem, compute_problem, nearest_runs,
                                    size_problem, symbol, target_baselines)
from scalelab.laws.base import check_level, check_metric_column
from scalelab.targets import TARGET_KEYS  # noqa: F401 - re-exported
from scalelab.laws.registry import FitContext, registered_candidates
from scalelab.laws.regime import (UNDERTRAINED_THRESHOLD, check_result, result_rows,
                                  undertrained_runs)

LEVEL = 0.9
CHOICES = ("best", "weighted")
#: beyond this many times the distance its backtests reached, a prediction says so
FAR = 2.0
#: models tried per compute budget when a joint law answers a compute target
OPTIMUM_GRID = 241
#: the share of each training curve (its last part) a curve law is fitted to
CURVE_TAIL = 0.5


@dataclass
class Prediction:
    """A prediction for one target with the evidence for trusting it.

    ``candidates``: one row per law form tried — ``law`` (name), ``formula``,
    ``backtest_are`` (mean ARE over the folds), ``are_k1``, ``are_k2``, … (ARE when
    the k largest sizes were left out), ``covered`` (share of backtest truths inside the
    widened interval), ``prediction``/``lower``/``upper`` at the target, ``weight`` in
    the choice, ``note`` (why a form could not be fitted). ``baselines``: the same
    columns for ``persistence`` and ``log–log line``. ``backtests``: one row per
    candidate × fold × held-out point (truth, prediction, interval, ARE, distance).
    ``distance``: how far beyond the runs the target lies (target ÷ largest, in the
    axis extrapolated); ``backtested_distance``: the farthest its backtests reached;
    ``coverage``: the share of backtest truths inside the interval of what is used.
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
    at: dict  # the other sizes held fixed ({"samples": 4096}), or {}
    candidates: pd.DataFrame
    baselines: pd.DataFrame
    backtests: pd.DataFrame
    sentence: str | None = None  # why persistence is used, or a warning on distance
    notes: list = field(default_factory=list)
    undertrained: pd.DataFrame = field(default_factory=pd.DataFrame)
    laws: dict = field(default_factory=dict)  # candidate name -> law fitted on all runs
    distance: float = math.nan
    backtested_distance: float = math.nan
    coverage: float = math.nan
    point: dict = field(default_factory=dict)  # the target in the table's columns
    _curves: dict = field(default_factory=dict, repr=False)  # law -> predictor along the axis

    def curve(self, values) -> pd.DataFrame:
        """What was used, along the axis extrapolated at the target's other sizes:
        ``prediction``, ``lower``, ``upper`` (the bootstrap band of the law used; a
        blend's is the weighted one) at each of ``values``; empty for persistence."""
        values = np.atleast_1d(np.asarray(values, dtype=float))
        used = self.candidates[self.candidates["weight"] > 0]
        parts = [(w, self._curves[n]) for n, w in zip(used["law"], used["weight"])
                 if n in self._curves]
        if not parts or self.law == "persistence":
            return pd.DataFrame(columns=[self.axis, "prediction", "lower", "upper"])
        points = pd.DataFrame({**{k: v for k, v in self.point.items()}, self.axis: values}
                              if self.point else {self.axis: values})
        total = None
        for weight, predictor in parts:
            got = predictor(points)
            if isinstance(got, str):
                return pd.DataFrame(columns=[self.axis, "prediction", "lower", "upper"])
            got = np.vstack(got) * weight
            total = got if total is None else total + got
        total = total / sum(w for w, _ in parts)
        return pd.DataFrame({self.axis: values, "prediction": total[0], "lower": total[1],
                             "upper": total[2]})

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
        return self.law != "persistence" and "not backtested" not in self.law

    @property
    def far(self) -> bool:
        """The target lies beyond twice the distance the backtests reached."""
        return bool(math.isfinite(self.distance) and (
            not math.isfinite(self.backtested_distance) or
            self.distance > FAR * self.backtested_distance))

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
            "choose": self.choose, "axis": self.axis,
            "at": {k: num(v) for k, v in self.at.items()},
            "distance": num(self.distance),
            "backtested_distance": num(self.backtested_distance),
            "coverage": num(self.coverage), "far": self.far,
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
                 f"[{self.lower:.5g}, {self.upper:.5g}]   law: {self.law}",
                 f"  distance {self.distance:.3g}× the largest run in {symbol(self.axis)}; "
                 f"backtests reached {self.backtested_distance:.3g}×, where the intervals "
                 f"covered {_pct(self.coverage, 0)} of the truths"]
        if self.sentence:
            lines.append(f"  {self.sentence}")
        folds = [c for c in self.candidates.columns if c.startswith("are_k")]
        lines.append(f"  backtest (leave the k largest {self.axis} out, predict them; ARE):")
        head = f"    {'law':<34}" + "".join(f"{'k=' + c[5:]:>8}" for c in folds) + \
            f"{'mean':>8}{'covered':>9}   prediction [interval]"
        lines.append(head)
        for _, r in self.table().iterrows():
            cells = "".join(f"{_pct(r[c]):>8}" for c in folds)
            mark = "*" if r["weight"] > 0 else " "
            pred = (f"{r['prediction']:.4g}" + (f" [{r['lower']:.4g}, {r['upper']:.4g}]"
                                                if np.isfinite(r["lower"]) else "")
                    if np.isfinite(r["prediction"]) else str(r["note"])[:60])
            lines.append(f"  {mark} {r['law']:<34}{cells}{_pct(r['backtest_are']):>8}"
                         f"{_pct(r['covered'], 0):>9}   {pred}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# ---- the candidates of a problem --------------------------------------------------------
@dataclass
class _Instance:
    """A registered candidate bound to a problem: which columns its roles read."""

    name: str
    formula: str
    candidate: object
    columns: dict  # role -> column
    optimum: bool = False  # a joint law answering a compute target

    @property
    def kind(self) -> str:
        return self.candidate.kind


ROLE_COLUMNS = {"N": "params", "U": "samples", "Dseen": "samples_seen", "P": "param_bits",
                "F": "qat_fraction"}


def _instances(problem: Problem) -> tuple[list, list]:
    """The candidates that apply to ``problem``, and rows for those that do not."""
    out, skipped = [], []
    for cand in registered_candidates():
        if cand.kind == "slice":
            formula = cand.formula.replace("{x}", symbol(problem.axis))
            if problem.kind == "size" and not problem.exact_slice:
                continue
            out.append(_Instance(cand.name, formula, cand, {"x": problem.axis}))
        elif cand.kind == "curves":
            if problem.kind != "size" or problem.curves is None or problem.axis != "params" \
                    or "params" not in problem.runs or problem.runs["params"].nunique() < 3:
                continue
            out.append(_Instance(cand.name, cand.formula, cand, {"N": "params"}))
        elif cand.kind == "grouped":
            if problem.kind != "size" or problem.other is None or not problem.exact_slice:
                continue
            formula = cand.formula.replace("{x}", symbol(problem.axis)).replace(
                "{g}", symbol(problem.other))
            out.append(_Instance(cand.name, formula, cand,
                                 {"x": problem.axis, "group": problem.other}))
        else:
            if "params" not in problem.runs.columns or problem.runs["params"].nunique() < 2 \
                    or not problem.data_axes:  # a joint law needs N and a data size to vary
                continue
            if problem.kind == "compute" and (not cand.optimum or set(cand.roles) != {"N", "D"}):
                continue
            data_axes = problem.data_axes if "D" in cand.roles else [None]
            for data in data_axes:
                columns = {r: (data if r == "D" else ROLE_COLUMNS[r]) for r in cand.roles}
                if any(c not in problem.runs.columns for c in columns.values()):
                    continue
                if "D" in cand.roles and not data:
                    continue
                name = cand.name if len(data_axes) < 2 or data == data_axes[0] else \
                    f"{cand.name} in {symbol(data)}"
                formula = cand.formula.replace("{D}", symbol(data) if data else "D")
                if cand.applies is not None:
                    why = cand.applies(problem.runs, columns)
                    if why:
                        skipped.append(_row(name, formula, {}, [], math.nan, math.nan,
                                            math.nan, why, problem.folds))
                        continue
                out.append(_Instance(name, formula, cand, columns,
                                     optimum=problem.kind == "compute"))
    return out, skipped


def _fit_table(inst: _Instance, problem: Problem, fold=None) -> pd.DataFrame:
    if inst.kind == "slice":
        return problem.table if fold is None else fold.left_slice
    runs = problem.runs if fold is None else fold.left
    if inst.kind == "curves":
        return problem.curves[problem.curves["run_id"].isin(runs["run_id"])]
    return runs


def _content_key(table: pd.DataFrame, columns) -> tuple:
    """What a fit reads of ``table``: its length and a hash of the values (with the index) of
    those of ``columns`` it has. The index alone is not enough: each compute fold's loss
    envelope is a new frame indexed 0…n−1, and folds of equal length must not share a fit."""
    names = [c for c in dict.fromkeys(c for c in columns if isinstance(c, str))
             if c in table.columns]
    return len(table), int(pd.util.hash_pandas_object(table[names], index=True).sum())


def _fit(inst: _Instance, table: pd.DataFrame, problem: Problem, options: dict, cache: dict):
    """The instance fitted to ``table``, or the sentence why not (cached)."""
    key = (inst.name, tuple(sorted(inst.columns.items())), problem.y,
           _content_key(table, [*inst.columns.values(), problem.y, problem.lr, "step",
                                "run_id"]))
    if key in cache:
        return cache[key]
    y = problem.y
    values = table[y].astype(float)
    ctx = FitContext(n_bootstrap=options["n_bootstrap"], seed=options["seed"],
                     y_min=float(values.min()) if len(values) else math.nan,
                     table=table, columns=inst.columns, y=y)
    try:
        law = inst.candidate.make(ctx)
        if inst.kind == "slice":
            law.fit(table, x=inst.columns["x"], y=y)
        elif inst.kind == "grouped":
            law.fit(table, x=inst.columns["x"], y=y, group=inst.columns["group"])
        elif inst.kind == "curves":
            law.fit(table, params="params", step="step", lr=problem.lr, y=y, run="run_id")
            law.templates_ = _templates(law, table, problem)
        else:
            keywords = dict(zip(law.inputs.values(), [inst.columns[r] for r in
                                                      inst.candidate.roles]))
            law.fit(table, y=y, **keywords)
        cache[key] = law
    except ScalelabError as err:
        cache[key] = str(err)
    except (FloatingPointError, np.linalg.LinAlgError, ValueError) as err:
        cache[key] = f"the fit failed ({err})"
    return cache[key]


def _predict(inst: _Instance, law, points: pd.DataFrame, level: float, problem: Problem):
    """Predictions and bootstrap bounds at ``points`` (arrays), or a sentence."""
    try:
        if inst.optimum:
            return _optimum(inst, law, points["flops"].to_numpy(float), level, problem)
        if inst.kind == "curves":
            others = [a for a in problem.axes if a != "params"]
            s1, s2 = [], []
            for point in points.to_dict("records"):
                near = nearest_runs(law.templates_, point, others)
                top = near.loc[near["params"].idxmax()]
                s1.append(top["S1"])
                s2.append(top["S2"])
            inputs = {"N": points["params"].to_numpy(float), "S1": np.array(s1),
                      "S2": np.array(s2)}
        elif inst.kind == "slice":
            inputs = {"x": points[inst.columns["x"]].to_numpy(float)}
        elif inst.kind == "grouped":
            groups = []
            for g in points[inst.columns["group"]].to_numpy(float):
                same = [s for s in law.groups_ if np.isclose(float(s), g)]
                if not same:
                    return f"no runs at {symbol(inst.columns['group'])} = {g:g} were fitted"
                groups.append(same[0])
            inputs = {"x": points[inst.columns["x"]].to_numpy(float),
                      "group": np.array(groups, dtype=object)}
        else:
            symbols = list(law.inputs)
            missing = [inst.columns[r] for r in inst.candidate.roles
                       if inst.columns[r] not in points.columns]
            if missing:  # e.g. a target that names no bit width
                return f"the target names no {missing[0]}"
            inputs = {s: points[inst.columns[r]].to_numpy(float)
                      for s, r in zip(symbols, inst.candidate.roles)}
        if law.bootstrap_params_ is None:
            pred = np.asarray(law.predict(**inputs), dtype=float)
            return pred, np.full_like(pred, np.nan), np.full_like(pred, np.nan)
        band = law.predict_interval(level=level, kind="observation", **inputs)
        return tuple(band[c].to_numpy(float) for c in ("prediction", "lower", "upper"))
    except ScalelabError as err:
        return str(err)


def _templates(law, table: pd.DataFrame, problem: Problem) -> pd.DataFrame:
    """Each fitted run's sizes and the forward and annealing areas at its last step: the
    schedule a target of those sizes is assumed to follow."""
    from scalelab.laws.annealing import AnnealingLaw

    table = table[table["step"] >= 1]
    s1, s2 = AnnealingLaw(decay=law.decay).areas(table, "step", problem.lr, "run_id")
    table = table.assign(S1=s1, S2=s2).sort_values("step")
    keep = ["run_id", "S1", "S2", *[a for a in problem.axes if a in table.columns]]
    if "params" not in keep:
        keep.append("params")
    return table.groupby("run_id", sort=False).tail(1)[keep].reset_index(drop=True)


def _optimum(inst: _Instance, law, flops: np.ndarray, level: float, problem: Problem):
    """The lowest loss a joint law predicts over the models of each compute budget."""
    k = problem.flops_per_param_sample
    symbols = list(law.inputs)
    sym_n = symbols[inst.candidate.roles.index("N")]
    sym_d = symbols[inst.candidate.roles.index("D")]
    preds, lowers, uppers = [], [], []
    for c in flops:
        centre = 0.5 * math.log(c / k)
        n = np.exp(centre + np.linspace(-9.0, 9.0, OPTIMUM_GRID))
        inputs = {sym_n: n, sym_d: c / (k * n)}
        preds.append(float(np.min(law.predict(**inputs))))
        if law.bootstrap_params_ is not None:
            boot = np.min(law.predict_bootstrap(**inputs), axis=-1)
            lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
            lowers.append(min(lo, preds[-1]))
            uppers.append(max(hi, preds[-1]))
        else:
            lowers.append(math.nan)
            uppers.append(math.nan)
    return np.array(preds), np.array(lowers), np.array(uppers)


# ---- evaluation -------------------------------------------------------------------------
def _evaluate(inst: _Instance, problem: Problem, level, options, cache, fold_rows,
              pooled: bool = False):
    """Fit on everything, predict the target; backtest on each fold."""
    table = _fit_table(inst, problem)
    n_sizes = np.unique(table[inst.columns.get("x", "params")]).size \
        if inst.kind != "joint" or not inst.optimum else np.unique(table["params"]).size
    if inst.kind == "joint" and not inst.optimum:
        n_sizes = np.unique(table[problem.axis]).size if problem.axis in table else n_sizes
    need = inst.candidate.min_sizes
    empty = dict(law=None, pred=math.nan, lower=math.nan, upper=math.nan, residuals=[],
                 distances=[], fold_of=[], boot=[], ares={})
    if n_sizes < need:
        return {**empty, "note": f"needs {need}+ sizes, the runs have {n_sizes}"}
    law = _fit(inst, table, problem, options, cache)
    if isinstance(law, str):
        return {**empty, "note": law}
    point = pd.DataFrame([problem.point])
    got = _predict(inst, law, point, level, problem)
    if isinstance(got, str):
        return {**empty, "law": law, "note": got}
    pred, lower, upper = (float(v[0]) for v in got)
    out = {**empty, "law": law, "pred": pred, "lower": lower, "upper": upper, "note": "",
           "residuals": [], "distances": [], "fold_of": [], "boot": []}
    for fold in problem.folds:
        fold_table = _fit_table(inst, problem, fold)
        if fold_table is None or len(fold_table) == 0:
            continue
        x_col = inst.columns.get("x", problem.axis if not inst.optimum else "params")
        if x_col in fold_table and np.unique(fold_table[x_col]).size < need:
            continue
        fitted = _fit(inst, fold_table, problem, options, cache)
        if isinstance(fitted, str):
            continue
        fold = fold.pooled if inst.kind == "joint" and pooled else fold
        got = _predict(inst, fitted, fold.held, level, problem)
        if isinstance(got, str):
            continue
        p, lo, hi = got
        truth = fold.held[problem.y].to_numpy(float)
        are = np.abs(p - truth) / truth
        if not np.isfinite(are).all():
            continue
        out["ares"][fold.k] = float(np.mean(are))
        out["residuals"].extend(np.log(truth / p))
        out["distances"].extend(fold.distance)
        out["fold_of"].extend([fold.k] * len(truth))
        out["boot"].extend(zip(p, lo, hi, truth))
    return out


def _scored(ev: dict):
    """Backtest residuals, their scales and folds, and whether the scales are bootstrap's."""
    res = np.asarray(ev["residuals"], dtype=float)
    dist = np.asarray(ev["distances"], dtype=float)
    boot = np.asarray(ev["boot"], dtype=float).reshape(-1, 4) if ev["boot"] else \
        np.full((res.size, 4), np.nan)
    scale = intervals.scales(boot[:, 0], boot[:, 1], boot[:, 2], dist)
    use_boot = bool(np.isfinite(intervals.bootstrap_scale(boot[:, 0], boot[:, 1],
                                                          boot[:, 2])).all()) and res.size > 0
    return res, scale, np.asarray(ev["fold_of"]), use_boot


def _coverage(ev: dict, level: float, n_folds: int) -> tuple[float, list]:
    """Share of backtest truths inside the widened interval, each fold's interval built
    from the other folds' errors (its own when it is the only fold)."""
    if not ev["residuals"]:
        return math.nan, []
    res, scale, folds, use_boot = _scored(ev)
    dist = np.asarray(ev["distances"], dtype=float)
    covered = []
    for i, (p, lo, hi, truth) in enumerate(ev["boot"]):
        others = folds != folds[i] if np.unique(folds).size > 1 else np.ones_like(folds, bool)
        q = intervals.conformal_quantile(res[others] / scale[others], level,
                                         n_folds=max(1, np.unique(folds[others]).size))
        lo2, hi2 = intervals.widen(p, lo, hi, q, dist[i], use_bootstrap=use_boot)
        covered.append(bool(lo2 <= truth <= hi2))
    return float(np.mean(covered)), covered


def _scale(ev: dict, level: float) -> tuple[float, bool]:
    if not ev["residuals"]:
        return math.nan, False
    res, scale, folds, use_boot = _scored(ev)
    return intervals.conformal_quantile(res / scale, level,
                                        n_folds=np.unique(folds).size), use_boot


def _row(name, formula, ares: dict, covered, pred, lower, upper, note, folds) -> dict:
    row = {"law": name, "formula": formula,
           "backtest_are": float(np.mean(list(ares.values()))) if ares else math.nan}
    for fold in folds:
        row[f"are_k{fold.k}"] = ares.get(fold.k, math.nan)
    row.update({"covered": float(np.mean(covered)) if len(covered) else math.nan,
                "prediction": pred, "lower": lower, "upper": upper, "note": note,
                "weight": 0.0})
    if folds and not ares and not note:
        row["note"] = "could not be fitted with the largest sizes left out"
    return row


def _baseline_evidence(problem: Problem, name: str, pooled: bool = False) -> dict:
    residuals, distances, fold_of, ares, pairs = [], [], [], {}, []
    for fold in problem.folds:
        fold = fold.pooled if pooled else fold
        p = fold.persistence if name == "persistence" else fold.line
        truth = fold.held[problem.y].to_numpy(float)
        if not np.isfinite(p).all():
            continue
        ares[fold.k] = float(np.mean(np.abs(p - truth) / truth))
        residuals.extend(np.log(truth / p))
        distances.extend(fold.distance)
        fold_of.extend([fold.k] * len(truth))
        pairs.extend(zip(p, truth))
    return {"residuals": residuals, "distances": distances, "fold_of": fold_of, "ares": ares,
            "boot": [], "pairs": pairs}


def _solve(problem: Problem, target, y, result, level, choose, options, flags, threshold,
           cache) -> Prediction:
    instances, skipped = _instances(problem)
    rows, laws, evidence, fold_rows, curves = list(skipped), {}, {}, [], {}
    # joint laws are judged on every run left out, whatever grid they lie on; where one
    # of them has a backtest, the choice is among them (laws fitted at one data size see
    # a fraction of the evidence, and their extrapolations can cross)
    pooled = problem.kind == "size" and any(i.kind == "joint" for i in instances)
    for inst in sorted(instances, key=lambda i: i.kind != "joint"):
        ev = _evaluate(inst, problem, level, options, cache, fold_rows, pooled=pooled)
        scale, use_boot = _scale(ev, level)
        lower, upper = intervals.widen(ev["pred"], ev["lower"], ev["upper"], scale,
                                       problem.distance, use_bootstrap=use_boot)
        coverage, covered = _coverage(ev, level, len(problem.folds))
        if ev["law"] is not None:
            laws[inst.name] = ev["law"]
            curves[inst.name] = (lambda points, inst=inst, law=ev["law"]:
                                 _predict(inst, law, points, level, problem))
        evidence[inst.name] = {**ev, "scale": scale, "coverage": coverage,
                               "lower_w": lower, "upper_w": upper}
        rows.append(_row(inst.name, inst.formula, ev["ares"], covered, ev["pred"], lower,
                         upper, ev["note"], problem.folds))
        for (p, lo, hi, truth), d, k, cov in zip(ev["boot"], ev["distances"], ev["fold_of"],
                                                 covered):
            fold_rows.append({"law": inst.name, "k": k, "truth": truth, "prediction": p,
                              "lower": lo, "upper": hi, "are": abs(p - truth) / truth,
                              "distance": d, "covered": cov})
    persistence, line = target_baselines(problem)
    baseline_rows = []
    for name, formula, value in (("persistence", "value of the largest run", persistence),
                                 ("log–log line", f"line through the largest {LINE_SIZES} "
                                  f"sizes", line)):
        ev = _baseline_evidence(problem, name, pooled=pooled)
        evidence[name] = ev
        baseline_rows.append(_row(name, formula, ev["ares"], [], value, math.nan, math.nan,
                                  "", problem.folds))
        for (p, truth), d, k in zip(ev["pairs"], ev["distances"], ev["fold_of"]):
            fold_rows.append({"law": name, "k": k, "truth": truth, "prediction": p,
                              "lower": math.nan, "upper": math.nan,
                              "are": abs(p - truth) / truth, "distance": d, "covered": False})
    columns = ["law", "formula", "backtest_are"] + [f"are_k{f.k}" for f in problem.folds] + \
        ["covered", "prediction", "lower", "upper", "note", "weight"]
    cands = pd.DataFrame(rows, columns=columns)
    baselines = pd.DataFrame(baseline_rows, columns=columns)
    if pooled:
        joint = {i.name for i in instances if i.kind == "joint"}
        has_joint = cands["law"].isin(joint) & np.isfinite(cands["backtest_are"])
        if has_joint.any():  # slice laws stay in the table, out of the choice
            cands.loc[~cands["law"].isin(joint), "note"] = cands.loc[
                ~cands["law"].isin(joint), "note"].where(
                lambda n: n != "", "shown; the choice is among the joint laws")
            cands["_eligible"] = cands["law"].isin(joint)
        else:  # no joint law could be backtested: judge everything on the slice
            baselines = pd.DataFrame([_row(name, formula, _baseline_evidence(problem, name)[
                "ares"], [], value, math.nan, math.nan, "", problem.folds)
                for name, formula, value in (("persistence", "value of the largest run",
                                              persistence),
                                             ("log–log line", "line through the largest "
                                              f"{LINE_SIZES} sizes", line))], columns=columns)
            evidence["persistence"] = _baseline_evidence(problem, "persistence")
    preference = {i.name: i.candidate.preference for i in instances}
    pred = _choose(problem, target, y, result, level, choose, cands, baselines,
                   pd.DataFrame(fold_rows), flags, threshold, laws, evidence, preference)
    pred._curves = curves
    return pred


# ---- the choice -------------------------------------------------------------------------
def _choose(problem, target, y, result, level, choose, cands, baselines, backtests, flags,
            threshold, laws, evidence, preference=None) -> Prediction:
    preference = preference or {}
    p_are = float(baselines.set_index("law").loc["persistence", "backtest_are"])
    notes = list(problem.notes)
    flagged = _flagged(problem, flags)
    if flagged:
        notes.append(f"{len(flagged)} of the runs at the two largest {problem.axis} are still "
                     f"improving at their last step (a fall of more than {threshold:.0%} over "
                     f"the last fifth of training): undertrained ({', '.join(flagged[:4])}"
                     f"{', …' if len(flagged) > 4 else ''}).")
    distances = [d for ev in evidence.values() for d in ev.get("distances", [])]
    common = dict(target=target, y=y, result=result, level=level, choose=choose,
                  axis=problem.axis, at=problem.at, baselines=baselines, backtests=backtests,
                  notes=notes, undertrained=flags, laws=laws, distance=problem.distance,
                  backtested_distance=float(max(distances)) if distances else math.nan,
                  point=dict(problem.point))
    eligible = cands.pop("_eligible") if "_eligible" in cands else pd.Series(True, cands.index)
    scored = cands[np.isfinite(cands["backtest_are"]) & np.isfinite(cands["prediction"]) &
                   eligible]
    if not problem.folds:
        notes.append(f"not backtested: a backtest needs runs at 4 or more {problem.axis} "
                     f"values, the table has {problem.sizes.size}.")
        usable = cands[np.isfinite(cands["prediction"])]
        if usable.empty:
            return _persistence(problem, cands, p_are, level, common, evidence,
                                "no law could be fitted and there is no backtest; this is "
                                "the value of the largest run.")
        i = usable.index[0]
        cands.loc[i, "weight"] = 1.0
        row = cands.loc[i]
        return _finish(Prediction(prediction=row["prediction"], lower=row["lower"],
                                  upper=row["upper"], law=f"{row['law']} (not backtested)",
                                  candidates=cands, **common))
    beating = scored[scored["backtest_are"] < p_are]
    if beating.empty:
        best = scored.sort_values("backtest_are").iloc[0] if len(scored) else None
        return _persistence(problem, cands, p_are, level, common, evidence,
                            _why_persistence(problem, best, p_are, flagged))
    if choose == "best":  # each error divided by its law's declared preference
        i = (beating["backtest_are"] / beating["law"].map(
            lambda n: preference.get(n, 1.0))).idxmin()
        cands.loc[i, "weight"] = 1.0
        row = cands.loc[i]
        return _finish(Prediction(prediction=row["prediction"], lower=row["lower"],
                                  upper=row["upper"], law=row["law"], candidates=cands,
                                  coverage=evidence[row["law"]]["coverage"], **common))
    weights = 1.0 / np.maximum(beating["backtest_are"].to_numpy(float), 1e-6) ** 2
    weights /= weights.sum()
    cands.loc[beating.index, "weight"] = weights
    blend = {c: float(np.dot(weights, beating[c].to_numpy(float)))
             for c in ("prediction", "lower", "upper")}
    names = " + ".join(f"{w:.2f}·{n}" for w, n in zip(weights, beating["law"]))
    coverage = float(np.dot(weights, [evidence[n]["coverage"] for n in beating["law"]]))
    pred = Prediction(**blend, law=f"blend {names}" if len(beating) > 1 else
                      str(beating["law"].iloc[0]), candidates=cands, coverage=coverage,
                      **common)
    pred._blend_are = _blend_are(evidence, dict(zip(beating["law"], weights)))
    return _finish(pred)


def _finish(pred: Prediction) -> Prediction:
    """Say so when the target lies beyond twice the distance the backtests reached."""
    if pred.far and pred.law != "persistence":
        reached = (f"its backtests reached {pred.backtested_distance:.3g}×"
                   if math.isfinite(pred.backtested_distance) else "it was not backtested")
        warning = (f"The target is {pred.distance:.3g}× the largest run in "
                   f"{symbol(pred.axis)}, more than {FAR:g} times as far as {reached}: the "
                   f"interval assumes the error keeps growing with distance as it did there, "
                   f"which nothing here has tested.")
        pred.sentence = warning if not pred.sentence else f"{pred.sentence} {warning}"
    return pred


def _blend_are(evidence: dict, weights: dict) -> float:
    names = list(weights)
    preds = [np.array([b[0] for b in evidence[n]["boot"]]) for n in names]
    if not preds or len({p.size for p in preds}) != 1 or preds[0].size == 0:
        return math.nan
    truth = np.array([b[3] for b in evidence[names[0]]["boot"]])
    blend = sum(weights[n] * p for n, p in zip(names, preds))
    return float(np.mean(np.abs(blend - truth) / truth))


def _flagged(problem: Problem, flags: pd.DataFrame) -> list:
    if flags.empty or problem.kind == "compute" or problem.axis not in flags.columns:
        return [str(r) for r in flags.loc[flags["undertrained"], "run_id"]] \
            if len(flags) else []
    top = np.sort(problem.runs[problem.axis].unique())[-2:]
    ids = problem.runs.loc[problem.runs[problem.axis].isin(top), "run_id"] \
        if "run_id" in problem.runs else []
    sel = flags[flags["run_id"].isin(ids) & flags["undertrained"]]
    return [str(r) for r in sel["run_id"]]


def _size_means(table: pd.DataFrame, axis: str, y: str) -> pd.Series:
    return table.groupby(axis)[y].mean().sort_index()


def _seed_spread(problem: Problem) -> float:
    """Standard deviation of log y over the seeds of the largest size (0 with one seed)."""
    if problem.kind == "compute" or problem.table.empty:
        return 0.0
    table = problem.table
    top = table[np.isclose(table[problem.axis].astype(float),
                           float(table[problem.axis].max()))][problem.y]
    return float(np.std(np.log(top.astype(float)), ddof=1)) if len(top) > 1 else 0.0


def _why_persistence(problem: Problem, best, p_are: float, flagged: list) -> str:
    head = (f"No law beats persistence in the backtest (best law {best['law']}: ARE "
            f"{best['backtest_are']:.2%}; persistence {p_are:.2%})" if best is not None else
            f"No law could be backtested (persistence ARE {p_are:.2%})")
    reasons = []
    if flagged:
        reasons.append("the largest runs are undertrained: still improving at their last "
                       "step, so their values confound size with training length")
    if problem.kind == "size" and problem.exact_slice and problem.sizes.size >= 2:
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
            "largest run, with an interval from the runs' spread and persistence's own "
            "backtest errors.")


def _persistence(problem, cands, p_are, level, common, evidence, sentence) -> Prediction:
    value = float(common["baselines"].set_index("law").loc["persistence", "prediction"])
    z = float(norm.ppf(0.5 + level / 2))
    spread = math.hypot(_seed_spread(problem), p_are if math.isfinite(p_are) else 0.0)
    lower, upper = value * math.exp(-z * spread), value * math.exp(z * spread)
    ev = evidence["persistence"]
    coverage = math.nan
    if ev["residuals"]:
        lower, upper = intervals.widen(value, lower, upper, _scale(ev, level)[0],
                                       problem.distance)
        ev = {**ev, "boot": [(math.exp(-r), math.nan, math.nan, 1.0)
                             for r in ev["residuals"]]}
        coverage = _coverage(ev, level, len(problem.folds))[0]
    return Prediction(prediction=value, lower=lower, upper=upper, law="persistence",
                      candidates=cands, sentence=sentence, coverage=coverage, **common)


# ---- predict ----------------------------------------------------------------------------
def predict(runs: pd.DataFrame, target, y: str = "val_loss", result: str = "final",
            level: float = LEVEL, choose: str = "best", where: str | None = None,
            n_bootstrap: int = 100, seed: int = 0,
            undertrained_threshold: float = UNDERTRAINED_THRESHOLD) -> Prediction:
    """Predict ``y`` at ``target`` with the law that backtests best, or say it cannot.

    Parameters
    ----------
    runs : runs table (one row per run × evaluation, as ``scalelab.load_runs`` gives, or
        one row per run), on any grid of sizes.
    target : ``"params=2e5"``, ``"params=2e5,samples=4096"``, ``"params=1e9,
        samples_seen=2e10"``, ``"params=1e6,samples=1e4,epochs=40"``, ``"compute=1e15"``,
        ``"params=1e6,compute=1e15"`` or the same as a dict.
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
    level = check_level(level)
    targets = [parse_target(t) for t in (targets if isinstance(targets, (list, tuple))
                                         else [targets])]
    if not targets:
        raise ScalelabError("predict needs at least one target, e.g. target='params=2e5'.")
    runs = select_runs(runs, where)
    from scalelab.runs.table import objective_variants

    if "loss_variant" in runs.columns and runs["loss_variant"].nunique() == 1 \
            and objective_variants(runs).nunique() > 1:  # one loss, other objectives
        weights = ", ".join(f"{w:g}" for w in sorted(runs["adversarial_weight"].unique()))
        raise ScalelabError(f"predict: the runs hold several adversarial weights ({weights}), "
                            f"whose networks and laws differ; select one, e.g. --where "
                            f"\"adversarial_weight == 0\" or runs[runs.adversarial_weight == 0].")
    if "loss_variant" in runs.columns and runs["loss_variant"].nunique() > 1:
        names = ", ".join(map(str, sorted(runs["loss_variant"].unique())))
        raise ScalelabError(f"predict: the runs hold several loss variants ({names}), whose "
                            f"laws differ; select one, e.g. runs[runs.loss_variant == "
                            f"'{sorted(runs['loss_variant'].unique())[0]}'] or --where "
                            f"\"loss_variant == '...'\".")
    check_metric_column(y, runs.columns)
    results = result_rows(runs, y, result)
    results = results[np.isfinite(pd.to_numeric(results[y], errors="coerce"))]
    results = results[results[y].astype(float) > 0].reset_index(drop=True)
    from scalelab.runs.table import best_tuned  # a learning-rate sweep: each size's best

    results = best_tuned(results, y)[0].reset_index(drop=True)
    for col in ("params", "samples", "samples_seen", "flops"):
        if col in results.columns:
            values = pd.to_numeric(results[col], errors="coerce")
            if values.isna().any() or (values <= 0).any():
                raise TableError(f"predict: the column {col!r} holds "
                                 f"{int((values.isna() | (values <= 0)).sum())} values that "
                                 f"are not positive numbers; mend or drop those rows.")
            if not pd.api.types.is_numeric_dtype(results[col]):
                results[col] = values.astype(float)
    if results.empty:
        raise TableError(f"predict: no run has a finite, positive {y!r}; fit a positive "
                         f"metric (a loss or an error) of finished runs.")
    flags = undertrained_runs(runs, y, result, undertrained_threshold)
    options = {"n_bootstrap": n_bootstrap, "seed": seed}
    cache: dict = {}
    out = []
    for target in targets:
        if set(target) == {"compute"}:
            curves = runs[runs["run_id"].isin(results["run_id"])] if "run_id" in runs else runs
            problem = compute_problem(results, curves, target, y)
        else:
            problem = size_problem(results, target, y)
            problem.curves, problem.lr = curves_of(runs, results, y, result)
        out.append(_solve(problem, target, y, result, level, choose, options, flags,
                          undertrained_threshold, cache))
    return out


def curves_of(runs: pd.DataFrame, results: pd.DataFrame, y: str, result: str):
    """The training curves of the fitted runs and their learning-rate column, or Nones
    (curve laws predict a run's end, so only for ``result="final"``)."""
    lr = "lr_step" if "lr_step" in runs.columns else None
    if result != "final" or lr is None or not {"run_id", "step", "params"} <= set(runs.columns):
        return None, None
    curves = runs[runs["run_id"].isin(results["run_id"])]
    curves = curves[np.isfinite(pd.to_numeric(curves[y], errors="coerce")) &
                    np.isfinite(pd.to_numeric(curves[lr], errors="coerce"))]
    # the first part of training follows the optimiser's transient, not the law; Choshen
    # et al. 2024 (§5.2) leave the earliest checkpoints out: keep the last CURVE_TAIL
    last = curves.groupby("run_id")["step"].transform("max")
    curves = curves[curves["step"] >= (1 - CURVE_TAIL) * last]
    if curves.groupby("run_id").size().median() < 4:
        return None, None
    return curves, lr


def select_runs(runs: pd.DataFrame, where: str | None = None) -> pd.DataFrame:
    """The finished runs, narrowed by a pandas query ``where``; one sentence if none is left."""
    if not isinstance(runs, pd.DataFrame):
        raise TableError(f"predict needs a runs table (pandas DataFrame), got "
                         f"{type(runs).__name__}; load one with scalelab.load_runs(path).")
    from scalelab.runs.table import check_query, finished_runs

    runs = finished_runs(runs)
    if where:
        check_query(where, runs.columns)  # column comparisons only: nothing is evaluated
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
