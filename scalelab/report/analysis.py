"""The numbers a report states: fits per loss variant, headline predictions, backtests,
the compute-optimal frontier. Computed once from a :class:`ReportContext`, each piece
either a result or the one sentence that says why it could not be computed.

Choices (stated on the report's pages):
- a loss variant's law against parameters is a :class:`~scalelab.laws.PowerLaw` per
  data size D (seeds are separate points); predictions for a parameter target use the
  law of the largest D swept, whose extrapolation is what a bigger run with that data
  would get;
- a compute target uses the loss envelope of the training curves (the lowest loss any
  run reached at each compute, Chinchilla approach 1) fitted by a power law in C;
- the backtest is leave-largest-out (Choshen et al. 2024): fit on the smaller models of
  the largest D, predict the largest, ARE and whether the 90% interval covered it;
- the headline predictions come from :func:`scalelab.laws.predict`: every law form the
  data allow, backtested, next to persistence and a log–log line; the one of lowest
  backtest error is used, and persistence (said in words) where none beats it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.laws import PowerLaw, backtest, crossover, envelope_allocation, isoflop_allocation
from scalelab.laws.prediction import predict_many
from scalelab.laws.regime import undertrained_runs
from scalelab.report.context import ReportContext
from scalelab.report.figures import LEVEL, fit_power_laws

N_BOOTSTRAP = 200


@dataclass
class VariantAnalysis:
    variant: object
    fits_by_samples: dict = field(default_factory=dict)  # D -> PowerLaw | str
    fits_by_params: dict = field(default_factory=dict)  # N -> PowerLaw | str
    headline_law: object = None  # PowerLaw at the largest D, or the sentence why not
    headline_samples: float | None = None
    backtest: object = None  # DataFrame or sentence
    compute_law: object = None  # PowerLaw of the loss envelope against FLOPs, or sentence
    allocation: object = None  # Allocation (approach 1) or sentence
    isoflop: object = None  # Allocation (approach 2) or sentence


@dataclass
class Analysis:
    variants: dict
    predictions: pd.DataFrame  # one row per target × variant
    best: list  # sentences: which variant is best at each target, from what size on
    flops_per_param_sample: float | None
    prediction_objects: dict = field(default_factory=dict)  # (target, variant) -> Prediction
    undertrained: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per run


def analyse(ctx: ReportContext, n_bootstrap: int = N_BOOTSTRAP) -> Analysis:
    variants = {v: _analyse_variant(ctx, v, n_bootstrap) for v in ctx.variants}
    k = _flops_per_param_sample(ctx.runs)
    predictions, objects = _predictions(ctx, variants, n_bootstrap)
    best = _best_sentences(ctx, variants, predictions)
    return Analysis(variants=variants, predictions=predictions, best=best,
                    flops_per_param_sample=k, prediction_objects=objects,
                    undertrained=_guard(undertrained_runs, ctx.runs, ctx.y, ctx.result))


def _guard(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except ScalelabError as err:
        return str(err)


def _analyse_variant(ctx: ReportContext, variant, n_bootstrap: int) -> VariantAnalysis:
    final = ctx.variant_rows(variant)
    out = VariantAnalysis(variant=variant)
    if final.empty:
        out.headline_law = "no finished run of this variant."
        return out
    y = ctx.y
    has = set(final.columns)
    if "params" in has:
        out.fits_by_samples = (fit_power_laws(final, "params", y, "samples", n_bootstrap)
                               if "samples" in has else
                               fit_power_laws(final, "params", y, None, n_bootstrap))
    if {"params", "samples"} <= has:
        out.fits_by_params = fit_power_laws(final, "samples", y, "params", n_bootstrap)
    if out.fits_by_samples:
        largest = max(out.fits_by_samples, key=lambda k: (k is not None, k or 0))
        out.headline_law = out.fits_by_samples[largest]
        out.headline_samples = largest
    else:
        out.headline_law = "the table has no 'params' column to fit a law in model size."
    if isinstance(out.headline_law, PowerLaw):
        rows = final if out.headline_samples is None else \
            final[final["samples"] == out.headline_samples]
        out.backtest = _guard(backtest, PowerLaw(n_bootstrap=n_bootstrap), rows, y=y,
                              size="params", x="params", level=LEVEL)
    else:
        out.backtest = "no law to backtest."
    runs = ctx.variant_runs(variant)
    runs = runs[runs["run_id"].isin(final["run_id"])] if "run_id" in final else runs
    if {"params", "flops", "run_id"} <= set(runs.columns):
        out.allocation = _guard(envelope_allocation, runs, y=y)
        if not isinstance(out.allocation, str):
            frontier = out.allocation.frontier
            out.compute_law = _guard(
                lambda: PowerLaw(n_bootstrap=n_bootstrap).fit(frontier, x="flops", y="loss"))
        else:
            out.compute_law = out.allocation
        out.isoflop = _guard(isoflop_allocation, final, y=y)
    else:
        out.allocation = out.compute_law = out.isoflop = \
            "the table has no training curves with FLOPs (columns params, flops, run_id)."
    return out


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
    if ctx.targets:
        return ctx.targets
    if "params" in ctx.final and len(ctx.final):
        return [{"params": float(ctx.final["params"].max()) * 10}]
    return []


PREDICTION_COLUMNS = ["target", "variant", "prediction", "lower", "upper", "law",
                      "backtest_are", "persistence_are", "note"]


def _predictions(ctx: ReportContext, variants: dict, n_bootstrap: int):
    """Each target × variant predicted by :func:`scalelab.laws.predict_many`."""
    targets = default_targets(ctx)
    rows, objects = [], {}
    for variant in variants:
        runs = ctx.variant_runs(variant)
        found = []
        if targets:
            try:
                found = predict_many(runs, targets, y=ctx.y, result=ctx.result, level=LEVEL,
                                     n_bootstrap=min(n_bootstrap, 100))
            except ScalelabError as err:
                found = [str(err)] * len(targets)
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


def _best_sentences(ctx: ReportContext, variants: dict, predictions: pd.DataFrame) -> list:
    if len(variants) < 2:
        return []
    sentences = []
    for target, rows in predictions.groupby("target", sort=False):
        rows = rows.dropna(subset=["prediction"])
        if len(rows) < 2:
            sentences.append(f"At {target}: fewer than two variants could be predicted.")
            continue
        ranked = rows.sort_values("prediction")
        best, second = ranked.iloc[0], ranked.iloc[1]
        text = (f"At {target}: {best['variant']} is predicted best "
                f"({best['prediction']:.4g} vs {second['variant']} {second['prediction']:.4g})")
        law_a, law_b = variants[best["variant"]].headline_law, \
            variants[second["variant"]].headline_law
        if isinstance(law_a, PowerLaw) and isinstance(law_b, PowerLaw) and "params" in target:
            lo = min(law_a.input_range_["x"][0], law_b.input_range_["x"][0])
            hi = max(float(ctx.final["params"].max()) * 10,
                     *[t.get("params", 0) for t in default_targets(ctx)])
            cross = _guard(crossover, law_a, law_b, lo, hi, level=LEVEL)
            if isinstance(cross, str):
                text += f"; crossover not computed ({cross})"
            elif np.isnan(cross.crossover):
                text += f"; it is better over the whole range N ∈ [{lo:.3g}, {hi:.3g}]"
            else:
                text += (f"; it overtakes {second['variant']} from N ≈ {cross.crossover:.3g} "
                         f"({LEVEL:.0%} interval {cross.lower:.3g}–{cross.upper:.3g})")
        sentences.append(text + ".")
    return sentences
