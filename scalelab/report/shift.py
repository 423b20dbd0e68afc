"""Scaling under geographic shift: in-region and shifted-region laws, and the gap's law.

Runs trained on one region and evaluated on others (``options.regions``,
:mod:`scalelab.data.regions`) record each shifted region's metrics as
``val_<metric>@<region>``, the training region's as the plain ``val_<metric>``
(RainShift, 2025, asks this of precipitation downscaling: does a model trained on one
geography hold up on others, and does scale help?). For the report's metric ``y``:

- each region's result against N, per data size U, with its law L = E + A·N^(−α)
  (:class:`~scalelab.laws.PowerLaw`; an exponent α per region answers "does the shifted
  error fall as fast?"), and against U where the sweep varies it;
- the gap per run, shifted − in-region (``kind="difference"``; or the ratio less one),
  positive = worse out of region, with its law g(N) = G + B·(N/N₀)^(−β)
  (:class:`~scalelab.laws.gap.GapLaw`) extrapolated, and in one sentence whether scale
  closes it and at what N (with its bootstrap interval), or why not.

:func:`compare_regions` computes (no matplotlib); :func:`page_shift` draws one page per
loss variant, only when the table holds ``@`` region metrics of ``y`` (otherwise no page).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError, TableError
from scalelab.laws import PowerLaw
from scalelab.laws.gap import GapLaw, gap_values
from scalelab.runs.baselines import HIGHER_IS_BETTER
from scalelab.runs.columns import region_columns

EXTRAPOLATE = 100.0  # the gap law is drawn, and N* named, up to this × the largest N
IN_REGION = "in-region"
_TREND_WORDS = {"shrinks": "shrinks", "grows": "grows", "flat": "stays flat"}


@dataclass
class RegionComparison:
    """The laws of one loss variant's runs on the training region and on each shifted one.

    ``train_region``: its name (or ``in-region``); ``columns``: region → column (the
    training region first, as the plain ``y``); ``laws[(region, U)]``: PowerLaw in N or a
    sentence why none; ``gaps[(region, U)]``: GapLaw or a sentence; ``samples``: the U
    values, largest last.
    """

    y: str
    kind: str
    train_region: str
    columns: dict = field(default_factory=dict)
    samples: list = field(default_factory=list)
    laws: dict = field(default_factory=dict)
    gaps: dict = field(default_factory=dict)
    table: pd.DataFrame | None = None  # params, samples, each region's y, each gap

    @property
    def shifted(self) -> list:
        return [r for r in self.columns if r != self.train_region]

    def exponent(self, region, samples) -> float:
        law = self.laws.get((region, samples))
        return float(law.params_["alpha"]) if isinstance(law, PowerLaw) else np.nan

    def sentences(self) -> list[str]:
        """Per shifted region (largest U first): the exponents, the gap's trend and where
        the gap would close."""
        out = []
        for samples in sorted(self.samples, reverse=True):
            u = f"U = {samples:,.0f}" if np.isfinite(samples) else "all runs"
            a_in = self.exponent(self.train_region, samples)
            for region in self.shifted:
                gap = self.gaps.get((region, samples))
                a_out = self.exponent(region, samples)
                head = (f"{region} ({u}): α = {a_out:.3g} out of region vs {a_in:.3g} in "
                        f"{self.train_region}")
                if isinstance(gap, GapLaw):
                    p = gap.params_
                    out.append(f"{head}; gap law G = {p['G']:.3g}, B = {p['B']:.3g}, "
                               f"β = {p['beta']:.2f} (the gap {_TREND_WORDS[gap.trend]} with N). "
                               f"Does scale close it? {gap.closing_sentence()}")
                else:
                    out.append(f"{head}; no gap law ({gap}).")
        return out


def _train_region(runs: pd.DataFrame) -> str:
    """The training region the runs name (``options.regions.train``), else ``in-region``."""
    if "options" not in runs.columns:
        return IN_REGION
    names = set()
    for value in runs["options"].dropna():
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                continue
        regions = value.get("regions") if isinstance(value, dict) else None
        if isinstance(regions, str):
            names.add(regions)
        elif isinstance(regions, dict) and isinstance(regions.get("train"), str):
            names.add(regions["train"])
    return names.pop() if len(names) == 1 else IN_REGION


def compare_regions(final: pd.DataFrame, y: str = "val_loss", kind: str = "difference",
                    n_bootstrap: int = 200, level: float = 0.9) -> RegionComparison:
    """Fit each region's law in N (per U) and the law of each shifted region's gap.

    ``final``: one row per run (its result), with ``params``, ``y`` and ``y@<region>``
    columns (``samples`` optional). One loss variant at a time (``val_loss`` is in each
    variant's own units).
    """
    shifted = region_columns(final.columns, y)
    if not shifted:
        raise TableError(f"the runs table has no shifted-region columns of {y!r} "
                         f"({y}@<region>); train with options.regions to record them.")
    if "params" not in final.columns or y not in final.columns:
        raise TableError(f"compare_regions needs the columns params and {y!r}.")
    train = _train_region(final)
    if train in shifted:
        train = f"{train} (training)"
    out = RegionComparison(y=y, kind=kind, train_region=train,
                           columns={train: y, **shifted})
    table = final[["params", *(["samples"] if "samples" in final else []),
                   *out.columns.values()]].copy()
    for column in ("params", *out.columns.values()):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    if "samples" not in table:
        table["samples"] = np.nan
    higher = y in HIGHER_IS_BETTER
    for region in out.shifted:
        table[f"gap@{region}"] = gap_values(table[out.columns[region]], table[y], kind, higher)
    out.table = table
    groups = [(u, table[table["samples"] == u]) for u in sorted(table["samples"].dropna().unique())]
    if not groups:
        groups = [(np.nan, table)]
    for samples, rows in groups:
        out.samples.append(float(samples))
        for region, column in out.columns.items():
            try:
                if higher:
                    raise ScalelabError(f"{y} grows as the model improves; L = E + A·N^(−α) "
                                        "is fitted to errors only")
                out.laws[(region, float(samples))] = PowerLaw(n_bootstrap=n_bootstrap).fit(
                    rows.dropna(subset=[column]), x="params", y=column)
            except ScalelabError as err:
                out.laws[(region, float(samples))] = str(err).rstrip(".")
        for region in out.shifted:
            try:
                out.gaps[(region, float(samples))] = GapLaw(
                    n_bootstrap=n_bootstrap, level=level, horizon=EXTRAPOLATE).fit(
                    rows["params"], rows[f"gap@{region}"])
            except ScalelabError as err:
                out.gaps[(region, float(samples))] = str(err).rstrip(".")
    return out


def has_regions(runs: pd.DataFrame, y: str) -> bool:
    """Whether the table holds shifted-region metrics of ``y`` (the page is drawn)."""
    return bool(region_columns(runs.columns, y))


# -- the page ------------------------------------------------------------------------------
def page_shift(ctx, analysis):
    """Per loss variant: each region's result against N (and U), with its law; the gap's law
    against N with its extrapolation and where it would close. No page without ``@``
    region metrics of the report's metric."""
    from scalelab.report import layout
    from scalelab.report.labels import label
    from scalelab.report.pages import new_page
    from scalelab.runs.columns import axis_symbol

    if not has_regions(ctx.final, ctx.y):
        return []
    pages = []
    n, u = axis_symbol("params"), axis_symbol("samples")
    for variant in ctx.variants:
        rows = ctx.variant_rows(variant)
        tag = f" [{variant}]" if variant is not None else ""
        name = f"shift{'_' + str(variant) if variant is not None else ''}"
        fig = new_page(f"Scaling under geographic shift: {label(ctx.y)}{tag}", ctx)
        try:
            comp = compare_regions(rows, ctx.y)
        except ScalelabError as err:
            layout.message(fig, str(err))
            pages.append((name, fig))
            continue
        with_u = comp.table["samples"].nunique() > 1
        top = 0.87
        ax_n = fig.add_axes([0.06, 0.52, 0.27 if with_u else 0.42, top - 0.52])
        ax_gap = fig.add_axes([0.06, 0.08, 0.42, 0.34])
        draw_regions_vs_params(comp, ax_n)
        ax_n.set_title(f"each region vs {n} (largest {u}); lines: L = E + A·{n}^(−α)",
                       fontsize=8)
        if with_u:
            ax_u = fig.add_axes([0.38, 0.52, 0.15, top - 0.52])
            draw_regions_vs_samples(comp, ax_u)
            ax_u.set_title(f"vs {u} at the largest {n}", fontsize=8)
        draw_gaps(comp, ax_gap)
        ax_gap.set_title(f"gap = shifted − {comp.train_region} (largest {u}); "
                         f"law G + B·({n}/{n}₀)^(−β), {EXTRAPOLATE:g}× extrapolated, "
                         "band: bootstrap 90%", fontsize=8)
        lines = ["## Does scale close the gap?", *comp.sentences(), "## Method",
                 f"Training region: {comp.train_region} (the plain {ctx.y}); shifted: "
                 f"{', '.join(comp.shifted)} ({ctx.y}@region: the same fields' times, patches "
                 f"in that region, scored like the validation set). Gap per run: shifted − "
                 f"in-region, positive = worse out of region; its law fitted by least "
                 f"squares (β on a grid, G and B linear), intervals by a residual bootstrap; "
                 f"the gap closes where the law reaches 0. Laws per region: "
                 f"L = E + A·{n}^(−α), fitted per {u}."]
        layout.text_block(fig, 0.56, top, lines, size=7.5, width=0.41)
        pages.append((name, fig))
    return pages


def _largest(comp: RegionComparison):
    samples = max(comp.samples) if any(np.isfinite(comp.samples)) else np.nan
    rows = comp.table if not np.isfinite(samples) else comp.table[comp.table["samples"] == samples]
    return samples, rows


def draw_regions_vs_params(comp: RegionComparison, ax=None):
    """Each region's result against N at the largest U, its law extrapolated 10× (dashed)."""
    import matplotlib.pyplot as plt

    from scalelab.report import layout
    from scalelab.report.labels import label

    ax = ax or plt.gca()
    samples, rows = _largest(comp)
    for i, (region, column) in enumerate(comp.columns.items()):
        colour = "k" if region == comp.train_region else f"C{i}"
        mean = rows.groupby("params")[column].mean()
        ax.plot(mean.index, mean.values, "o", ms=4, color=colour)
        law = comp.laws.get((region, samples))
        text = region
        if isinstance(law, PowerLaw):
            grid = np.geomspace(mean.index.min(), 10 * mean.index.max(), 100)
            inside = grid <= mean.index.max()
            fit = law.predict(x=grid)
            ax.plot(grid[inside], fit[inside], "-", color=colour, lw=1.2)
            ax.plot(grid[~inside], fit[~inside], "--", color=colour, lw=1.0)
            text += f" (α = {law.params_['alpha']:.2f})"
        ax.plot([], [], "o-", color=colour, label=text)
    layout.log_axes(ax)
    ax.set_xlabel(label("params"))
    ax.set_ylabel(label(comp.y), fontsize=8)
    ax.legend(fontsize=7)
    return ax


def draw_regions_vs_samples(comp: RegionComparison, ax=None):
    """Each region's result against U at the largest N."""
    import matplotlib.pyplot as plt

    from scalelab.report import layout
    from scalelab.report.labels import label

    ax = ax or plt.gca()
    table = comp.table
    biggest = table[table["params"] == table["params"].max()]
    for i, (region, column) in enumerate(comp.columns.items()):
        colour = "k" if region == comp.train_region else f"C{i}"
        mean = biggest.groupby("samples")[column].mean()
        ax.plot(mean.index, mean.values, "o-", ms=4, color=colour, label=region)
    layout.log_axes(ax)
    ax.set_xlabel(label("samples"), fontsize=8)
    return ax


def draw_gaps(comp: RegionComparison, ax=None):
    """Each shifted region's gap against N at the largest U: points, the gap law with its
    bootstrap band to ``EXTRAPOLATE`` × the largest N, zero, and N* where it closes."""
    import matplotlib.pyplot as plt

    from scalelab.report.labels import label

    ax = ax or plt.gca()
    samples, rows = _largest(comp)
    for i, region in enumerate(comp.columns):
        if region == comp.train_region:
            continue
        colour = f"C{i}"
        points = rows.groupby("params")[f"gap@{region}"].mean()
        gap = comp.gaps.get((region, samples))
        closes = isinstance(gap, GapLaw) and np.isfinite(gap.closes_at_)
        ax.plot(points.index, points.values, "o", ms=4, color=colour,
                label=region + (f" (zero gap at N ≈ {gap.closes_at_:.2g})" if closes else ""))
        if isinstance(gap, GapLaw):
            grid = np.geomspace(points.index.min(), EXTRAPOLATE * points.index.max(), 200)
            band = gap.predict_interval(grid)
            inside = grid <= points.index.max()
            ax.plot(grid[inside], band["prediction"][inside], "-", color=colour, lw=1.2)
            ax.plot(grid[~inside], band["prediction"][~inside], "--", color=colour, lw=1.0)
            ax.fill_between(grid, band["lower"], band["upper"], color=colour, alpha=0.15, lw=0)
            if np.isfinite(gap.closes_at_) and gap.closes_at_ <= grid[-1]:
                ax.axvline(gap.closes_at_, color=colour, ls=":", lw=1.0)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_xscale("log")
    ax.grid(True, which="both", alpha=0.25)
    ax.set_xlabel(label("params"))
    ax.set_ylabel(f"gap in {comp.y}", fontsize=8)
    ax.legend(fontsize=7)
    return ax
