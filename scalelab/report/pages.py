"""The pages of the PDF report, one function each: ``page_<name>(ctx, analysis) -> [figures]``.

Pages draw and print the numbers of :mod:`scalelab.report.analysis`; they compute none.
Every page and every panel goes through one guard (:func:`render_page`, :func:`panel`,
both built on :func:`~scalelab.report.analysis.attempt`): a page or panel that cannot be
drawn — a :class:`~scalelab.ScalelabError` while drawing, or a
:class:`~scalelab.report.analysis.FitFailure` to draw from — shows that one sentence in
its place; any other error (a bug) is named in one sentence there too and warned
(:func:`~scalelab.report.analysis.guarded`), so the report always renders.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.report.analysis import (LEVEL, Analysis, attempt, default_targets, failed,
                                      guarded)
from scalelab.laws.regime import UNDERTRAINED_THRESHOLD
from scalelab.report.context import ReportContext
from scalelab.runs.baselines import improvement
from scalelab.runs.columns import axis_label, axis_symbol
from scalelab.report import layout
from scalelab.report.figures import (draw_reference, format_value, label, plot_frontier,
                                     plot_isoflop, plot_metric_law, plot_residuals,
                                     plot_scaling, plot_training_curves)
from scalelab.report.labels import format_param, symbol_value
from scalelab.report.layout import Flow, message, text_block, wrap

def new_page(title: str, ctx: ReportContext):
    """A report page: :func:`scalelab.report.layout.new_page` with the report's footer."""
    return layout.new_page(title, f"{ctx.title} · {ctx.n_runs} runs")


def render_page(page, ctx: ReportContext, analysis: Analysis) -> list:
    """``page(ctx, analysis)``'s ``[(name, figure)]``; if the page cannot be drawn, one page
    that says why in one sentence."""
    name = page.__name__.removeprefix("page_")
    figures = guarded(attempt, page, ctx, analysis)
    if failed(figures):
        fig = new_page(name.replace("_", " ").capitalize(), ctx)
        message(fig, figures.reason)
        return [(name, fig)]
    return figures


def panel(ax, draw, *args, prefix: str = "", width: int = 45, **kwargs) -> None:
    """Draw ``draw(*args, ax=ax, **kwargs)``; if it cannot be drawn, its one sentence (after
    ``prefix``) takes the panel."""
    drawn = guarded(attempt, draw, *args, ax=ax, **kwargs)
    if failed(drawn):
        ax.cla()
        message(ax, wrap(prefix + drawn.reason, width))


def _range(values) -> str:
    values = sorted(pd.Series(values).dropna().unique().tolist())
    if not values:
        return "—"
    if len(values) <= 6:
        return ", ".join(format_value(v) for v in values)
    return f"{len(values)} values, {format_value(values[0])} … {format_value(values[-1])}"


# -- 1. summary ---------------------------------------------------------------------------
def page_summary(ctx: ReportContext, analysis: Analysis):
    """What was swept, the headline predictions, which variant is best (on a metric they
    share), how far to trust it and the laws used; text that does not fit on one page flows
    onto continuation pages."""
    flow = Flow(ctx.title, "summary", lambda title: new_page(title, ctx))
    runs = ctx.runs.drop_duplicates("run_id") if "run_id" in ctx.runs else ctx.runs
    statuses = ", ".join(f"{n} {s}" for s, n in ctx.status_counts().items()) or \
        f"{len(runs)} rows"
    swept = ["## What was swept"]
    for column, what in [("family", "network family"), ("width", "width"), ("depth", "depth"),
                         ("params", axis_label("params")), ("samples", axis_label("samples")),
                         ("loss_variant", "loss variants"), ("seed", "seeds"),
                         ("field", "field"), ("scale", "scale factor")]:
        if column in runs.columns:
            swept.append(f"{what}: {_range(runs[column])}")
    if "param_bits" in runs.columns and runs["param_bits"].nunique() > 1:  # precision axis
        swept.append(f"weights' bits P (32 fp32, 16 bf16, k QAT): {_range(runs['param_bits'])}")
        quantized = runs[pd.to_numeric(runs.get("weight_bits", 0), errors="coerce") > 0] \
            if "weight_bits" in runs.columns else runs.iloc[:0]
        if "qat_fraction" in quantized.columns and quantized["qat_fraction"].nunique() > 1:
            swept.append(f"QAT fraction f: {_range(quantized['qat_fraction'])}")
    for column, what in [("samples_seen", f"{axis_label('samples_seen')} = steps × batch"),
                         ("epochs", f"epochs {axis_symbol('samples_seen')}/"
                                    f"{axis_symbol('samples')}")]:
        if column in ctx.final.columns and len(ctx.final):
            swept.append(f"{what} (each run's last row): {_range(ctx.final[column])}")
    compute = ctx.total_compute
    swept.append(f"runs: {statuses}" + (f"; total training compute {compute:.3g} FLOP"
                                        if compute else ""))
    savings = ctx.budget_savings
    if savings:
        swept.append(f"data budgets from {savings['trunks']} constant-rate trunks: "
                     f"{savings['branches']} cooldown branches cost {savings['spent']:.3g} FLOP "
                     f"against {savings['independent']:.3g} for independent runs of the same "
                     f"budgets — {savings['saved_fraction']:.0%} saved (Hägele et al. 2024)")
    bicubic = analysis.bicubic.get(ctx.y) if isinstance(analysis.bicubic, dict) else None
    if bicubic:
        swept.append("bicubic upsampling of the coarse input, on the same validation set: "
                     + "; ".join(f"{_variant_text(v)}{label(ctx.y)} {value:.4g}"
                                 for v, value in bicubic.items()))
    swept += [sentence[0].upper() + sentence[1:] for sentence in ctx.dropped]
    flow.text(swept, size=10)
    flow.space(0.015)
    flow.text([f"## Headline predictions of {label(ctx.y)} ({LEVEL:.0%} prediction intervals)"])
    preds = analysis.predictions.copy()
    if preds.empty:
        flow.text(["no target could be predicted (no law was fitted)."], indent=0.02)
    else:
        pct = (lambda v: f"{v:.2%}" if np.isfinite(v) else "—")
        shown = pd.DataFrame({
            "target": preds["target"], "loss variant": preds["variant"].astype(str),
            "prediction": preds["prediction"].map(lambda v: f"{v:.4g}" if np.isfinite(v) else "—"),
            f"{LEVEL:.0%} interval": [f"{lo:.4g} – {hi:.4g}" if np.isfinite(lo) else "—"
                                       for lo, hi in zip(preds["lower"], preds["upper"])],
            "law used": preds["law"].astype(str),
            "backtest ARE": preds["backtest_are"].map(pct),
            "persistence ARE": preds["persistence_are"].map(pct),
        })
        if bicubic:  # how far each prediction beats the reference downscaling
            gains = [improvement(p, bicubic.get(v, np.nan), ctx.y)
                     for p, v in zip(preds["prediction"], preds["variant"])]
            shown["better than bicubic"] = [f"{g:.1%}" if np.isfinite(g) else "—" for g in gains]
        flow.table(shown, size=8)
        notes = []
        for _, r in preds.iterrows():
            head = r["target"] + (f" [{r['variant']}]" if r["variant"] is not None else "")
            found = analysis.prediction_objects.get((r["target"], r["variant"]))
            if found is not None:
                table = found.table().dropna(subset=["backtest_are"])
                notes.append(f"{head}: backtest ARE " + ", ".join(
                    f"{law} {are:.2%}" for law, are in zip(table["law"],
                                                          table["backtest_are"])))
            if r["note"]:
                notes.append(f"{head}: {r['note']}")
        flow.text(notes, size=7)
        flow.space(0.01)
    lines = []
    if analysis.best:
        lines += ["## Which loss variant, from what size on", *analysis.best]
    flags = analysis.undertrained
    if isinstance(flags, pd.DataFrame) and len(flags) and flags["undertrained"].any():
        bad = flags[flags["undertrained"]]
        sizes = ", ".join(sorted({format_value(v) for v in bad["params"]})) if "params" in bad else ""
        lines += ["## Undertrained runs",
                  f"{len(bad)} of {len(flags)} runs still improve by more than "
                  f"{UNDERTRAINED_THRESHOLD:.0%} over the last "
                  f"fifth of training" + (f" ({axis_symbol('params')} = {sizes})" if sizes else "")
                  + "; their values understate what their size can reach."]
    lines.append("## How far to trust it (leave-largest-out backtest, Choshen et al. 2024)")
    for variant, va in analysis.variants.items():
        name = f"{variant}: " if variant is not None else ""
        if not failed(va.backtest) and len(va.backtest):
            bt = va.backtest.iloc[0]
            lines.append(f"{name}fitted on N < {bt['target']:.3g}, predicted {bt['prediction']:.4g} "
                         f"for a truth of {bt['truth']:.4g}: ARE {bt['are']:.2%}, the {LEVEL:.0%} "
                         f"interval {'covered' if bt['covered'] else 'did NOT cover'} it.")
        else:
            lines.append(f"{name}backtest not possible: {va.backtest}")
    for (target, variant), pred in analysis.prediction_objects.items():
        name = f" [{variant}]" if variant is not None else ""
        reached = (f"its backtests reached {pred.backtested_distance:.3g}×, where its "
                   f"{pred.level:.0%} intervals covered {pred.coverage:.0%} of the truths"
                   if np.isfinite(pred.backtested_distance) and np.isfinite(pred.coverage)
                   else "it was not backtested")
        lines.append(f"{target}{name}: {pred.distance:.3g}× the largest run; {reached}"
                     + ("; beyond twice that distance, the interval is an assumption."
                        if pred.far else "."))
    lines.append("## Laws used")
    lines.append("headline and the scaling page's curve: the law scalelab.laws.predict chose "
                 "among every form the data allow (power laws in N or C, joint laws in N and "
                 "D on any grid, a law of whole curves), each backtested; the lowest backtest "
                 "ARE is used when it beats persistence, its interval the bootstrap's widened "
                 "by its backtest errors;")
    lines.append("other figures: L(N) = E + A·N^(−α) per distinct-sample count U (robust Huber fit on log "
                 "loss, Hoffmann et al. 2022), predictions from the largest U; L(U) per N;"
                 + (" where runs of one (N, U) differ in length, each one's longest run;"
                    if _lengths_vary(ctx.final) else ""))
    lines.append("L(C) fitted to the loss envelope of the training curves, C counting the "
                 "samples seen D (steps × batch), not U; intervals from bootstrap resamples "
                 "of the runs.")
    flow.text(lines, size=9)
    return flow.pages


def _variant_text(variant) -> str:
    return "" if variant is None else f"[{variant}] "


def _lengths_vary(final: pd.DataFrame) -> bool:
    keys = [c for c in ("params", "samples", "seed", "loss_variant") if c in final.columns]
    if "samples_seen" not in final.columns or not keys or final.empty:
        return False
    return bool((final.groupby(keys)["samples_seen"].nunique() > 1).any())


# -- 2. scaling curves ----------------------------------------------------------------------
def page_scaling(ctx: ReportContext, analysis: Analysis):
    """Per loss variant: y vs N (per U), y vs U (per N; only where U is swept: otherwise the
    other panels take its room), y vs compute; with the fitted laws, their confidence bands,
    extrapolations with prediction bands, bicubic upsampling's value as a line, and (for
    one variant a page) the table of the fitted parameters of L(N)."""
    pages = []
    variants = list(analysis.variants.items())
    targets = default_targets(ctx)
    d_target = max([t.get("samples", 0) for t in targets] + [0]) or None
    u, n = axis_symbol("samples"), axis_symbol("params")
    for start in range(0, len(variants), 2):
        chunk = variants[start:start + 2]
        fig = new_page("Scaling curves", ctx)
        one = len(chunk) == 1
        with_u = any("samples" in ctx.variant_rows(v) and ctx.variant_rows(v)["samples"].nunique() > 1
                     for v, _ in chunk)
        axes = fig.subplots(len(chunk), 3 if with_u else 2, squeeze=False,
                            gridspec_kw={"hspace": 0.5, "wspace": 0.32, "top": 0.87,
                                         "bottom": 0.36 if one else 0.1, "left": 0.07,
                                         "right": 0.93})
        for row, (variant, va) in zip(axes, chunk):
            rows = ctx.variant_rows(variant)
            tag = f"[{variant}] " if variant is not None else ""
            reference = (analysis.bicubic.get(ctx.y) or {}).get(variant)
            chosen = _chosen_prediction(analysis, variant)
            if chosen is not None:  # one law on the page and in the headline
                panel(row[0], _plot_chosen, ctx.variant_runs(variant), chosen, reference,
                      title=f"{tag}vs parameters: the law predict used, {chosen.law}\n"
                            f"to ★ at {n} = {format_value(chosen.point['params'])} with its "
                            f"{chosen.level:.0%} interval; band: bootstrap")
            else:
                panel(row[0], plot_scaling, rows, x="params", y=ctx.y,
                      by="samples" if "samples" in rows else None, fits=va.fits_by_samples,
                      extrapolate_to=va.extrapolate_to, reference=reference,
                      title=f"{tag}vs parameters, per data size\nL = E + A·{n}^(−α); band: "
                            f"{LEVEL:.0%} CI; dashed: to ★ with {LEVEL:.0%} PI")
            if with_u:
                panel(row[1], _plot_vs_samples, rows, ctx.y, va, d_target, tag, reference)
            panel(row[-1], _plot_vs_compute, ctx, variant, va, tag, reference)
        if one:
            _fit_table(fig.add_axes([0.07, 0.04, 0.86, 0.22]), chunk[0][1])
        elif not with_u:
            fig.text(0.97, 0.972, f"The sweep has one data size ({u} = "
                     f"{format_value(ctx.final['samples'].iloc[0]) if 'samples' in ctx.final and len(ctx.final) else '—'}), "
                     f"so there is no curve in {u}.", ha="right", va="top", fontsize=8,
                     color="0.35")
        pages.append((f"scaling_{start // 2 + 1}", fig))
    return pages


def _chosen_prediction(analysis: Analysis, variant):
    """The prediction of the variant's first target in N (the headline), if any."""
    for (target, v), pred in analysis.prediction_objects.items():
        if v == variant and pred.axis == "params" and "params" in pred.point:
            return pred
    return None


def _plot_chosen(runs, prediction, reference, ax, title=None):
    from scalelab.report.predictions import plot_prediction

    plot_prediction(runs, prediction, ax=ax, title=title)
    if draw_reference(ax, reference) is not None:
        ax.legend(fontsize=6, frameon=False)


def _fit_table(ax, va) -> None:
    n_end = va.extrapolate_to
    u, n = axis_symbol("samples"), axis_symbol("params")
    rows = []
    for key, fit in va.fits_by_samples.items():
        band = va.extrapolation.get(key, fit)
        if failed(fit):
            rows.append([format_value(key), "—", "—", "—", "—", "—", wrap(f"not fitted: {fit}", 60)])
            continue
        p, ci = fit.params_, (fit.conf_int(LEVEL) if fit.bse_ is not None else None)
        scale = float(np.nanmax(np.abs(fit.y_))) if getattr(fit, "y_", None) is not None else None
        cell = (lambda name, f: format_param(p[name], f, scale) + (
            f"  [{format_param(ci.loc[name, 'lower'], f, scale)}, "
            f"{format_param(ci.loc[name, 'upper'], f, scale)}]" if ci is not None else ""))
        at_end = (wrap(f"not predicted: {band}", 60) if failed(band) else
                  f"{band['prediction']:.4g}  [{band['lower']:.4g}, {band['upper']:.4g}]")
        rows.append([format_value(key), cell("E", ".4g"), cell("A", ".3g"), cell("alpha", ".3f"),
                     f"{fit.rmse_log_:.3g}", str(fit.n_points_), at_end])
    ax.set_title(f"fitted L({n}) = E + A·{n}^(−α) per data size {u} ({LEVEL:.0%} bootstrap "
                 f"intervals) and the prediction at {n} = {format_value(n_end)} "
                 f"({LEVEL:.0%} PI)", fontsize=9)
    layout.table(ax, pd.DataFrame(rows, columns=[u, "E (floor)", "A", "α", "RMS log-resid.",
                                                 "points", f"L at {n} = {format_value(n_end)}"]))


def _plot_vs_samples(rows, y, va, d_target, tag, reference, ax):
    u = axis_symbol("samples")
    if "samples" not in rows or rows["samples"].nunique() < 2:
        raise ScalelabError(f"the sweep has one data size, so there is no curve in {u}.")
    enough = any(not failed(f) for f in va.fits_by_params.values())
    plot_scaling(rows, x="samples", y=y, by="params",
                 fits=va.fits_by_params if enough else {}, reference=reference,
                 extrapolate_to=max(d_target or 0, 10 * float(rows["samples"].max())), ax=ax,
                 title=f"{tag}vs distinct training samples, per model size"
                 + ("" if enough else f"\n(a law in {u} needs 4+ data sizes)"))


def _plot_vs_compute(ctx, variant, va, tag, reference, ax):
    runs = ctx.variant_runs(variant)
    if "flops" not in runs:
        raise ScalelabError("the table has no 'flops' column, so there is no curve in compute.")
    plot_training_curves(runs, x="flops", y=ctx.y, ax=ax,
                         title=f"{tag}vs compute, every run's curve\nblack: loss envelope "
                               f"and its law L({axis_symbol('flops')}) with {LEVEL:.0%} PI")
    law = va.compute_law
    if not failed(law):
        frontier = va.allocation.frontier
        targets = [t["compute"] for t in default_targets(ctx) if "compute" in t]
        end = max([float(frontier["flops"].max()) * 10, *targets])
        grid = np.geomspace(float(frontier["flops"].min()), end, 80)
        ax.plot(frontier["flops"], frontier["loss"], "k.", ms=4)
        ax.plot(grid, law.predict(x=grid), "k-", lw=1.2)
        if getattr(law, "bootstrap_params_", None) is not None:  # a band needs resamples
            band = law.predict_interval(x=grid, level=LEVEL, kind="observation")
            ax.fill_between(grid, band["lower"], band["upper"], color="k", alpha=0.1, lw=0)
    line = draw_reference(ax, reference)
    if line is not None:  # beside the legend's entries (the data sizes)
        legend = ax.get_legend()
        handles = list(legend.legend_handles) if legend is not None else []
        labels = [t.get_text() for t in legend.get_texts()] if legend is not None else []
        ax.legend(handles + [line], labels + [line.get_label()], fontsize=7, frameon=False)


# -- 3. fit quality -----------------------------------------------------------------------
def page_fit_quality(ctx: ReportContext, analysis: Analysis):
    pages = []
    u, n = axis_symbol("samples"), axis_symbol("params")
    for variant, va in analysis.variants.items():
        tag = f" [{variant}]" if variant is not None else ""
        fig = new_page(f"Fit quality{tag}", ctx)
        panel(fig.add_axes([0.09, 0.55, 0.37, 0.33]), plot_residuals, va.fits_by_samples)
        ax_bt = fig.add_axes([0.52, 0.55, 0.45, 0.33])
        panel(ax_bt, _backtest_table, va.backtest, prefix="no backtest: ", width=60)
        ax_bt.set_title(f"leave-largest-out backtest (largest {u})", fontsize=9)
        # parameter tables of every fitted law in N
        rows = []
        for key, fit in va.fits_by_samples.items():
            if not failed(fit):
                ci = fit.conf_int(LEVEL) if fit.bse_ is not None else None
                scale = float(np.nanmax(np.abs(fit.y_))) if getattr(fit, "y_", None) is not None \
                    else None
                for name, r in fit.params_table().iterrows():
                    interval = (f"[{format_param(ci.loc[name, 'lower'], '.4g', scale)}, "
                                f"{format_param(ci.loc[name, 'upper'], '.4g', scale)}]"
                                if ci is not None else "—")
                    rows.append([format_value(key), name,
                                 format_param(r["estimate"], ".5g", scale),
                                 f"{r.get('std err', np.nan):.3g}", interval,
                                 str(fit.n_points_), f"{fit.rmse_log_:.3g}"])
            else:
                rows.append([format_value(key), "—", "—", "—", "not fitted", "—", wrap(str(fit), 60)])
        ax_t = fig.add_axes([0.07, 0.05, 0.9, 0.36])
        ax_t.set_title(f"parameters of L = E + A·{n}^(−α) per data size {u} (bootstrap std err "
                       f"and {LEVEL:.0%} interval)", fontsize=9)
        layout.table(ax_t, pd.DataFrame(rows, columns=[u, "parameter", "estimate", "std err",
                                                       f"{LEVEL:.0%} interval", "points",
                                                       "RMS log-resid."]))
        pages.append((f"fit_quality{'_' + str(variant) if variant is not None else ''}", fig))
    return pages


def _backtest_table(bt: pd.DataFrame, ax) -> None:
    if not len(bt):
        raise ScalelabError("the backtest has no hold-out run.")
    layout.table(ax, max_rows=14, frame=pd.DataFrame({
        "fit on": bt["checkpoints"], "runs": bt["n_runs"],
        f"target {axis_symbol('params')}": bt["target"].map(lambda v: f"{v:.3g}"),
        "truth": bt["truth"].map(lambda v: f"{v:.4g}"),
        "predicted": bt["prediction"].map(lambda v: f"{v:.4g}"),
        f"{LEVEL:.0%} PI": [f"{a:.4g} – {b:.4g}" for a, b in zip(bt["lower"], bt["upper"])],
        "ARE": bt["are"].map(lambda v: f"{v:.2%}"),
        "covered": bt["covered"].map(lambda v: "yes" if v else "NO")}))


# -- 4. compute-optimal frontier ------------------------------------------------------------
def page_frontier(ctx: ReportContext, analysis: Analysis):
    pages = []
    targets = [t["compute"] for t in default_targets(ctx) if "compute" in t]
    for variant, va in analysis.variants.items():
        tag = f" [{variant}]" if variant is not None else ""
        fig = new_page(f"Compute-optimal frontier{tag}", ctx)
        ax1 = fig.add_axes([0.08, 0.33, 0.38, 0.55])
        ax2 = fig.add_axes([0.57, 0.33, 0.39, 0.55])
        panel(ax1, plot_frontier, va.allocation, compute_targets=targets,
              flops_per_param_sample=analysis.flops_per_param_sample, prefix="no frontier: ")
        panel(ax2, plot_isoflop, profiles=va.isoflop_profiles, y=ctx.y)
        notes = []
        if not failed(va.allocation):
            notes.append("Approach 1 (envelope of training curves): "
                         + _allocation_text(va.allocation) + ".")
        notes.append("Approach 2 (IsoFLOP parabolas of the final losses, runs grouped by "
                     "budget): " + (str(va.isoflop) if failed(va.isoflop)
                                    else _allocation_text(va.isoflop) + "."))
        if failed(va.isoflop) and not failed(va.isoflop_profiles):
            budgets = va.isoflop_profiles["flops"].nunique()
            notes.append(f"The same parabolas through the {budgets} training-curve profiles "
                         f"at right: " + (_allocation_text(va.isoflop_curves) + "."
                                          if not failed(va.isoflop_curves)
                                          else str(va.isoflop_curves)))
            notes.append("★ marks the best size measured at each budget; a parabola's vertex "
                         "counts only where it lies between the sizes tried. Curve points "
                         "are not annealed, so approach 2 from them is indicative only.")
        notes.append("Compute C = 3 × forward FLOPs × samples seen D (steps × batch, "
                     "D/U epochs of the U distinct samples): both approaches use samples seen, "
                     "not U.")
        if analysis.flops_per_param_sample:
            notes.append(f"k = C/(N·D) measured from the runs: {analysis.flops_per_param_sample:.3g} "
                         f"FLOP per parameter per sample seen (a transformer's is 6).")
        text_block(fig, 0.06, 0.235, notes, size=8, width=0.9)
        pages.append((f"frontier{'_' + str(variant) if variant is not None else ''}", fig))
    return pages


def _allocation_text(allocation) -> str:
    lo, hi = allocation.conf_int(LEVEL).loc["exponent"]
    return (f"N_opt ∝ C^{allocation.exponent:.3f} ({LEVEL:.0%} interval {lo:.3f} – {hi:.3f}), "
            f"from {len(allocation.frontier)} budgets")


# -- 5. calibration ---------------------------------------------------------------------------
def page_calibration(ctx: ReportContext, analysis: Analysis):
    metrics = list(analysis.calibration)
    if not metrics:
        raise ScalelabError("no run in this table is stochastic (ensemble_members ≥ 2), so "
                            "there are no calibration metrics (CRPS, spread-skill, rank "
                            "histograms) to show.")
    largest = (f" ({symbol_value('samples', ctx.final['samples'].max())})"
               if "samples" in ctx.final else "")
    fig = new_page(f"Calibration of the ensembles against model size{largest}", ctx)
    n = len(metrics)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    axes = fig.subplots(rows, cols, squeeze=False,
                        gridspec_kw={"hspace": 0.45, "wspace": 0.34, "top": 0.88,
                                     "bottom": 0.1, "left": 0.07, "right": 0.98})
    target = analysis.calibration_target
    laws = analysis.calibration_laws if isinstance(analysis.calibration_laws, dict) else {}
    for ax, metric in zip(axes.ravel(), metrics):
        panel(ax, plot_metric_law, analysis.calibration[metric], target=target,
              reference=_one_value(analysis.bicubic.get(metric)), prefix=f"{label(metric)}: ")
        # the laws' leave-largest-out backtests (scalelab.report.calibration_fits)
        notes = [f"{_group_text(g)}{law.backtest_text(short=True)}"
                 for g, law in laws.get(metric, {}).items()]
        if notes and ax.lines:
            # room above the data for the notes (top left) and the legend (top right)
            lo, hi = ax.get_ylim()
            ax.set_ylim(lo, hi * (hi / lo) ** (0.12 * (len(notes[:5]) + 1)))
            ax.text(0.02, 0.98, "\n".join(notes[:5]), transform=ax.transAxes,
                    fontsize=5.5, va="top")
            if ax.get_legend() is not None:
                legend = ax.get_legend()
                ax.legend(list(legend.legend_handles),
                          [t.get_text() for t in legend.get_texts()], fontsize=6, frameon=False,
                          title=legend.get_title().get_text(), title_fontsize=6,
                          loc="upper right", bbox_to_anchor=(1.0, 0.86))
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    pages = [("calibration", fig)]
    pages += [(name, hist) for name, hist in
              render_page(page_calibration_histograms, ctx, analysis) if hist is not None]
    return pages


def _one_value(values: dict | None):
    """The one value of ``{variant: value}`` when every variant has the same (bicubic
    upsampling's, on one validation set), else None."""
    found = set(round(v, 12) for v in (values or {}).values())
    return next(iter(found)) if len(found) == 1 else None


def _group_text(group) -> str:
    if group is None:
        return ""
    return (" · ".join(map(str, group)) if isinstance(group, tuple) else str(group)) + ": "


def page_calibration_histograms(ctx: ReportContext, analysis: Analysis):
    """Per loss variant (two at most), at the largest data size: the rank histogram and the
    exceedance reliability diagram of each model size's final evaluation (none without)."""
    columns = [c for c in ("val_rank_hist", "val_exceed_reliability") if c in ctx.final.columns]
    if not columns:
        return [("calibration_histograms", None)]
    final = ctx.final.dropna(subset=columns[:1])
    if "samples" in final and len(final):
        final = final[final["samples"] == final["samples"].max()]
    if final.empty:
        return [("calibration_histograms", None)]
    variants = [v for v in ctx.variants if v is None or len(ctx.variant_rows(v))][:2]
    sizes = sorted(final["params"].unique())[-5:] if "params" in final else [None]
    largest = f", {symbol_value('samples', final['samples'].iloc[0])}" if "samples" in final else ""
    fig = new_page(f"Rank histograms and exceedance reliability at each size{largest}", ctx)
    axes = fig.subplots(2 * len(variants), len(sizes), squeeze=False,
                        gridspec_kw={"hspace": 0.7, "wspace": 0.35, "top": 0.88,
                                     "bottom": 0.1, "left": 0.07, "right": 0.98})
    from scalelab.calibration import ReliabilityCurve, plot_reliability

    for v, variant in enumerate(variants):
        rows = final if variant is None or "loss_variant" not in final else \
            final[final["loss_variant"] == variant]
        tag = f"[{variant}] " if variant is not None else ""
        for j, size in enumerate(sizes):
            ax_hist, ax_rel = axes[2 * v, j], axes[2 * v + 1, j]
            run = rows[rows["params"] == size] if size is not None else rows
            counts = _as_list(run["val_rank_hist"].iloc[-1]) if len(run) else None
            if counts:
                counts = np.asarray(counts, dtype=float)
                ax_hist.bar(np.arange(1, counts.size + 1), counts / counts.sum(), color="C0")
                ax_hist.axhline(1 / counts.size, color="k", ls="--", lw=0.8)
                ax_hist.set_xlabel("rank of observation", fontsize=7)
                ax_hist.tick_params(labelsize=7)
            else:
                ax_hist.axis("off")
            departure = (pd.to_numeric(run["val_rank_departure"], errors="coerce").iloc[-1]
                         if len(run) and "val_rank_departure" in run else np.nan)
            ax_hist.set_title(f"{tag}{symbol_value('params', size)}"
                              + (f"\ndeparture from flat {departure:.3f}"
                                 if np.isfinite(departure) else ""), fontsize=7)
            rel = _as_dict(run["val_exceed_reliability"].iloc[-1]) \
                if len(run) and "val_exceed_reliability" in run else None
            if rel:
                curve = ReliabilityCurve(**{k: np.asarray(x, dtype=float)
                                            for k, x in rel.items()})
                plot_reliability(curve, ax=ax_rel)
                ax_rel.set_aspect("auto")
                ax_rel.tick_params(labelsize=7)
                ax_rel.xaxis.label.set_fontsize(7)
                ax_rel.yaxis.label.set_fontsize(7)
                ax_rel.set_title(f"{tag}exceedance reliability", fontsize=8)
            else:
                ax_rel.axis("off")
            if j:
                ax_hist.set_ylabel("")
                ax_rel.set_ylabel("")
            else:
                ax_hist.set_ylabel("frequency", fontsize=7)
    return [("calibration_histograms", fig)]


def _parse(value):
    """A list/dict cell as the store gives it, or as text after a CSV round trip."""
    if not isinstance(value, str):
        return value
    import ast

    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(value.replace("nan", "NaN") if parse is json.loads else value)
        except (ValueError, SyntaxError):
            continue
    return None


def _as_list(value):
    value = _parse(value)
    return value if isinstance(value, (list, tuple, np.ndarray)) else None


def _as_dict(value):
    value = _parse(value)
    return value if isinstance(value, dict) else None


# -- 6. training curves ---------------------------------------------------------------------
def page_curves(ctx: ReportContext, analysis: Analysis):
    variants = ctx.variants
    fig = new_page("Training curves", ctx)
    axes = fig.subplots(1, len(variants), squeeze=False,
                        gridspec_kw={"top": 0.86, "bottom": 0.1, "left": 0.07, "right": 0.93,
                                     "wspace": 0.35})[0]
    x = "samples_seen" if "samples_seen" in ctx.runs else "step"
    for ax, variant in zip(axes, variants):
        panel(ax, plot_training_curves, ctx.variant_runs(variant), x=x, y=ctx.y,
              title=(f"[{variant}] " if variant is not None else "")
              + f"{label(ctx.y)} during training")
    flags = analysis.undertrained
    if isinstance(flags, pd.DataFrame) and len(flags):
        bad = flags[flags["undertrained"]]
        text = (f"undertrained (still falling by more than {UNDERTRAINED_THRESHOLD:.0%} over "
                f"the last fifth of training): {len(bad)} of {len(flags)} runs"
                + (": " + ", ".join(symbol_value("params", r["params"])
                                    + (f", {symbol_value('samples', r['samples'])}"
                                       if "samples" in r else "")
                                    for _, r in bad.head(6).iterrows()) if len(bad) else ""))
        fig.text(0.07, 0.035, text, fontsize=8, color="C3" if len(bad) else "0.3")
    return [("curves", fig)]


# -- 7. reproducibility ---------------------------------------------------------------------
def page_reproducibility(ctx: ReportContext, analysis: Analysis):
    import scalelab

    fig = new_page("Reproducibility", ctx)
    runs = ctx.runs.drop_duplicates("run_id") if "run_id" in ctx.runs else ctx.runs
    lines = ["## Provenance", f"source: {ctx.source or '(a table in memory)'}",
             f"report written: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
             f"scalelab {scalelab.__version__}, python {platform.python_version()}, numpy "
             f"{np.__version__}, pandas {pd.__version__}"]
    for column, what in [("device", "devices"), ("host", "hosts")]:
        if column in runs:
            lines.append(f"{what}: {_range(runs[column])}")
    if "versions" in runs:
        versions = runs["versions"].dropna()
        if len(versions):
            first = versions.iloc[0]
            first = json.loads(first) if isinstance(first, str) else first
            if isinstance(first, dict):
                lines.append("training libraries: " + ", ".join(f"{k} {v}" for k, v in
                                                                 list(first.items())[:8]))
    if "wall_time_s" in runs:
        lines.append(f"wall time of the runs: {runs['wall_time_s'].sum():.0f} s in total")
    y = text_block(fig, 0.03, 0.92, lines, size=9)
    text_block(fig, 0.03, y - 0.01, ["## Sweep spec"], size=9)
    spec_text = _spec_text(ctx.spec)
    fig.text(0.03, y - 0.05, spec_text, fontsize=7, family="monospace", va="top")
    return [("reproducibility", fig)]


def _spec_text(spec) -> str:
    if not spec:
        return "(no spec was given: the table came without one)"
    import yaml

    text = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=120)
    lines = text.splitlines()
    if len(lines) > 55:
        lines = lines[:55] + [f"... ({len(lines) - 55} more lines)"]
    return "\n".join(lines)


def page_families(ctx: ReportContext, analysis: Analysis):
    """Which network family wins at which compute, per loss variant: each family's envelope
    and law against compute, and the winners (computed in ``analysis.families``)."""
    pages = []
    for variant, comparison in analysis.families.items():
        tag = f" [{variant}]" if variant is not None else ""
        fig = new_page(f"Network families at matched training compute: {label(ctx.y)}{tag}",
                       ctx)
        if failed(comparison):
            message(fig, comparison.reason)
            pages.append((f"families{'_' + str(variant) if variant is not None else ''}", fig))
            continue
        ax = fig.add_axes([0.07, 0.12, 0.5, 0.72])
        lo, hi = comparison.compute_range
        for i, (name, env) in enumerate(comparison.envelopes.items()):
            colour = f"C{i}"
            ax.plot(env["flops"], env["loss"], "o", ms=3, color=colour, label=f"{name} (envelope)")
            law = comparison.laws[name]
            if not isinstance(law, str) and np.isfinite(hi):
                grid = np.geomspace(env["flops"].min(), hi, 200)
                band = law.predict_interval(x=grid, level=comparison.level, kind="mean")
                ax.plot(grid, band["prediction"], "-", color=colour, lw=1.2)
                ax.fill_between(grid, band["lower"], band["upper"], color=colour, alpha=0.15,
                                lw=0)
        for _, _, cross in comparison.switches:
            if np.isfinite(cross.crossover):
                ax.axvline(cross.crossover, color="k", ls=":", lw=0.8)
                if np.isfinite(cross.lower):
                    ax.axvspan(cross.lower, cross.upper, color="k", alpha=0.06, lw=0)
        layout.log_axes(ax)
        ax.set_xlabel(label("flops"))
        ax.set_ylabel(label(ctx.y))
        ax.legend(fontsize=7)
        lines = ["## Who wins where", *comparison.sentences(), "## Laws of the envelopes"]
        for name, law in comparison.laws.items():
            if not isinstance(law, str):
                p = law.params_
                scale = max((float(e["loss"].max()) for e in comparison.envelopes.values()),
                            default=None)
                lines.append(f"{name}: E = {format_param(p['E'], '.3g', scale)}, "
                             f"A = {p['A']:.3g}, α = {p['alpha']:.3g}")
            else:
                lines.append(f"{name}: no law ({law})")
        lines.append("## Method")
        lines.append("Envelope: the lowest value any run of the family had reached at each "
                     "compute (Hoffmann et al. 2022, approach 1), fitted by L = E + A·C^(−α); "
                     f"bands: {comparison.level:.0%} confidence; crossovers from paired "
                     "bootstrap refits; each loss variant apart (val_loss is in its own units).")
        text_block(fig, 0.6, 0.86, lines, size=8, width=0.37)
        pages.append((f"families{'_' + str(variant) if variant is not None else ''}", fig))
    return pages


# The laws predict weighed, and pages of an axis, each in its own module (they import this
# one's helpers, hence below) and each emitted only where the runs have that axis: the adversarial term's gain against
# N (runs at adversarial_weight 0 and > 0), scaling under geographic shift (val_*@region
# columns), learning-rate sensitivity (runs of one N at several lr), weight precision and
# QAT (runs at two or more weight precisions), learned rescaling (val_lr_rmse /
# val_recon_rmse) and learned kernels (degradation learned_kernel).
from scalelab.report.adversarial import page_adversarial  # noqa: E402
from scalelab.report.candidates import page_candidates  # noqa: E402
from scalelab.report.kernels import page_kernels  # noqa: E402
from scalelab.report.lr_sensitivity import page_lr_sensitivity  # noqa: E402
from scalelab.report.precision import page_precision  # noqa: E402
from scalelab.report.rescaling import page_rescaling  # noqa: E402
from scalelab.report.shift import page_shift  # noqa: E402

PAGES = [page_summary, page_scaling, page_fit_quality, page_candidates, page_frontier,
         page_families, page_calibration, page_adversarial, page_curves, page_reproducibility, page_shift,
         page_lr_sensitivity, page_precision, page_rescaling, page_kernels]
