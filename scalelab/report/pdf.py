"""The PDF report: a runs table (and fits) in, a multi-page PDF out.

Page 1: loss against parameters for each data size, with the fitted power laws
extrapolated to 10× the largest model, and a table of the fitted parameters.
Page 2: training curves. A page that cannot be drawn (e.g. too few sizes to fit)
says why in one sentence instead.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.backends.backend_pdf import PdfPages
import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.laws import PowerLaw
from scalelab.report.figures import _fmt, fit_power_laws, plot_scaling, plot_training_curves
from scalelab.table import final_rows

A4_LANDSCAPE = (11.69, 8.27)


def write_report(runs: pd.DataFrame, path: str | Path, title: str = "scalelab report",
                 x: str = "params", y: str = "val_loss", by: str = "samples",
                 extrapolate: float = 10.0) -> Path:
    """Write the report for ``runs`` to ``path`` (PDF); figures also saved as PNG beside it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if runs is None or len(runs) == 0:
        raise ScalelabError("the runs table is empty, so there is nothing to report; run a "
                            "sweep first or check the store path.")
    fits = fit_power_laws(runs, x=x, y=y, by=by) if {x, y, by} <= set(runs.columns) else {}
    with PdfPages(path) as pdf:
        fig = plt.figure(figsize=A4_LANDSCAPE)
        grid = fig.add_gridspec(2, 1, height_ratios=[3.2, 1], hspace=0.25)
        ax = fig.add_subplot(grid[0])
        fig.suptitle(title, fontsize=14, weight="bold")
        try:
            plot_scaling(runs, x=x, y=y, by=by, fits=fits, extrapolate=extrapolate, ax=ax)
        except ScalelabError as err:
            _message(ax, str(err))
        _fit_table(fig.add_subplot(grid[1]), fits, by, x, runs, extrapolate)
        _footer(fig, runs)
        pdf.savefig(fig)
        fig.savefig(path.with_name(path.stem + "_scaling.png"), dpi=110)
        plt.close(fig)

        fig, ax = plt.subplots(figsize=A4_LANDSCAPE)
        try:
            plot_training_curves(runs, y=y, ax=ax)
        except ScalelabError as err:
            _message(ax, str(err))
        _footer(fig, runs)
        pdf.savefig(fig)
        fig.savefig(path.with_name(path.stem + "_curves.png"), dpi=110)
        plt.close(fig)
        info = pdf.infodict()
        info["Title"] = title
        info["Creator"] = "scalelab"
    return path


def _fit_table(ax, fits: dict, by: str, x: str, runs: pd.DataFrame, extrapolate: float) -> None:
    ax.axis("off")
    if not fits:
        _message(ax, "no power law was fitted (the table lacks the columns to fit).")
        return
    xmax = final_rows(runs)[x].max()
    header = [by.replace("_", " "), "E (floor)", "A", "alpha", "RMS log-resid.", "points",
              f"predicted at {extrapolate:g}× largest ({_fmt(xmax * extrapolate)})"]
    rows = []
    for key, fit in fits.items():
        if isinstance(fit, PowerLaw):
            p = fit.params_
            rows.append([_fmt(key), f"{p['E']:.4g}", f"{p['A']:.4g}", f"{p['alpha']:.3f}",
                         f"{fit.rmse_log_:.3g}", str(fit.n_points_),
                         f"{float(fit.predict(xmax * extrapolate)):.4g}"])
        else:
            rows.append([_fmt(key), "—", "—", "—", "—", "—", f"not fitted: {fit}"[:60]])
    table = ax.table(cellText=rows, colLabels=header, loc="upper center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.4)


def _message(ax, text: str) -> None:
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=11)


def _footer(fig, runs: pd.DataFrame) -> None:
    n_runs = runs["run_id"].nunique() if "run_id" in runs else len(runs)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    fig.text(0.01, 0.01, f"scalelab · {n_runs} runs · {stamp}", fontsize=7, color="0.4")
