"""What the adversarial term buys, and whether it buys more as the network grows.

Drawn only when the runs table sweeps ``adversarial_weight`` with runs at 0 beside it
(otherwise the page is not emitted). Each adversarial run is paired with the run that
differs from it only in its adversarial weight (same family, width, depth, data, length,
seed and content loss), and the gain of the term is, per metric:

- ``val_mse``, ``val_spectrum_error`` (the spectrum's distance: the perceptual sharpness
  SRGAN trades pixel error for) and ``val_crps``: the relative gain
  (L_0 − L_w) / L_0 — positive where the adversarial run is better;
- ``val_spread_skill``: the calibration gain |1 − SSR_0| − |1 − SSR_w| (an ensemble's
  spread-skill ratio SSR is 1 when calibrated; Fortin et al. 2014).

The scaling question — does the gain grow or shrink with N? — is answered per metric by
the ordinary least-squares slope of the gain against log₁₀ N (per decade of N) with its
90% t interval: "grows" or "shrinks" when the interval excludes 0, else "no clear trend".
:func:`adversarial_gains` and :func:`gain_trends` compute; :func:`page_adversarial` draws.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scalelab.report.analysis import Analysis
from scalelab.report.context import ReportContext
from scalelab.report.labels import label

#: the metrics whose gain is drawn, and how: "relative" (L_0 − L_w)/L_0, or "calibration"
#: |1 − v_0| − |1 − v_w| (a ratio whose calibrated value is 1)
GAIN_METRICS = {"val_crps": "relative", "val_spectrum_error": "relative",
                "val_mse": "relative", "val_spread_skill": "calibration"}
#: the config columns two paired runs share (all but the adversarial weight)
PAIR_KEYS = ("family", "width", "depth", "scale", "field", "field_size", "degradation",
             "samples", "samples_seen", "seed", "ensemble_members", "lr", "steps")
LEVEL = 0.9


def _content(final: pd.DataFrame) -> pd.Series:
    """Each row's content loss: its variant without the adversarial term the report's context
    appended to it (``mse + 0.01*adversarial`` → ``mse``; see
    :func:`scalelab.runs.table.objective_variants`)."""
    weight = pd.to_numeric(final["adversarial_weight"], errors="coerce").fillna(0.0)
    names = final["loss_variant"].astype(str) if "loss_variant" in final.columns \
        else pd.Series("", index=final.index)
    return pd.Series([n.rsplit(" + ", 1)[0] if w > 0 else n for n, w in zip(names, weight)],
                     index=final.index)


def adversarial_gains(final: pd.DataFrame) -> pd.DataFrame:
    """One row per adversarial run × metric: its ``content`` loss, ``variant`` (its whole
    objective), ``adversarial_weight``, ``params`` N, the ``metric``, the paired run's value
    ``baseline``, its own ``value`` and the ``gain`` (see the module's docstring). Empty
    when the table has no pair."""
    columns = ["content", "variant", "adversarial_weight", "params", "metric", "baseline",
               "value", "gain"]
    if "adversarial_weight" not in final.columns or "params" not in final.columns:
        return pd.DataFrame(columns=columns)
    table = final.assign(content=_content(final),
                         adversarial_weight=pd.to_numeric(final["adversarial_weight"],
                                                          errors="coerce").fillna(0.0))
    keys = [k for k in PAIR_KEYS if k in table.columns] + ["content"]
    metrics = [m for m in GAIN_METRICS if m in table.columns]
    base = table[table["adversarial_weight"] == 0][keys + metrics]
    adversarial = table[table["adversarial_weight"] > 0]
    paired = adversarial.merge(base, on=keys, suffixes=("", "_baseline"))
    rows = []
    for metric in metrics:
        value = pd.to_numeric(paired[metric], errors="coerce")
        baseline = pd.to_numeric(paired[metric + "_baseline"], errors="coerce")
        if GAIN_METRICS[metric] == "relative":
            gain = (baseline - value) / baseline
        else:
            gain = (baseline - 1).abs() - (value - 1).abs()
        rows.append(pd.DataFrame({
            "content": paired["content"], "variant": paired.get("loss_variant", paired["content"]),
            "adversarial_weight": paired["adversarial_weight"], "params": paired["params"],
            "metric": metric, "baseline": baseline, "value": value, "gain": gain}))
    gains = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    return gains[np.isfinite(gains["gain"].astype(float))].reset_index(drop=True)


def gain_trends(gains: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Per variant × metric: the gain's OLS ``slope`` per decade of N with its ``lower``/
    ``upper`` t interval at ``level``, the ``gain`` at the smallest and largest N (means over
    seeds), the number of runs ``n`` and the ``trend``: grows, shrinks or no clear trend
    (NaN slope with fewer than 3 sizes)."""
    from scipy import stats

    out = []
    for (variant, metric), group in gains.groupby(["variant", "metric"], sort=False):
        by_size = group.groupby("params")["gain"].mean()
        x, y = np.log10(group["params"].astype(float)), group["gain"].astype(float)
        slope = lower = upper = np.nan
        trend = "too few sizes"
        if by_size.size >= 3:
            fit = stats.linregress(x, y)
            half = stats.t.ppf(0.5 + level / 2, len(x) - 2) * fit.stderr
            slope, lower, upper = fit.slope, fit.slope - half, fit.slope + half
            trend = "grows" if lower > 0 else "shrinks" if upper < 0 else "no clear trend"
        out.append({"variant": variant, "metric": metric, "slope": slope, "lower": lower,
                    "upper": upper, "smallest": by_size.index.min(),
                    "largest": by_size.index.max(), "gain_smallest": by_size.iloc[0],
                    "gain_largest": by_size.iloc[-1], "n": len(group), "trend": trend})
    return pd.DataFrame(out)


def trend_sentence(row) -> str:
    """One sentence answering "does the gain grow or shrink with N?" for one row of
    :func:`gain_trends`."""
    kind = GAIN_METRICS[row["metric"]]
    unit = (lambda v: f"{100 * v:+.1f}%") if kind == "relative" else (lambda v: f"{v:+.3f}")
    head = (f"{row['variant']}, {label(row['metric'])}: gain {unit(row['gain_smallest'])} at "
            f"N = {row['smallest']:.3g}, {unit(row['gain_largest'])} at N = {row['largest']:.3g}")
    if not np.isfinite(row["slope"]):
        return head + " (fewer than 3 sizes: no trend fitted)."
    per = (f"{100 * row['slope']:+.1f} points" if kind == "relative" else f"{row['slope']:+.3f}")
    interval = (f"[{100 * row['lower']:+.1f}, {100 * row['upper']:+.1f}]" if kind == "relative"
                else f"[{row['lower']:+.3f}, {row['upper']:+.3f}]")
    verdict = {"grows": "the gain grows with N", "shrinks": "the gain shrinks with N",
               "no clear trend": "no clear trend with N"}[row["trend"]]
    return f"{head}: {verdict} ({per} per decade, {LEVEL:.0%} interval {interval})."


def page_adversarial(ctx: ReportContext, analysis: Analysis):
    """The adversarial term's gain against N, per metric, with the trend's sentence; no page
    where the table does not sweep ``adversarial_weight`` against 0."""
    from scalelab.report import layout
    from scalelab.report.layout import message, text_block

    final = ctx.final
    if "adversarial_weight" not in final.columns:
        return []
    weights = pd.to_numeric(final["adversarial_weight"], errors="coerce").fillna(0.0)
    if not ((weights == 0).any() and (weights > 0).any()):
        return []
    gains = adversarial_gains(final)
    fig = layout.new_page("The adversarial term's gain against model size",
                          f"{ctx.title} · {ctx.n_runs} runs")
    if gains.empty:
        message(fig, "No adversarial run has a run at adversarial_weight 0 that differs from "
                     "it in nothing else, so no gain can be measured; sweep the weight over "
                     "0 and w with everything else equal.")
        return [("adversarial", fig)]
    metrics = [m for m in GAIN_METRICS if m in set(gains["metric"])]
    axes = fig.subplots(2, 2, squeeze=False, gridspec_kw={
        "hspace": 0.45, "wspace": 0.3, "top": 0.88, "bottom": 0.42, "left": 0.08,
        "right": 0.97}).ravel()
    for ax, metric in zip(axes, metrics):
        part = gains[gains["metric"] == metric]
        for i, (variant, group) in enumerate(part.groupby("variant", sort=True)):
            ax.plot(group["params"], group["gain"], "o", ms=3, color=f"C{i}", label=variant)
            mean = group.groupby("params")["gain"].mean()
            ax.plot(mean.index, mean.values, "-", lw=1, color=f"C{i}")
        ax.axhline(0.0, color="k", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel(label("params"))
        ax.set_ylabel("relative gain" if GAIN_METRICS[metric] == "relative"
                      else "|1 − SSR| gain")
        ax.set_title(label(metric), fontsize=8)
        ax.legend(fontsize=5.5, frameon=False)
    for ax in axes[len(metrics):]:
        ax.axis("off")
    trends = gain_trends(gains)
    lines = ["## Does the gain grow or shrink with N?",
             *(trend_sentence(row) for _, row in trends.iterrows()),
             "## Method",
             "Each adversarial run is paired with the run differing only in adversarial_weight "
             "(= 0). Gain: (L_0 − L_w)/L_0, positive where the adversarial run is better; "
             "for the spread-skill ratio |1 − SSR_0| − |1 − SSR_w|. Trend: least-squares "
             "slope of the gain against log10 N, per decade, with its 90% t interval. The "
             "discriminator is a training-time cost: N is the generator's."]
    text_block(fig, 0.07, 0.36, lines, size=7.5, width=0.88)
    return [("adversarial", fig)]
