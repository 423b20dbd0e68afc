"""The numbers a report states, computed apart from its drawings.

Every fit, prediction, backtest, frontier, IsoFLOP profile and calibration-metric law
of the report is computed here, once, from a :class:`ReportContext`; the figures
(:mod:`scalelab.report.figures`) and pages (:mod:`scalelab.report.pages`) only draw
and print them. This module imports no matplotlib. A result that could not be computed
is a :class:`FitFailure` carrying the one sentence that says why; :func:`attempt` is the
one guard that turns a :class:`~scalelab.ScalelabError` into one, for analyses and
drawings alike.

Choices (stated on the report's pages). The data axis: ``samples`` is U, the distinct
training samples; compute counts the samples seen D = steps × batch (D/U epochs).
- a loss variant's law against parameters is a :class:`~scalelab.laws.PowerLaw` per
  distinct-sample count U (seeds are separate points; where a sweep varies the budget
  too, each (N, U, seed) point's longest run); predictions for a parameter target use the
  law of the largest D swept, whose extrapolation is what a bigger run with that data
  would get;
- a compute target uses the loss envelope of the training curves (the lowest loss any
  run reached at each compute, Hoffmann et al. 2022 approach 1) fitted by a power law in C; the
  IsoFLOP parabolas (approach 2) take every run's final row, every budget, and apart from
  them the profiles read off the training curves (those the frontier page draws);
- the backtest is leave-largest-out (Choshen et al. 2024): fit on the smaller models of
  the largest D, predict the largest, ARE and whether the 90% interval covered it;
- a calibration metric is fitted, per loss variant at the largest D, by a power law in
  N of its distance from the ideal value (|spread-skill − 1|), so that E ≥ 0 is the
  floor of a miscalibration; the rank histogram's flatness is its sample-size-free
  departure from flat (``val_rank_departure``), not δ, which grows with the pixels counted;
- loss variants are compared on a metric they share: the report's metric, unless it is
  each variant's own loss (``val_loss``), then the first of ``SHARED_METRICS`` that every
  variant records (:func:`comparison_metric`), named in the sentence;
- the reference of every skill is bicubic upsampling of the coarse input on the same
  validation set (``val_bicubic_<metric>``, where the runs recorded it);
- where the table holds two or more network families, each loss variant's families are
  compared at matched compute (:func:`scalelab.report.families.compare_families`).
- the headline predictions come from :func:`scalelab.laws.predict`: every law form the
  data allow, backtested, next to persistence and a log–log line; the one of lowest
  backtest error is used, and persistence (said in words) where none beats it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError, ScalelabWarning
from scalelab.laws import (PowerLaw, backtest, crossover, envelope_allocation,
                           isoflop_allocation, isoflop_profiles)
from scalelab.laws.prediction import predict_many
from scalelab.laws.regime import undertrained_runs
from scalelab.report.context import ReportContext
from scalelab.report.labels import label
from scalelab.runs.baselines import bicubic_value
from scalelab.runs.table import final_rows, require_columns

#: the level of the report's prediction and confidence intervals
LEVEL = 0.9
#: bootstrap resamples of the report's loss laws
N_BOOTSTRAP = 200
#: bootstrap resamples of the calibration-metric laws
METRIC_BOOTSTRAP = 100
#: calibration metrics the report fits against size: metric -> ideal value (None: 0)
CALIBRATION_METRICS = {
    "val_crps": None, "val_exceed_ece": None, "val_exceed_brier": None,
    "val_spread_skill": 1.0, "val_rank_departure": None,
}
#: the loss variants are compared on the report's metric unless it is in each variant's own
#: loss (its units differ between variants); then on the first of these every variant records
OWN_LOSS = ("val_loss", "train_loss")
SHARED_METRICS = ("val_crps", "val_mse", "val_rmse", "val_mae")


@dataclass(frozen=True)
class FitFailure:
    """A result that could not be computed, with the one sentence that says why."""

    reason: str

    def __str__(self) -> str:
        return self.reason


def attempt(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or a :class:`FitFailure` with its ScalelabError's sentence.

    A FitFailure among the arguments is returned as it is, without calling ``fn``: what
    is computed or drawn from a failed result fails for the same reason.
    """
    for value in (*args, *kwargs.values()):
        if isinstance(value, FitFailure):
            return value
    try:
        return fn(*args, **kwargs)
    except ScalelabError as err:
        return FitFailure(str(err))


def failed(result) -> bool:
    """Whether ``result`` is a :class:`FitFailure`."""
    return isinstance(result, FitFailure)


def guarded(fn, *args, fallback=FitFailure, **kwargs):
    """``fn(*args, **kwargs)``, or ``fallback(sentence)`` when it raises anything: the report
    always renders. A ScalelabError gives its own sentence; any other error (a bug, or an
    input no check foresaw) is named in one sentence and warned as a ScalelabWarning."""
    try:
        return fn(*args, **kwargs)
    except ScalelabError as err:
        return fallback(str(err))
    except Exception as err:  # noqa: BLE001 - the report goes on; the warning tells the bug
        reason = internal_error(err)
        warnings.warn(reason, ScalelabWarning, stacklevel=2)
        return fallback(reason)


def internal_error(err: Exception) -> str:
    """One sentence for an unexpected error while computing or drawing a report."""
    detail = " ".join(str(err).split())[:120].rstrip(".")
    return (f"could not be computed ({type(err).__name__}{': ' + detail if detail else ''}); "
            f"this is a scalelab bug, please report it.")


def fit_power_laws(runs: pd.DataFrame, x: str = "params", y: str = "val_loss",
                   by: str | None = "samples", n_bootstrap: int = N_BOOTSTRAP, seed: int = 0,
                   huber_delta: float = 1e-3) -> dict:
    """Fit ``y = E + A·x^(−alpha)`` on each run's final row, one law per ``by`` group.

    Returns ``{group value: fitted PowerLaw, or the FitFailure saying why not}``.
    Seeds of the same configuration are separate points of the fit.
    """
    require_columns(runs, x, y, *([by] if by else []), what="fit_power_laws")
    table = final_rows(runs)
    groups = table.groupby(by) if by else [(None, table)]
    fits = {}
    for key, group in groups:
        values = {c: pd.to_numeric(group[c], errors="coerce") for c in (x, y)}
        group = group[np.isfinite(values[y]) & (values[x] > 0)]
        law = PowerLaw(huber_delta=huber_delta, n_bootstrap=n_bootstrap, seed=seed)
        fits[key] = attempt(law.fit, group, x=x, y=y)
    return fits


@dataclass(frozen=True)
class MetricScaling:
    """Power laws of a (calibration) metric against size, one per group."""

    metric: str
    ideal: float | None
    column: str  # the column fitted: the metric, or its distance from ``ideal``
    table: pd.DataFrame  # final rows with a finite metric, holding ``column``
    x: str
    by: str | None
    fits: dict  # group -> PowerLaw | FitFailure


def metric_scaling(runs: pd.DataFrame, metric: str, x: str = "params",
                   by: str | None = "samples", ideal: float | None = None,
                   n_bootstrap: int = METRIC_BOOTSTRAP) -> MetricScaling:
    """Fit a metric against ``x`` per ``by`` group, on each run's final row.

    For a metric whose ideal value is not 0 (the spread-skill ratio's is 1) the law is
    fitted to the distance from ``ideal``, |metric − ideal|, whose floor E ≥ 0 is the
    miscalibration left at any size.
    """
    table = final_rows(runs)
    require_columns(table, x, metric, what="metric_scaling")
    table = table[np.isfinite(pd.to_numeric(table[metric], errors="coerce"))].copy()
    if table.empty:
        raise ScalelabError(f"no finished run records {metric!r}.")
    column = metric
    if ideal is not None:
        column = f"|{metric} − {ideal:g}|"
        table[column] = (table[metric] - ideal).abs()
    fits = fit_power_laws(table, x=x, y=column, by=by, n_bootstrap=n_bootstrap)
    return MetricScaling(metric=metric, ideal=ideal, column=column, table=table, x=x, by=by,
                         fits=fits)


@dataclass
class VariantAnalysis:
    variant: object
    fits_by_samples: dict = field(default_factory=dict)  # D -> PowerLaw | FitFailure
    fits_by_params: dict = field(default_factory=dict)  # N -> PowerLaw | FitFailure
    headline_law: object = None  # PowerLaw at the largest D, or FitFailure
    headline_samples: float | None = None
    extrapolate_to: float | None = None  # N the laws in N are extrapolated to
    extrapolation: dict = field(default_factory=dict)  # D -> band at extrapolate_to | FitFailure
    backtest: object = None  # DataFrame or FitFailure
    compute_law: object = None  # PowerLaw of the loss envelope against FLOPs, or FitFailure
    allocation: object = None  # Allocation (approach 1) or FitFailure
    isoflop: object = None  # Allocation (approach 2) or FitFailure
    isoflop_profiles: object = None  # profiles read off the training curves, or FitFailure
    # approach 2 on those profiles (the panel's), where final rows lack 3 sizes per budget
    isoflop_curves: object = None


@dataclass
class Analysis:
    variants: dict
    predictions: pd.DataFrame  # one row per target × variant
    best: list  # sentences: which variant is best at each target, from what size on
    flops_per_param_sample: float | None
    calibration: dict = field(default_factory=dict)  # metric -> MetricScaling | FitFailure
    # metric -> {group -> CalibrationLaw} with leave-largest-out backtests, or FitFailure
    calibration_laws: object = field(default_factory=dict)
    calibration_target: float | None = None  # N the calibration laws are extrapolated to
    prediction_objects: dict = field(default_factory=dict)  # (target, variant) -> Prediction
    undertrained: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per run
    # the metric the variants are compared on (None: one variant, or none they share), and
    # the predictions on it (the headline ones when it is the report's metric)
    comparison_metric: str | None = None
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    # metric -> {variant: bicubic upsampling's value} where the runs recorded it
    bicubic: dict = field(default_factory=dict)
    # variant -> FamilyComparison (or FitFailure) where the table holds 2+ families
    families: dict = field(default_factory=dict)


def analyse(ctx: ReportContext, n_bootstrap: int = N_BOOTSTRAP) -> Analysis:
    """Every number of the report of ``ctx``."""
    if not isinstance(ctx, ReportContext):
        raise ScalelabError(f"analyse needs a ReportContext, got {type(ctx).__name__}; build "
                            f"one with ReportContext.build(runs).")
    # every part guarded (guarded): an error in one is a sentence in its place
    variants = {v: guarded(_analyse_variant, ctx, v, n_bootstrap,
                           fallback=lambda reason, v=v: _variant_failure(v, reason))
                for v in ctx.variants}
    k = guarded(_flops_per_param_sample, ctx.runs, fallback=lambda reason: None)
    predictions, objects = _predictions(ctx, variants, n_bootstrap)
    metric = guarded(comparison_metric, ctx, fallback=lambda reason: None)
    if metric is None or metric == ctx.y:
        comparison = predictions
    else:
        comparison, _ = guarded(_predictions, ctx, variants, n_bootstrap, y=metric,
                                fallback=lambda r: (pd.DataFrame(columns=PREDICTION_COLUMNS),
                                                    {}))
    best = guarded(_best_sentences, ctx, variants, comparison, metric,
                   fallback=lambda reason: [f"The best variant {reason}"])
    calibration, laws, target = guarded(_calibration, ctx,
                                        fallback=lambda r: ({}, FitFailure(r), None))
    bicubic = guarded(_bicubic, ctx, [ctx.y, metric, *calibration], fallback=lambda r: {})
    families = {v: guarded(_families, ctx, v) for v in ctx.variants} \
        if "family" in ctx.runs.columns and ctx.runs["family"].nunique() > 1 else {}
    return Analysis(variants=variants, predictions=predictions, best=best,
                    flops_per_param_sample=k, calibration=calibration,
                    calibration_laws=laws, calibration_target=target,
                    prediction_objects=objects,
                    undertrained=guarded(undertrained_runs, ctx.runs, ctx.y, ctx.result),
                    comparison_metric=metric, comparison=comparison, bicubic=bicubic,
                    families=families)


def comparison_metric(ctx: ReportContext) -> str | None:
    """The metric the loss variants of ``ctx`` are compared on: the report's own, unless it
    is each variant's own loss (:data:`OWN_LOSS`, in units that differ between variants);
    then the first of :data:`SHARED_METRICS` that every variant's finished runs record.
    None with fewer than two variants, or when they share none."""
    variants = [v for v in ctx.variants if v is not None]
    if len(variants) < 2:
        return None
    if ctx.y not in OWN_LOSS:
        return ctx.y
    for metric in SHARED_METRICS:
        if metric in ctx.final.columns and all(
                np.isfinite(pd.to_numeric(ctx.variant_rows(v)[metric], errors="coerce")).any()
                for v in variants):
            return metric
    return None


def _bicubic(ctx: ReportContext, metrics) -> dict:
    """metric -> {variant: bicubic upsampling's value} for the metrics the runs recorded it
    of (one value per variant: its runs share a validation set)."""
    out = {}
    for metric in dict.fromkeys(m for m in metrics if m):
        values = {v: bicubic_value(ctx.variant_rows(v), metric) for v in ctx.variants}
        values = {v: value for v, value in values.items() if value is not None}
        if values:
            out[metric] = values
    return out


def _families(ctx: ReportContext, variant):
    """The network families of one loss variant compared at matched compute."""
    from scalelab.report.families import compare_families

    from scalelab.runs import finished_runs

    runs = finished_runs(ctx.variant_runs(variant))
    return attempt(compare_families, runs, y=ctx.y, level=LEVEL)


def _longest(final: pd.DataFrame) -> pd.DataFrame:
    """Each (N, U, seed) point's longest run (most samples seen): the laws in N and U
    take one length per point when a sweep also varies the budget."""
    keys = [c for c in ("params", "samples", "seed") if c in final.columns]
    if "samples_seen" not in final.columns or not keys or final.empty:
        return final
    order = final.sort_values("samples_seen", kind="stable")
    return order.groupby(keys, sort=False).tail(1).sort_index()


def _variant_failure(variant, reason: str) -> VariantAnalysis:
    """A variant none of whose results could be computed, each saying why."""
    failure = FitFailure(reason)
    return VariantAnalysis(variant=variant, headline_law=failure, backtest=failure,
                           compute_law=failure, allocation=failure, isoflop=failure,
                           isoflop_profiles=failure, isoflop_curves=failure)


def _analyse_variant(ctx: ReportContext, variant, n_bootstrap: int) -> VariantAnalysis:
    everything = ctx.variant_rows(variant)  # every budget: the IsoFLOP profiles use them all
    final = _longest(everything)
    out = VariantAnalysis(variant=variant)
    runs = ctx.variant_runs(variant)
    out.isoflop_profiles = attempt(isoflop_profiles, runs, y=ctx.y)
    if final.empty:
        out.headline_law = FitFailure("no finished run of this variant.")
        out.backtest = out.compute_law = out.allocation = out.isoflop = out.headline_law
        out.isoflop_curves = out.headline_law
        return out
    y = ctx.y
    has = set(final.columns)
    if "params" in has:
        out.fits_by_samples = fit_power_laws(final, "params", y,
                                             "samples" if "samples" in has else None,
                                             n_bootstrap)
    if {"params", "samples"} <= has:
        out.fits_by_params = fit_power_laws(final, "samples", y, "params", n_bootstrap)
    if out.fits_by_samples:
        largest = max(out.fits_by_samples, key=lambda k: (k is not None, k or 0))
        out.headline_law = out.fits_by_samples[largest]
        out.headline_samples = largest
        targets = [t.get("params", 0) for t in default_targets(ctx)]
        out.extrapolate_to = max(*targets, 0, 10 * float(final["params"].max()))
        out.extrapolation = {
            key: attempt(lambda law: law.predict_interval(
                x=out.extrapolate_to, level=LEVEL, kind="observation").iloc[0], fit)
            for key, fit in out.fits_by_samples.items()}
    else:
        out.headline_law = FitFailure("the table has no 'params' column to fit a law in "
                                      "model size.")
    if failed(out.headline_law):
        out.backtest = FitFailure("no law to backtest.")
    else:
        rows = final if out.headline_samples is None else \
            final[final["samples"] == out.headline_samples]
        out.backtest = attempt(backtest, PowerLaw(n_bootstrap=n_bootstrap), rows, y=y,
                               size="params", x="params", level=LEVEL)
    runs = runs[runs["run_id"].isin(everything["run_id"])] if "run_id" in everything else runs
    if {"params", "flops", "run_id"} <= set(runs.columns):
        out.allocation = attempt(envelope_allocation, runs, y=y)
        out.compute_law = attempt(
            lambda allocation: PowerLaw(n_bootstrap=n_bootstrap).fit(
                allocation.frontier, x="flops", y="loss"), out.allocation)
        out.isoflop = attempt(isoflop_allocation, everything, y=y)
        out.isoflop_curves = attempt(isoflop_allocation, out.isoflop_profiles, y="loss",
                                     budget="flops")
    else:
        out.allocation = out.compute_law = out.isoflop = out.isoflop_curves = FitFailure(
            "the table has no training curves with FLOPs (columns params, flops, run_id).")
    return out


def calibration_metrics(ctx: ReportContext) -> list[str]:
    """The calibration metrics some finished run of ``ctx`` records."""
    return [m for m in CALIBRATION_METRICS if m in ctx.final.columns
            and np.isfinite(pd.to_numeric(ctx.final[m], errors="coerce")).any()]


def largest_samples_rows(final: pd.DataFrame) -> pd.DataFrame:
    """The final rows at the largest data size D (all rows when D is not swept)."""
    if "samples" in final and final["samples"].nunique() > 1:
        return final[final["samples"] == final["samples"].max()]
    return final


def _calibration(ctx: ReportContext) -> tuple[dict, object, float | None]:
    """Calibration metrics against N at the largest D, one law per loss variant (per family
    where the table holds several): the drawn laws, the backtested laws of
    :mod:`scalelab.report.calibration_fits`, and the N they are extrapolated to (10× the
    largest model)."""
    from scalelab.report.calibration_fits import calibration_laws

    final = largest_samples_rows(ctx.final)
    by = "loss_variant" if "loss_variant" in final else None
    law_by = by
    if "family" in final and final["family"].nunique() > 1:
        if by is None or final[by].nunique() == 1:
            by = law_by = "family"
        else:
            final = final.assign(family_loss=final["family"].astype(str) + " · "
                                 + final[by].astype(str))
            by, law_by = "family_loss", ["family", "loss_variant"]
    metrics = calibration_metrics(ctx)
    drawn = {metric: attempt(metric_scaling, final, metric, by=by,
                             ideal=CALIBRATION_METRICS[metric]) for metric in metrics}
    laws = attempt(calibration_laws, ctx.final, by=law_by) if metrics else {}
    target = float(final["params"].max()) * 10 if "params" in final and len(final) else None
    return drawn, laws, target


def _flops_per_param_sample(runs: pd.DataFrame) -> float | None:
    """k in C = k·N·D, measured: training FLOPs per parameter per sample seen."""
    need = {"flops", "params", "samples_seen"}
    if not need <= set(runs.columns):
        return None
    rows = runs[(runs["samples_seen"] > 0) & (runs["params"] > 0) & (runs["flops"] > 0)]
    if rows.empty:
        return None
    return float(np.median(rows["flops"] / (rows["params"] * rows["samples_seen"])))


def default_targets(ctx: ReportContext) -> list[dict]:
    """The report's targets: the given ones, else 10× the largest model."""
    if ctx.targets:
        return ctx.targets
    if "params" in ctx.final and len(ctx.final):
        return [{"params": float(ctx.final["params"].max()) * 10}]
    return []


PREDICTION_COLUMNS = ["target", "variant", "prediction", "lower", "upper", "law",
                      "backtest_are", "persistence_are", "note"]


def _predictions(ctx: ReportContext, variants: dict, n_bootstrap: int, y: str | None = None):
    """Each target × variant predicted by :func:`scalelab.laws.predict_many` (of ``y``,
    by default the report's metric)."""
    targets = default_targets(ctx)
    y = y or ctx.y
    rows, objects = [], {}
    for variant in variants:
        runs = ctx.variant_runs(variant)
        found = []
        if targets:
            found = guarded(predict_many, runs, targets, y=y, result=ctx.result,
                            level=LEVEL, n_bootstrap=min(n_bootstrap, 100),
                            fallback=lambda reason: [reason] * len(targets))
        for target, pred in zip(targets, found):
            text = _target_text(target)
            if isinstance(pred, str):
                rows.append({"target": text, "variant": variant, "prediction": np.nan,
                             "lower": np.nan, "upper": np.nan, "law": "—",
                             "backtest_are": np.nan, "persistence_are": np.nan,
                             "note": f"not predicted: {pred}"})
                continue
            objects[(text, variant)] = pred
            note = pred.sentence or " ".join(pred.notes)
            rows.append({"target": text, "variant": variant, "prediction": pred.prediction,
                         "lower": pred.lower, "upper": pred.upper, "law": pred.law,
                         "backtest_are": pred.backtest_are,
                         "persistence_are": pred.persistence_are, "note": note})
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS), objects


def _target_text(target: dict) -> str:
    return ", ".join(f"{k} = {v:.3g}" for k, v in target.items())


def _best_sentences(ctx: ReportContext, variants: dict, predictions: pd.DataFrame,
                    metric: str | None) -> list:
    """Which variant is predicted best at each target, on ``metric`` (one they share)."""
    if len(variants) < 2:
        return []
    if metric is None:
        return [f"{ctx.y} is each variant's own loss, in its own units, and no metric is "
                f"recorded by every variant ({', '.join(SHARED_METRICS)}), so the variants "
                f"are not compared."]
    sentences = [f"Compared on {label(metric)} ({metric}), which every variant records"
                 + (f" ({ctx.y} is each variant's own loss, in its own units)."
                    if ctx.y != metric else ".")]
    laws = {}
    if metric == ctx.y:
        laws = {v: va.headline_law for v, va in variants.items()}
    else:
        for v in variants:
            rows = largest_samples_rows(_longest(ctx.variant_rows(v)))
            fits = attempt(fit_power_laws, rows, "params", metric, None, 100)
            laws[v] = fits if failed(fits) else fits[None]
    for target, rows in predictions.groupby("target", sort=False):
        rows = rows.dropna(subset=["prediction"])
        if len(rows) < 2:
            sentences.append(f"At {target}: fewer than two variants could be predicted.")
            continue
        ranked = rows.sort_values("prediction")
        best, second = ranked.iloc[0], ranked.iloc[1]
        text = (f"At {target}: {best['variant']} is predicted best "
                f"({metric} {best['prediction']:.4g} vs {second['variant']} "
                f"{second['prediction']:.4g})")
        law_a, law_b = laws.get(best["variant"]), laws.get(second["variant"])
        if law_a is not None and law_b is not None and not failed(law_a) \
                and not failed(law_b) and "params" in target:
            lo = min(law_a.input_range_["x"][0], law_b.input_range_["x"][0])
            hi = max(float(ctx.final["params"].max()) * 10,
                     *[t.get("params", 0) for t in default_targets(ctx)])
            cross = attempt(crossover, law_a, law_b, lo, hi, level=LEVEL)
            if failed(cross):
                text += f"; crossover not computed ({cross})"
            elif np.isnan(cross.crossover):
                text += f"; it is better over the whole range N ∈ [{lo:.3g}, {hi:.3g}]"
            else:
                text += (f"; it overtakes {second['variant']} from N ≈ {cross.crossover:.3g} "
                         f"({LEVEL:.0%} interval {cross.lower:.3g}–{cross.upper:.3g})")
        sentences.append(text + ".")
    return sentences
