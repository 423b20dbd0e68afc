"""Figures of the report, each a public function that a notebook can call alone.

Every function takes the runs table (and optionally fitted laws), draws on a given
matplotlib ``ax`` (or a new figure) and returns the figure. Log axes, units and
legends are set here once so the PDF and notebooks agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import matplotlib
import matplotlib.pyplot as plt

from scalelab._errors import ScalelabError
from scalelab.laws import PowerLaw
from scalelab.table import final_rows, require_columns

LABELS = {
    "params": "parameters N",
    "samples": "training samples D",
    "flops": "training compute C (FLOP)",
    "val_loss": "validation loss",
    "val_mse": "validation MSE (field units²)",
    "samples_seen": "samples seen",
}


def _label(column: str) -> str:
    return LABELS.get(column, column)


def fit_power_laws(runs: pd.DataFrame, x: str = "params", y: str = "val_loss",
                   by: str | None = "samples", huber_delta: float = 1e-3) -> dict:
    """Fit a PowerLaw of ``y`` against ``x`` on each run's final row, one per ``by`` group.

    Returns ``{group value: fitted PowerLaw or the error sentence (str)}``.
    """
    table = final_rows(runs)
    require_columns(table, x, y, *([by] if by else []), what="fit_power_laws")
    groups = table.groupby(by) if by else [(None, table)]
    fits = {}
    for key, group in groups:
        group = group.dropna(subset=[x, y])
        try:
            fits[key] = PowerLaw(huber_delta=huber_delta).fit(group, x=x, y=y)
        except ScalelabError as err:
            fits[key] = str(err)
    return fits


def plot_scaling(runs: pd.DataFrame, x: str = "params", y: str = "val_loss",
                 by: str | None = "samples", fits: dict | None = None,
                 extrapolate: float = 10.0, ax=None):
    """Final ``y`` against ``x`` (log–log), one colour per ``by`` group, each with its
    fitted power law drawn through the points and extrapolated to ``extrapolate`` × the
    largest ``x`` (dashed beyond the data)."""
    table = final_rows(runs)
    require_columns(table, x, y, *([by] if by else []), what="plot_scaling")
    if fits is None:
        fits = fit_power_laws(runs, x=x, y=y, by=by)
    fig, ax = _figure(ax)
    groups = list(table.groupby(by)) if by else [(None, table)]
    colours = plt.cm.viridis(np.linspace(0.1, 0.85, max(len(groups), 1)))
    for colour, (key, group) in zip(colours, groups):
        name = f"{by.replace('_', ' ')} = {_fmt(key)}" if by else "runs"
        ax.scatter(group[x], group[y], color=colour, s=28, zorder=3, label=name)
        fit = fits.get(key)
        if isinstance(fit, PowerLaw):
            lo, hi = group[x].min(), group[x].max()
            grid_in = np.geomspace(lo, hi, 100)
            grid_out = np.geomspace(hi, hi * extrapolate, 50)
            ax.plot(grid_in, fit.predict(grid_in), color=colour, lw=1.6)
            ax.plot(grid_out, fit.predict(grid_out), color=colour, lw=1.6, ls="--")
            ax.scatter([hi * extrapolate], fit.predict(hi * extrapolate), color=colour,
                       marker="*", s=90, zorder=4, edgecolor="k", linewidth=0.5)
    ax.axvline(table[x].max(), color="0.6", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    ax.set_title(f"{_label(y)} vs {_label(x)}: fit L = E + A·N^(−α), dashed = extrapolation "
                 f"to {extrapolate:g}× (★)", fontsize=9)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=8, frameon=False)
    return fig


def plot_training_curves(runs: pd.DataFrame, x: str = "samples_seen", y: str = "val_loss",
                         colour_by: str = "params", ax=None):
    """``y`` against ``x`` for each run, coloured by ``colour_by``; diverged runs marked ×."""
    require_columns(runs, "run_id", x, y, what="plot_training_curves")
    fig, ax = _figure(ax)
    table = runs.dropna(subset=[x, y])
    table = table[table[x] > 0]
    values = table[colour_by] if colour_by in table else pd.Series(0, index=table.index)
    norm = matplotlib.colors.LogNorm(values.min(), values.max()) if values.min() > 0 and \
        values.max() > values.min() else None
    for run_id, curve in table.groupby("run_id"):
        c = plt.cm.plasma(norm(curve[colour_by].iloc[0])) if norm else "C0"
        ax.plot(curve[x], curve[y], color=c, lw=1, alpha=0.8)
        if "status" in curve and (curve["status"] == "diverged").any():
            ax.scatter(curve[x].iloc[-1], curve[y].iloc[-1], marker="x", color="red", zorder=3)
    if norm:
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="plasma"), ax=ax,
                     label=_label(colour_by))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    ax.set_title("training curves (× = diverged)", fontsize=9)
    ax.grid(True, which="both", alpha=0.25)
    return fig


def _figure(ax):
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 5))
        return fig, ax
    return ax.figure, ax


def _fmt(value) -> str:
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer()):
        return f"{int(value):,}"
    return f"{value:.3g}" if isinstance(value, float) else str(value)
