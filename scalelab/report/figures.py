"""Figures of the report, each a public function that a notebook can call alone.

Every function takes the runs table (one row per run × evaluation step, or final
rows) and optional fitted laws, draws on a given matplotlib ``ax`` (or a new figure)
and returns the figure. Log axes, units and legends are set here once, so the PDF and
the notebooks agree. A figure that cannot be drawn from the table raises
:class:`~scalelab.ScalelabError` with one sentence.

Figures only draw: the numbers they show (fitted laws, frontiers, IsoFLOP profiles)
are computed by :mod:`scalelab.report.analysis` and :mod:`scalelab.laws`, and passed
in; given only a table, a figure asks those modules for them.
"""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.ticker import LogLocator, NullFormatter
import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.laws import Law, isoflop_profiles
from scalelab.report.analysis import (LEVEL, METRIC_BOOTSTRAP, MetricScaling, fit_power_laws,
                                      metric_scaling)
from scalelab.report.labels import LABELS, format_value, label, symbol_value  # noqa: F401
from scalelab.report.layout import log_axes, tick
from scalelab.runs.columns import axis_symbol
from scalelab.runs.table import final_rows, require_columns

def _group_name(by: str | None, key) -> str:
    """A legend entry: ``U = 4,096`` for a scaling axis (its symbol from
    :mod:`scalelab.runs.columns`), the value alone for other groups (``crps_fair``)."""
    if not by:
        return "runs"
    from scalelab.runs.columns import AXES

    return symbol_value(by, key) if by in AXES else format_value(key)


def draw_reference(ax, value: float | None, text: str = "bicubic upsampling"):
    """A reference forecast's value (bicubic upsampling of the coarse input) as a labelled
    horizontal line across the axes; nothing when ``value`` is None."""
    if value is None or not np.isfinite(value):
        return None
    return ax.axhline(value, color="C3", ls="-.", lw=1.0, zorder=2,
                      label=f"{text} ({value:.4g})")


def _seed_summary(group: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Mean of ``y`` over seeds at each ``x``, with the seeds' min and max."""
    return group.groupby(x)[y].agg(["mean", "min", "max", "count"]).reset_index()


def plot_scaling(runs: pd.DataFrame, x: str = "params", y: str = "val_loss",
                 by: str | None = "samples", fits: dict | None = None,
                 extrapolate_to: float | None = None, level: float = LEVEL, ax=None,
                 title: str | None = None, reference: float | None = None):
    """Final ``y`` against ``x`` on log–log axes, one colour per ``by`` group.

    ``reference``: a reference forecast's value of ``y`` (bicubic upsampling of the coarse
    input, :mod:`scalelab.runs.baselines`), drawn as a horizontal line.

    Points are the mean over seeds with the seeds' range as error bars. Each group's
    fitted power law is drawn through its points with its ``level`` confidence band,
    then dashed beyond the data up to ``extrapolate_to`` (default 10× the largest
    ``x``) with its ``level`` prediction band; the value there is marked ★.
    """
    table = final_rows(runs)
    require_columns(table, x, y, *([by] if by else []), what="plot_scaling")
    table = table[np.isfinite(table[y].astype(float))]
    if table.empty:
        raise ScalelabError(f"no finished run has a finite {y!r}, so there is nothing to plot.")
    if fits is None:
        fits = fit_power_laws(table, x=x, y=y, by=by)
    fig, ax = _figure(ax)
    groups = list(table.groupby(by)) if by else [(None, table)]
    colours = plt.cm.viridis(np.linspace(0.05, 0.85, max(len(groups), 1)))
    x_max = float(table[x].max())
    x_end = extrapolate_to or 10 * x_max
    for colour, (key, group) in zip(colours, groups):
        name = _group_name(by, key)
        stats = _seed_summary(group, x, y)
        err = [stats["mean"] - stats["min"], stats["max"] - stats["mean"]]
        ax.errorbar(stats[x], stats["mean"], yerr=err if (stats["count"] > 1).any() else None,
                    fmt="o", color=colour, ms=5, capsize=2, zorder=3, label=name)
        fit = fits.get(key)
        if isinstance(fit, Law):
            _draw_law(ax, fit, float(group[x].min()), float(group[x].max()), x_end, colour,
                      level)
    ax.axvline(x_max, color="0.6", lw=0.8, ls=":")
    draw_reference(ax, reference)
    log_axes(ax)
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.set_title(title or f"{label(y)} vs {label(x)}", fontsize=8)
    ax.legend(fontsize=7, frameon=False, title=label(by) if by else None, title_fontsize=7)
    return fig


def _draw_law(ax, fit, lo: float, hi: float, end: float, colour, level: float) -> None:
    grid_in = np.geomspace(lo, hi, 60)
    ax.plot(grid_in, fit.predict(x=grid_in), color=colour, lw=1.5)
    has_boot = getattr(fit, "bootstrap_params_", None) is not None
    if has_boot:
        band = fit.predict_interval(x=grid_in, level=level, kind="mean")
        ax.fill_between(grid_in, band["lower"], band["upper"], color=colour, alpha=0.18, lw=0)
    if end > hi:
        grid_out = np.geomspace(hi, end, 40)
        ax.plot(grid_out, fit.predict(x=grid_out), color=colour, lw=1.5, ls="--")
        if has_boot:
            band = fit.predict_interval(x=grid_out, level=level, kind="observation")
            ax.fill_between(grid_out, band["lower"], band["upper"], color=colour, alpha=0.10,
                            lw=0, hatch="///", edgecolor=colour)
        ax.scatter([end], [fit.predict(x=end)], color=colour, marker="*", s=110, zorder=4,
                   edgecolor="k", linewidth=0.5)


def plot_residuals(fits: dict, by: str = "samples", ax=None, title: str | None = None):
    """Log residuals log(observed) − log(fitted) of each fitted law against its x."""
    fig, ax = _figure(ax)
    laws = [(k, f) for k, f in fits.items() if isinstance(f, Law)]
    if not laws:
        raise ScalelabError("no law was fitted, so there are no residuals to show.")
    colours = plt.cm.viridis(np.linspace(0.05, 0.85, len(laws)))
    for colour, (key, fit) in zip(colours, laws):
        xs = np.asarray(fit.fitted_inputs_["x"])  # the points the law was fitted to
        resid = np.asarray(fit.residuals_)
        ax.scatter(xs, resid, color=colour, s=18, label=_group_name(by, key))
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(tick))
    ax.set_xlabel(label(laws[0][1].column_names_.get("x", "params")))
    ax.set_ylabel("log residual")
    ax.set_title(title or "residuals of the fits (log observed − log fitted)", fontsize=8)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, frameon=False)
    return fig


def plot_training_curves(runs: pd.DataFrame, x: str = "samples_seen", y: str = "val_loss",
                         colour_by: str = "params", ax=None, title: str | None = None):
    """``y`` against ``x`` for each run, coloured by ``colour_by``; diverged runs end in ×."""
    require_columns(runs, "run_id", x, y, what="plot_training_curves")
    fig, ax = _figure(ax)
    table = runs[np.isfinite(pd.to_numeric(runs[y], errors="coerce"))]
    table = table[table[x] > 0]
    if table.empty:
        raise ScalelabError(f"no run has a finite {y!r} after step 0, so there are no curves.")
    values = table[colour_by] if colour_by in table else pd.Series(1.0, index=table.index)
    lo, hi = float(values.min()), float(values.max())
    norm = matplotlib.colors.LogNorm(lo, hi) if lo > 0 and hi > lo else None
    styles = {v: s for v, s in zip(sorted(table["samples"].unique()) if "samples" in table
                                   else [], ["-", "--", ":", "-."] * 10)}
    diverged = False
    for _, curve in table.groupby("run_id"):
        colour = plt.cm.plasma(norm(curve[colour_by].iloc[0]) * 0.9) if norm else "C0"
        style = styles.get(curve["samples"].iloc[0], "-") if "samples" in curve else "-"
        ax.plot(curve[x], curve[y], color=colour, lw=1, ls=style, alpha=0.85)
        if "status" in curve and (curve["status"] == "diverged").any():
            diverged = True
            ax.scatter(curve[x].iloc[-1], curve[y].iloc[-1], marker="x", color="red", s=50,
                       zorder=3)
    if norm:
        bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="plasma"), ax=ax, pad=0.02,
                           fraction=0.05, aspect=30)
        bar.set_label(label(colour_by), fontsize=7)
        bar.ax.tick_params(labelsize=6)
        ticks = sorted(values.unique())
        if len(ticks) <= 8:
            bar.set_ticks(ticks)
            bar.ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        bar.ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(tick))
    if styles:
        handles = [matplotlib.lines.Line2D([], [], color="0.3", ls=s, label=symbol_value("samples", v))
                   for v, s in styles.items()]
        ax.legend(handles=handles, fontsize=7, frameon=False)
    log_axes(ax)
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.set_title(title or ("training curves" + (" (× = diverged)" if diverged else
                                                "; no run diverged")), fontsize=8)
    return fig


def plot_frontier(allocation, compute_targets=(), level: float = LEVEL, ax=None,
                  flops_per_param_sample: float | None = None):
    """Compute-optimal N_opt (and D_opt) against compute, with the fitted power law.

    ``allocation`` is an :class:`~scalelab.laws.Allocation` (approach 1 or 2); the band
    is the ``level`` interval of the fitted line, extended to ``compute_targets``.
    ``flops_per_param_sample`` (k in C = k·N·D) adds D_opt = C/(k·N_opt) on a twin axis.
    """
    fig, ax = _figure(ax)
    frontier = allocation.frontier
    lo = float(frontier["flops"].min())
    hi = max([float(frontier["flops"].max()), *compute_targets])
    grid = np.geomspace(lo, hi, 60)
    pred = allocation.predict(grid, level=level)
    ax.scatter(frontier["flops"], frontier["params"], color="C0", s=22, zorder=3,
               label=f"N_opt, approach {allocation.approach}")
    ax.plot(grid, pred["params"], color="C0", lw=1.5,
            label=f"N_opt ∝ C^{allocation.exponent:.2f}")
    ax.fill_between(grid, pred["lower"], pred["upper"], color="C0", alpha=0.2, lw=0,
                    label=f"{level:.0%} interval")
    if flops_per_param_sample:
        d_opt = grid / (flops_per_param_sample * pred["params"].to_numpy())
        ax.plot(grid, d_opt, color="C3", lw=1.5, ls="-.", label="D_opt = C/(k·N_opt)")
        ax.scatter(frontier["flops"],
                   frontier["flops"] / (flops_per_param_sample * frontier["params"]),
                   color="C3", s=14, marker="s", zorder=3)
    for c in compute_targets:
        ax.axvline(c, color="0.5", ls=":", lw=0.8)
    log_axes(ax)
    ax.set_xlabel(label("flops"))
    ax.set_ylabel(f"{axis_symbol('params')}_opt (parameters), {axis_symbol('samples_seen')}_opt "
                  f"(samples seen)")
    ax.set_title("compute-optimal frontier", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return fig


def plot_isoflop(runs: pd.DataFrame | None = None, y: str = "val_loss", n_budgets: int = 5,
                 ax=None, profiles: pd.DataFrame | None = None):
    """IsoFLOP profiles: loss against N at fixed compute, read off the training curves.

    ``profiles`` is :func:`scalelab.laws.isoflop_profiles`'s table; without it, it is
    computed from ``runs``: each run's curve interpolated (linearly in log FLOPs) at
    ``n_budgets`` budgets spaced log-evenly between the median of the runs' first and
    last FLOPs. The best size at each budget is marked ★.
    """
    if profiles is None:
        if runs is None:
            raise ScalelabError("plot_isoflop needs the runs table or its isoflop_profiles.")
        profiles = isoflop_profiles(runs, y=y, n_budgets=n_budgets)
    fig, ax = _figure(ax)
    budgets = profiles["flops"].unique()
    colours = plt.cm.cividis(np.linspace(0.05, 0.9, max(len(budgets), 1)))
    for colour, (budget, frame) in zip(colours, profiles.groupby("flops")):
        ax.plot(frame["params"], frame["loss"], "o-", color=colour, ms=4, lw=1.2,
                label=f"C = {budget:.2g} FLOP")
        best = frame[frame["best"]]
        ax.scatter(best["params"], best["loss"], marker="*", color=colour, s=90,
                   edgecolor="k", linewidth=0.5, zorder=4)
    log_axes(ax)
    ax.set_xlabel(label("params"))
    ax.set_ylabel(label(y))
    ax.set_title("IsoFLOP profiles from training curves (best of each marked ★; for all data "
                 "sizes)", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return fig


def plot_metric_scaling(runs: pd.DataFrame, metric: str, x: str = "params",
                        by: str | None = "samples", target: float | None = None,
                        ideal: float | None = None, ax=None,
                        n_bootstrap: int = METRIC_BOOTSTRAP):
    """A calibration (or any) metric against size with per-group power-law fits.

    For metrics whose ideal value is not 0 (the spread-skill ratio's is 1) the law is
    fitted to the distance from ``ideal``, |metric − ideal|, so that E ≥ 0 is the floor
    of a miscalibration (:func:`scalelab.report.analysis.metric_scaling`).
    """
    scaling = metric_scaling(runs, metric, x=x, by=by, ideal=ideal, n_bootstrap=n_bootstrap)
    return plot_metric_law(scaling, target=target, ax=ax)


def plot_metric_law(scaling: MetricScaling, target: float | None = None, ax=None,
                    reference: float | None = None):
    """Draw a :class:`~scalelab.report.analysis.MetricScaling`: points and fitted laws
    (and ``reference``, bicubic upsampling's value, as a horizontal line)."""
    shown = scaling.column
    table = scaling.table
    if scaling.ideal is not None:  # the axis names the metric in words
        shown = f"|{label(scaling.metric)} − {scaling.ideal:g}|"
        table = table.rename(columns={scaling.column: shown})
    return plot_scaling(table, x=scaling.x, y=shown, by=scaling.by, fits=scaling.fits,
                        extrapolate_to=target, ax=ax, reference=reference,
                        title=f"{label(scaling.metric)}"
                        + (f": distance from {scaling.ideal:g}"
                           if scaling.ideal is not None else "")
                        + " vs N, a law per group")


def _figure(ax):
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 5))
        return fig, ax
    return ax.figure, ax
