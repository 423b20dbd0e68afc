"""The figure of a prediction: the runs, the law ``predict`` used, and the target.

One law on the page and in the headline: the curve drawn is the law (or blend) that
:func:`scalelab.laws.predict` chose for the target, along the axis it extrapolated at
the target's other sizes, with its bootstrap band; the ★ sits at the target with the
prediction's interval (the bootstrap widened by the law's backtest errors); persistence
is the dotted line. Only draws: every number comes from the ``Prediction``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.runs.columns import axis_label


def plot_prediction(runs: pd.DataFrame, prediction, ax=None, title: str | None = None,
                    colour="C0"):
    """Runs at the target's other sizes, the law used up to the target, and the ★."""
    import matplotlib.pyplot as plt

    from scalelab.laws.regime import result_rows

    p = prediction
    if p.axis not in runs.columns:
        raise ScalelabError(f"plot_prediction: the runs have no {p.axis!r} column to draw "
                            f"the prediction along.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.6))
    from scalelab.laws._problem import nearest_runs

    rows = result_rows(runs, p.y, p.result)
    others = [c for c in p.at if c in rows.columns]
    if others:  # at each size, the runs nearest the target in the other sizes
        rows = pd.concat([nearest_runs(part, p.point, others)
                          for _, part in rows.groupby(p.axis)])
    stats = rows.groupby(p.axis)[p.y].agg(["mean", "min", "max"]).reset_index()
    ax.errorbar(stats[p.axis], stats["mean"], yerr=[stats["mean"] - stats["min"],
                                                     stats["max"] - stats["mean"]],
                fmt="o", ms=4, color=colour, capsize=2, label="runs", zorder=3)
    target = float(p.point.get(p.axis, p.target.get("compute", np.nan)))
    lo = float(stats[p.axis].min()) if len(stats) else target / 10
    grid = np.geomspace(lo, max(target, lo * 1.01), 80)
    curve = p.curve(grid)
    if len(curve):
        ax.plot(curve[p.axis], curve["prediction"], color=colour, lw=1.5,
                label=f"{p.law}")
        if np.isfinite(curve["lower"]).all():
            ax.fill_between(curve[p.axis], curve["lower"], curve["upper"], color=colour,
                            alpha=0.15, lw=0)
    persistence = float(p.baselines.set_index("law").loc["persistence", "prediction"])
    ax.axhline(persistence, color="0.5", ls=":", lw=1, label="persistence")
    ax.errorbar([target], [p.prediction], yerr=[[p.prediction - p.lower],
                                                [p.upper - p.prediction]],
                fmt="*", ms=12, color=colour, mec="k", mew=0.5, capsize=3, zorder=4,
                label=f"target ({p.level:.0%} interval)")
    from scalelab.report.figures import label
    from scalelab.report.layout import log_axes

    ax.set_xscale("log")
    ax.set_yscale("log")
    log_axes(ax)  # short tick labels, as on the report's other panels
    ax.set_xlabel(axis_label(p.axis))
    ax.set_ylabel(label(p.y))
    near = "" if not others else "\n(runs nearest the target's " + \
        ", ".join(others) + ")"
    ax.set_title(title or f"{p.y} at {p.target_text}: {p.law}{near}", fontsize=8)
    ax.legend(fontsize=6, frameon=False)
    return ax.figure
