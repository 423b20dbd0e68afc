"""The learned-rescaling page: LR fidelity and HR reconstruction against model size
(torch-free).

A learned rescaling (the ``irn`` family, Xiao et al. 2020) makes its own LR and
reconstructs the HR from it; each run records, besides the downscaling of the
degradation's LR that every run is scored on, ``val_lr_rmse`` (its LR against the
degradation's, the block mean by default) and ``val_recon_rmse`` (the HR reconstructed
from its own LR). :func:`rescaling_scaling` fits each against N by a saturating power
law M(N) = E + A·N^(−α) (:func:`scalelab.report.analysis.metric_scaling`, one law per
data size U, and per HCD setting when runs differ in ``collaborative_steps``);
:func:`page_rescaling` draws them, with the downscaling RMSE of the same runs and
bicubic upsampling's beside the reconstruction. A table without these columns emits no
page, so other reports do not change.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from scalelab.models.names import RESCALING_METRICS
from scalelab.report.analysis import Analysis, attempt, failed, metric_scaling
from scalelab.report.context import ReportContext
from scalelab.report.labels import LABELS, format_param, label

LABELS.setdefault("val_lr_rmse", "LR fidelity: RMSE of its LR vs the degradation's (field units)")
LABELS.setdefault("val_recon_rmse", "HR reconstructed from its own LR: RMSE (field units)")
GROUP = "rescaling run"


def _hcd_steps(options) -> int:
    if isinstance(options, str):
        try:
            options = json.loads(options)
        except ValueError:
            options = {}
    value = options.get("collaborative_steps", 0) if isinstance(options, dict) else 0
    return int(value) if isinstance(value, (int, float)) else 0


def rescaling_rows(final: pd.DataFrame) -> pd.DataFrame:
    """The final rows that record a learned rescaling's metrics, with a group column:
    ``U = …`` (and ``HCD k = …`` when runs differ in collaborative steps)."""
    present = [m for m in RESCALING_METRICS if m in final.columns]
    if not present:
        return final.iloc[0:0]
    rows = final[final[present].apply(pd.to_numeric, errors="coerce").notna().any(axis=1)].copy()
    if rows.empty:
        return rows
    steps = rows["options"].map(_hcd_steps) if "options" in rows else pd.Series(0, rows.index)
    parts = [rows["samples"].map(lambda u: f"U = {int(u):,}")] if "samples" in rows else []
    if steps.nunique() > 1:
        parts.append(steps.map(lambda k: f"HCD k = {k}"))
    rows[GROUP] = (parts[0].str.cat(parts[1:], sep=", ") if len(parts) > 1 else parts[0]
                   if parts else "runs")
    return rows


def rescaling_scaling(ctx: ReportContext) -> dict:
    """``{metric: MetricScaling or FitFailure}`` of the learned rescaling's two metrics."""
    rows = rescaling_rows(ctx.final)
    return {metric: attempt(metric_scaling, rows, metric, x="params", by=GROUP)
            for metric in RESCALING_METRICS if metric in rows}


def page_rescaling(ctx: ReportContext, analysis: Analysis):
    """LR fidelity and HR reconstruction of the learned rescaling against N; no page
    when the table holds no learned-rescaling run."""
    from scalelab.report.figures import plot_metric_law
    from scalelab.report.layout import message, text_block
    from scalelab.report.pages import new_page, panel

    rows = rescaling_rows(ctx.final)
    if rows.empty:
        return []
    fits = rescaling_scaling(ctx)
    fig = new_page("Learned rescaling (invertible): its own LR and the HR it reconstructs, "
                   "against N", ctx)
    axes = fig.subplots(1, 2, gridspec_kw={"top": 0.86, "bottom": 0.36, "left": 0.07,
                                           "right": 0.98, "wspace": 0.28})
    bicubic = pd.to_numeric(rows.get("val_bicubic_rmse"), errors="coerce")
    for ax, metric in zip(axes, RESCALING_METRICS):
        scaling = fits.get(metric)
        if scaling is None or failed(scaling):
            message(ax, f"{label(metric)}: " + (scaling.reason if scaling is not None
                                                 else "not recorded."))
            continue
        reference = None
        if metric == "val_recon_rmse" and bicubic is not None and bicubic.notna().any():
            reference = float(bicubic.median())
        panel(ax, plot_metric_law, scaling, reference=reference, prefix=f"{label(metric)}: ")
        if metric == "val_recon_rmse" and "val_rmse" in rows:  # the downscaling, same runs
            ax.plot(rows["params"], rows["val_rmse"], "x", color="0.45", ms=5,
                    label="downscaling the degradation's LR (val_rmse)")
            ax.legend(fontsize=6, frameon=False)
        ax.set_title(label(metric), fontsize=7)
    lines = ["## What is measured",
             "LR fidelity: RMSE of the network's own LR (its forward map) against the LR of the "
             "run's degradation (block mean by default). Reconstruction: RMSE of the HR its "
             "inverse rebuilds from its own LR, z ~ N(0, τ²) drawn (HCD's collaborative LR "
             "when set). Grey crosses: the same runs downscaling the degradation's LR, the "
             "score every family is compared on. Laws: M(N) = E + A·N^(−α) per group.",
             "## Measured and fitted"]
    for metric in RESCALING_METRICS:
        scaling = fits.get(metric)
        if scaling is None or failed(scaling):
            continue
        for key, group in scaling.table.groupby(GROUP):
            group = group.sort_values("params")
            text = (f"{metric} [{key}]: {group[metric].iloc[0]:.4g} at N = "
                    f"{group['params'].iloc[0]:,.0f} → {group[metric].iloc[-1]:.4g} at N = "
                    f"{group['params'].iloc[-1]:,.0f}")
            law = scaling.fits.get(key)
            if law is not None and not failed(law) and hasattr(law, "params_"):
                p = law.params_
                text += (f"; law E = {format_param(p['E'], '.3g', group[metric].max())}, "
                         f"A = {p['A']:.3g}, α = {p['alpha']:.3g}")
            lines.append(text)
    if "val_rmse" in rows and np.isfinite(pd.to_numeric(rows["val_rmse"], errors="coerce")).any():
        largest = rows.sort_values("params").iloc[-1]
        lines.append(f"largest run (N = {largest['params']:,.0f}): reconstruction from its own "
                     f"LR {largest['val_recon_rmse']:.4g} vs downscaling the degradation's LR "
                     f"{largest['val_rmse']:.4g}"
                     + (f" vs bicubic {largest['val_bicubic_rmse']:.4g}"
                        if "val_bicubic_rmse" in rows else ""))
    text_block(fig, 0.07, 0.29, lines, size=8, width=0.9)
    return [("rescaling", fig)]
