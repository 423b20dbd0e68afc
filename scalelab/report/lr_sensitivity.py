"""The report's learning-rate sensitivity page: final loss against the learning rate at each
size, the optimal rate's law in N and the LR sensitivity in N (Wortsman et al. 2023).

Emitted only where the runs of one size N vary in ``lr`` (a sweep over learning rates);
any other report has no such page. The runs are split by every setting that also varies
between the runs of one size (``parametrization``, ``warmup_steps``, ``weight_decay``,
``options`` such as swinir's ``qk_norm``, the loss variant, ...): one row of panels per
setting, and the exponents side by side, so standard and μP (or with and without a
mitigation) compare on one page. Diverged runs are drawn (×, at their initial loss, which
is what they count as), never dropped.

:func:`analyse_lr` computes (no drawing; :class:`scalelab.laws.lr_sensitivity.LRSensitivity`
per setting), :func:`page_lr_sensitivity` draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalelab.laws.lr_sensitivity import SETTING_COLUMNS, LRSensitivity, _cell_text
from scalelab.report import layout
from scalelab.report.analysis import LEVEL, N_BOOTSTRAP, attempt, failed
from scalelab.report.context import ReportContext
from scalelab.report.labels import label
from scalelab.runs.columns import axis_symbol
from scalelab.runs.table import run_roles

#: settings a page draws per row (more go onto further pages)
ROWS_PER_PAGE = 2


@dataclass
class LRAnalysis:
    """What the page draws: one fitted :class:`LRSensitivity` (or the reason it could not be
    fitted) per setting, the settings' columns and the N its laws are extrapolated to."""

    by: list
    fits: dict = field(default_factory=dict)  # setting label -> LRSensitivity | FitFailure
    mixed: list = field(default_factory=list)  # settings that vary but form no grid
    runs: dict = field(default_factory=dict)  # setting label -> the runs fitted
    target: float | None = None


def _per_run(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs[run_roles(runs) != "trunk"]
    return runs.drop_duplicates("run_id") if "run_id" in runs.columns else runs


def lr_swept(runs: pd.DataFrame) -> bool:
    """Whether the runs of some size N differ in their learning rate."""
    if not {"params", "lr"} <= set(runs.columns) or runs.empty:
        return False
    per_run = _per_run(runs)
    return bool((per_run.groupby("params")["lr"].nunique() > 1).any())


def varying_settings(runs: pd.DataFrame) -> list[str]:
    """The settings (other than the rate and the seed) that differ between runs of one N."""
    per_run = _per_run(runs)
    out = []
    for column in SETTING_COLUMNS:
        if column in per_run.columns and column != "width":
            text = per_run[column].map(_cell_text)
            if (text.groupby(per_run["params"]).nunique() > 1).any():
                out.append(column)
    return out


#: the most settings (rows of panels) a report draws; a setting with more values is mixed
MAX_SETTINGS = 6


def _is_grid_axis(runs: pd.DataFrame, column: str) -> bool:
    """Whether each value of ``column`` has its own sweep over the rate: 3+ rates at 2+ sizes
    (a grid such as standard vs μP), not values drawn at random with the rate."""
    per_run = _per_run(runs)
    values = per_run[column].map(_cell_text)
    if values.nunique() > MAX_SETTINGS:
        return False
    rates = per_run.groupby([values, per_run["params"]])["lr"].nunique()
    return bool(((rates >= 3).groupby(level=0).sum() >= 2).all())


def _setting_label(by: list, values) -> str:
    values = values if isinstance(values, tuple) else (values,)
    return ", ".join(f"{c} {v}" for c, v in zip(by, values)) or "all runs"


def analyse_lr(ctx: ReportContext, n_bootstrap: int = N_BOOTSTRAP) -> LRAnalysis | None:
    """Each setting's LR sensitivity fit (None when no size varies in ``lr``)."""
    if not lr_swept(ctx.runs):
        return None
    runs = ctx.runs[run_roles(ctx.runs) != "trunk"]
    varying = varying_settings(runs)
    by = [c for c in varying if _is_grid_axis(runs, c)]
    mixed = [c for c in varying if c not in by]
    if by and runs.groupby([runs[c].map(_cell_text) for c in by]).ngroups > MAX_SETTINGS:
        by, mixed = [], varying
    out = LRAnalysis(by=by, mixed=mixed)
    groups = [((), runs)] if not by else runs.groupby(
        [runs[c].map(_cell_text).rename(c) for c in by], sort=True)
    for values, group in groups:
        name = _setting_label(by, values)
        out.runs[name] = group
        out.fits[name] = attempt(LRSensitivity(n_bootstrap=n_bootstrap, level=LEVEL).fit,
                                 group, y=ctx.y, ignore=mixed)
    targets = [t["params"] for t in ctx.targets if "params" in t]
    sizes = pd.to_numeric(runs["params"], errors="coerce")
    out.target = float(max(targets)) if targets else float(sizes.max()) * 10
    return out


# -- drawing ------------------------------------------------------------------------------
def plot_loss_vs_lr(fit: LRSensitivity, ax, title: str | None = None) -> None:
    """Final loss (capped at the initial loss) against the learning rate, one curve per N;
    diverged runs as ×, each size's optimum as ★ with its interval."""
    import matplotlib.pyplot as plt

    sizes = fit.optima_["size"].to_numpy()
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(sizes)))
    for colour, (_, opt) in zip(colours, fit.optima_.iterrows()):
        pts = fit.points_[fit.points_["size"] == opt["size"]].sort_values("lr")
        ax.plot(pts["lr"], pts["capped"], "-o", ms=3, lw=1, color=colour,
                label=f"{axis_symbol(fit.columns_['size'])} = {opt['size']:,.0f}")
        bad = pts[pts["diverged"] > 0]
        ax.plot(bad["lr"], bad["capped"], "x", ms=8, mew=2, color="C3")
        worse = pts[(pts["above_initial"] > 0) & (pts["diverged"] == 0)]
        ax.plot(worse["lr"], worse["capped"], "s", ms=7, mfc="none", mew=1.2, color="C3")
        ax.axhline(opt["initial"], color=colour, ls=":", lw=0.6)
        marker = "*" if opt["bracketed"] else "^"
        ax.plot([opt["lr_opt"]], [opt["loss_opt"]], marker, ms=10, color=colour, mec="k",
                mew=0.5)
        if np.isfinite(opt["lr_lower"]):
            ax.plot([opt["lr_lower"], opt["lr_upper"]], [opt["loss_opt"]] * 2, "-",
                    color=colour, lw=2.5, alpha=0.7)
    ax.plot([], [], "x", color="C3", mew=2, label="diverged (at ℓ₀)")
    if fit.points_["above_initial"].any():
        ax.plot([], [], "s", color="C3", mfc="none", label="ended above ℓ₀ (at ℓ₀)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate η (peak)")
    ax.set_ylabel(f"min({label(fit.columns_['y'])}, ℓ₀)")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=6, frameon=False, loc="upper left")
    if title:
        ax.set_title(title, fontsize=8)


def _law_band(fit: LRSensitivity, target: float | None, column: str, colour: str,
              law_label: str, band_label: str, ax) -> None:
    """``fit.predict``'s ``column`` as a line from the smallest size to the largest or the
    target, with its ``column_lower``–``column_upper`` band where the fit has one."""
    o = fit.optima_
    grid = np.geomspace(float(o["size"].min()), max(float(o["size"].max()), target or 0), 100)
    band = fit.predict(params=grid)
    ax.plot(grid, band[column], "-", color=colour, lw=1.2, label=law_label)
    lower, upper = ("lr_lower", "lr_upper") if column == "lr_opt" else \
        (f"{column}_lower", f"{column}_upper")
    if band[lower].notna().all():
        ax.fill_between(grid, band[lower], band[upper], color=colour, alpha=0.15, lw=0,
                        label=band_label)


def plot_optimum_law(fit: LRSensitivity, target: float | None, ax,
                     title: str | None = None) -> None:
    """η* against N with each size's interval, the law a·N^(−b) and its band to ``target``."""
    o = fit.optima_
    used, other = o[o["bracketed"]], o[~o["bracketed"]]
    yerr = np.array([used["lr_opt"] - used["lr_lower"], used["lr_upper"] - used["lr_opt"]])
    ax.errorbar(used["size"], used["lr_opt"], yerr=np.nan_to_num(yerr), fmt="o", ms=4,
                color="C0", capsize=2, label="η* (parabola's vertex)")
    if len(other):
        ax.plot(other["size"], other["lr_opt"], "^", color="0.5", ms=5,
                label="best rate tried (not bracketed)")
    if np.isfinite(fit.params_["b"]):
        _law_band(fit, target, "lr_opt", "C0", "a·N^(−b)", f"{LEVEL:.0%} interval", ax)
        if target:
            at = fit.predict(params=target).iloc[0]
            ax.plot([target], [at["lr_opt"]], "*", ms=11, color="C1", mec="k", mew=0.5,
                    label=f"{axis_symbol('params')} = {target:.3g}")
    layout.log_axes(ax)
    ax.set_xlabel(f"{axis_symbol(fit.columns_['size'])}")
    ax.set_ylabel("optimal learning rate η*")
    ax.legend(fontsize=6, frameon=False)
    if title:
        ax.set_title(title, fontsize=8)


def plot_sensitivity(fit: LRSensitivity, target: float | None, ax,
                     title: str | None = None) -> None:
    """The LR sensitivity against N with its line in log N and prediction band."""
    o = fit.optima_
    ax.plot(o["size"], o["sensitivity"], "o", color="C2", ms=4, label="LR sensitivity")
    if np.isfinite(fit.params_["sensitivity_slope"]):
        _law_band(fit, target, "sensitivity", "C2", "S₀ + s·log₁₀ N", f"{LEVEL:.0%} PI", ax)
    ax.set_xscale("log")
    ax.grid(True, which="both", alpha=0.25)
    ax.set_xlabel(f"{axis_symbol(fit.columns_['size'])}")
    ax.set_ylabel("E_η[min(ℓ(η), ℓ₀)] − ℓ(η*)")
    ax.legend(fontsize=6, frameon=False)
    if title:
        ax.set_title(title, fontsize=8)


def _short(name: str) -> str:
    """A setting's label without its column names ("parametrization mup" → "mup")."""
    return ", ".join(part.split(" ", 1)[-1] for part in name.split(", "))


def _sentences(name: str, fit, target) -> list[str]:
    if failed(fit):
        return [f"{name}: not fitted — {fit.reason}"]
    lines = [f"{name}: {fit.exponent_sentence()} {fit.sensitivity_sentence()}"]
    extra = []
    if target and np.isfinite(fit.params_["b"]):
        at = fit.predict(params=target).iloc[0]
        extra.append(f"at {axis_symbol('params')} = {target:.3g}, η* ≈ {at['lr_opt']:.3g} "
                     f"({LEVEL:.0%} interval {at['lr_lower']:.3g} – {at['lr_upper']:.3g}).")
    diverged, worse = fit.runs_["diverged"], fit.runs_["above_initial"]
    if diverged.any() or worse.any():
        extra.append(f"Of {len(diverged)} runs, {int(diverged.sum())} diverged (×) and "
                     f"{int(worse.sum())} ended above their initial loss (□); each counts as "
                     f"its initial loss ℓ₀.")
    extra += list(fit.left_out_)
    if extra:
        lines.append(f"{name}: " + " ".join(extra))
    return lines


def page_lr_sensitivity(ctx: ReportContext, analysis=None, lr_analysis: LRAnalysis | None = None):
    """Loss against learning rate per N, the optimum's law and the sensitivity in N, per
    setting; no page at all where no size varies in ``lr``."""
    from scalelab.report.pages import new_page, panel

    found = analyse_lr(ctx) if lr_analysis is None else lr_analysis
    if found is None:
        return []
    names = list(found.fits)
    pages = []
    for start in range(0, len(names), ROWS_PER_PAGE):
        chunk = names[start:start + ROWS_PER_PAGE]
        fig = new_page("Learning-rate sensitivity across scale (Wortsman et al. 2023)", ctx)
        axes = fig.subplots(len(chunk), 3, squeeze=False,
                            gridspec_kw={"hspace": 0.55, "wspace": 0.32, "top": 0.87,
                                         "bottom": 0.45 if len(chunk) == 1 else 0.36,
                                         "left": 0.08, "right": 0.98})
        lines = []
        for row, name in zip(axes, chunk):
            fit = found.fits[name]
            tag = f"[{_short(name)}] " if found.by else ""
            if failed(fit):
                for ax in row:
                    ax.axis("off")
                layout.message(row[1], layout.wrap(f"{tag}{fit.reason}", 60))
            else:
                panel(row[0], plot_loss_vs_lr, fit,
                      title=f"{tag}final {label(ctx.y)} vs η\n★ η* with {LEVEL:.0%} interval")
                panel(row[1], plot_optimum_law, fit, found.target,
                      title=f"{tag}optimal rate η* = a·N^(−b)\nb = {fit.params_['b']:.3f}")
                panel(row[2], plot_sensitivity, fit, found.target,
                      title=f"{tag}LR sensitivity over η ∈ [{fit.lr_range_[0]:.2g}, "
                            f"{fit.lr_range_[1]:.2g}]\nvs N")
            lines += _sentences(name, fit, found.target)
        if len(names) > 1 and start == 0:
            lines.insert(0, _comparison(found))
        if found.mixed:
            lines.insert(0, f"The runs of one N also differ in {', '.join(found.mixed)}, which "
                            f"do not form a grid with the rate (e.g. drawn at random with it): "
                            f"each curve mixes their values.")
        lines.append("LR sensitivity (Wortsman et al. 2023): the mean over the rates tried of "
                     "min(ℓ(η), ℓ₀) − the best of them, ℓ₀ each run's loss at "
                     "initialisation "
                     "(diverged runs count as ℓ₀); η* the vertex of a parabola in log η "
                     "through the best rate and up to 2 neighbours each side, its interval "
                     "a parametric bootstrap; b's interval the union of the OLS t-interval "
                     "and the bootstrap's.")
        layout.text_block(fig, 0.06, 0.28 if len(chunk) > 1 else 0.36, lines, size=7,
                          width=0.91)
        pages.append((f"lr_sensitivity{'_' + str(start // ROWS_PER_PAGE + 1) if start else ''}",
                      fig))
    return pages


def _comparison(found: LRAnalysis) -> str:
    """The exponents of the settings side by side."""
    parts = []
    for name, fit in found.fits.items():
        if failed(fit) or not np.isfinite(fit.params_["b"]):
            parts.append(f"{name}: —")
            continue
        lo, hi = fit.conf_int().loc["b"]
        parts.append(f"{name}: b = {fit.params_['b']:.3f}"
                     + (f" [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else ""))
    return "Exponent of η*(N) ∝ N^(−b) per setting (b ≈ 0: the optimal rate transfers " \
           "across size): " + "; ".join(parts) + "."


__all__ = ["LRAnalysis", "analyse_lr", "lr_swept", "page_lr_sensitivity", "plot_loss_vs_lr",
           "plot_optimum_law", "plot_sensitivity", "varying_settings"]
