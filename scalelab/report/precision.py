"""The report's precision page: loss against N per weight precision, Kumar et al.'s law
fitted to it, and the bit width a memory budget is best spent at (torch-free).

Emitted only when the runs train at two or more weight precisions P (``param_bits`` of the
runs table: ``weight_bits`` for a QAT run, 16 under bf16 autocast, 32 in fp32); otherwise
the page does not appear. A QAT run's value is its quantized network's (the loop evaluates
it quantized once its QAT phase has begun).

:func:`precision_analysis` fits :class:`scalelab.laws.PrecisionLaw`,
L = E + A·N_eff^(−α) + B·D^(−β), N_eff = N(1 − e^(−P/γ)) (Kumar et al. 2024, eq. 3), to
each loss variant's final values (where the runs hold one data size, D's term is folded
into E: B, β are fixed), and answers, for a memory budget M of the weights — by default
that of the largest run at the lowest bit width swept, N_max·P_min/8 bytes, so that no
bit width's N lies beyond the runs — for each P the largest N with
N·P/8 ≤ M and the law's loss there (:func:`scalelab.laws.best_bits_under_memory`): the
best P, its interval, and how often the bootstrap refits agree — beside the measured
answer, the swept run of largest N within the budget at each P
(:func:`measured_under_memory`). :func:`page_precision` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.laws import PrecisionLaw, best_bits_under_memory
from scalelab.report.analysis import LEVEL
from scalelab.runs.table import param_bits

#: the bit widths the memory question compares
BITS = (2, 3, 4, 5, 6, 8, 16, 32)


@dataclass
class PrecisionFit:
    """One loss variant's precision law and its answer to the memory question."""

    runs: pd.DataFrame  # the final rows, with param_bits
    law: object = None  # PrecisionLaw, or the sentence why not
    memory_bytes: float = np.nan
    samples: float = np.nan
    choice: pd.DataFrame = field(default_factory=pd.DataFrame)  # best_bits_under_memory
    fraction: float | None = None  # the QAT fraction of the QAT runs fitted (None: all)
    residuals: pd.Series = None  # mean relative residual (observed/law − 1) per P
    measured: pd.DataFrame = field(default_factory=pd.DataFrame)  # measured_under_memory

    def sentences(self, level: float = LEVEL) -> list[str]:
        if isinstance(self.law, str):
            return [f"No precision law: {self.law}"]
        p = self.law.params_
        lines = []
        if self.law.bse_ is not None:
            lo, hi = self.law.conf_int(level).loc["gamma"]
            lines.append(f"γ = {p['gamma']:.3g} bits ({level:.0%} interval {lo:.3g}–{hi:.3g}): "
                         f"P bits keep 1 − e^(−P/γ) of N, e.g. "
                         f"{-np.expm1(-4 / p['gamma']):.0%} at 4 bits, "
                         f"{-np.expm1(-2 / p['gamma']):.0%} at 2.")
        else:
            lines.append(f"γ = {p['gamma']:.3g} bits.")
        if not self.choice.empty:
            best = self.choice.iloc[0]
            interval = (f" [{best['lower']:.4g}, {best['upper']:.4g}]"
                        if "lower" in self.choice else "")
            agree = (f"; best in {best['share_best']:.0%} of the bootstrap refits"
                     if "share_best" in self.choice else "")
            far = (f" (N {best['distance']:.3g}× the largest run: an extrapolation)"
                   if best.get("distance", 1.0) > 1.01 else "")
            lines.append(f"With {self.memory_bytes:.4g} bytes of weights and U = "
                         f"{self.samples:g}: best at {int(best['bits'])} bits, "
                         f"N = {best['params']:.4g}{far}, predicted {best['prediction']:.4g}"
                         f"{interval}{agree}.")
        if not self.measured.empty:
            top = self.measured.iloc[0]
            law_best = int(self.choice["bits"].iloc[0]) if not self.choice.empty else None
            verdict = ("agrees with the law" if law_best == int(top["bits"])
                       else f"the law says {law_best} bits")
            lines.append("Measured, the swept runs within that memory (largest N per P): "
                         + ", ".join(f"{int(r.bits)} bits N = {r.params:.3g}: {r.value:.4g}"
                                     for r in self.measured.itertuples())
                         + f"; best at {int(top['bits'])} bits ({verdict}).")
        if self.residuals is not None:
            worst = self.residuals.abs().idxmax()
            lines.append("Runs against the law, mean per P: " + ", ".join(
                f"{p:g} bits {r:+.1%}" for p, r in self.residuals.items())
                + (f"; the law misses the {worst:g}-bit runs by {self.residuals[worst]:+.1%}, "
                   f"so its answer there is weaker." if abs(self.residuals[worst]) > 0.03
                   else "."))
        if self.fraction is not None:
            lines.append(f"Fitted to the full-precision runs and the QAT runs at f = "
                         f"{self.fraction:g}.")
        return lines


def fraction_sentences(qat: pd.DataFrame, y: str) -> list[str]:
    """For each bit width, the QAT fraction of lowest mean loss over the sizes, with the
    relative change against QAT throughout (f = 1, or the largest f swept)."""
    out = []
    for p, rows in qat.groupby("param_bits"):
        means = rows.groupby("qat_fraction")[y].mean()
        if len(means) < 2:
            continue
        best, top = means.idxmin(), means.index.max()
        out.append(f"P = {p:g}: best f = {best:g} ({means[best]:.4g}, "
                   f"{means[best] / means[top] - 1:+.1%} against f = {top:g}; mean over N)")
    return out


def varies_precision(final: pd.DataFrame) -> bool:
    """Whether the runs train at two or more weight precisions (the page's condition)."""
    if not ({"weight_bits", "amp"} & set(final.columns)) or final.empty:
        return False
    return param_bits(final).nunique() >= 2


def _quantized(runs: pd.DataFrame) -> pd.Series:
    bits = runs["weight_bits"] if "weight_bits" in runs.columns else pd.Series(0, runs.index)
    return pd.to_numeric(bits, errors="coerce").fillna(0) > 0


def precision_analysis(final: pd.DataFrame, y: str = "val_loss", n_bootstrap: int = 100,
                       memory_bytes: float | None = None, seed: int = 0) -> PrecisionFit:
    """Fit the precision law to ``final`` (one row per run) and answer the memory question.

    Where the QAT runs hold several QAT fractions, the law is fitted to the full-precision
    runs and the QAT runs at the largest fraction (QAT throughout, Kumar et al.'s quantized
    training, where swept): ``fraction``. ``memory_bytes`` defaults to the largest run's
    weights at the lowest bit width swept, N_max·P_min/8, so that every bit width's N is
    at most N_max: the answer rests on the runs, not on extrapolation in N.
    """
    runs = final.assign(param_bits=param_bits(final)).reset_index(drop=True)
    out = PrecisionFit(runs=runs)
    fit_rows = runs
    if "qat_fraction" in runs.columns and runs.loc[_quantized(runs), "qat_fraction"].nunique() > 1:
        out.fraction = float(runs.loc[_quantized(runs), "qat_fraction"].max())
        fit_rows = runs[~_quantized(runs) | (runs["qat_fraction"] == out.fraction)]
    fixed = None
    if runs["samples"].nunique() < 3:  # one data size: its term is a constant, in E
        fixed = {"B": 1e-12 * float(runs[y].min()), "beta": 1.0}
    try:
        out.law = PrecisionLaw(n_bootstrap=n_bootstrap, seed=seed, fixed=fixed).fit(
            fit_rows, params="params", samples="samples", bits="param_bits", y=y)
    except ScalelabError as err:
        out.law = str(err)
        return out
    predicted = out.law.predict(N=fit_rows["params"].to_numpy(float),
                                D=fit_rows["samples"].to_numpy(float),
                                P=fit_rows["param_bits"].to_numpy(float))
    ratio = fit_rows[y].to_numpy(float) / predicted - 1.0
    out.residuals = pd.Series(ratio).groupby(fit_rows["param_bits"].to_numpy()).mean()
    n_max = float(fit_rows["params"].max())
    out.memory_bytes = (n_max * float(fit_rows["param_bits"].min()) / 8.0
                        if memory_bytes is None else float(memory_bytes))
    out.samples = float(fit_rows["samples"].max())
    out.choice = best_bits_under_memory(out.law, out.memory_bytes, out.samples, BITS)
    out.choice["distance"] = out.choice["params"] / n_max
    out.measured = measured_under_memory(fit_rows, out.memory_bytes, y)
    return out


def measured_under_memory(runs: pd.DataFrame, memory_bytes: float, y: str) -> pd.DataFrame:
    """For each bit width of ``runs`` (with ``param_bits``), the run of largest N whose
    weights fit ``memory_bytes`` (N·P/8 ≤ M) and its ``y`` (the mean over seeds and
    repeats of that N): columns ``bits``, ``params``, ``value``, sorted by value."""
    rows = []
    for p, at in runs.groupby("param_bits"):
        fits = at[at["params"] * p / 8.0 <= memory_bytes * (1 + 1e-9)]
        if fits.empty:
            continue
        n = fits["params"].max()
        rows.append({"bits": p, "params": n, "value": float(fits.loc[fits["params"] == n,
                                                                     y].mean())})
    return (pd.DataFrame(rows, columns=["bits", "params", "value"])
            .sort_values("value").reset_index(drop=True))


def page_precision(ctx, analysis):
    """Loss against N per bit width with the precision law, and the best bit width under
    a memory budget; one page per loss variant; none when the runs do not vary in
    precision."""
    from scalelab.report.layout import log_axes, message, new_page, text_block
    from scalelab.report.labels import label

    final = ctx.final
    if not varies_precision(final):
        return []
    variants = (final["loss_variant"].dropna().unique().tolist()
                if "loss_variant" in final.columns else [None])
    pages = []
    for variant in variants:
        rows = final if variant is None else final[final["loss_variant"] == variant]
        tag = f" [{variant}]" if len(variants) > 1 else ""
        fig = new_page(f"Numeric precision: {label(ctx.y)} against N per weight precision{tag}",
                       f"{ctx.title} · {ctx.n_runs} runs")
        fit = precision_analysis(rows, ctx.y)
        ax = fig.add_axes([0.07, 0.52, 0.5, 0.36])
        bits = sorted(fit.runs["param_bits"].unique())
        fitted = (~_quantized(fit.runs) if fit.fraction is not None
                  else pd.Series(True, index=fit.runs.index))
        if fit.fraction is not None:
            fitted |= fit.runs["qat_fraction"] == fit.fraction
        for i, p in enumerate(bits):
            at = fit.runs[fit.runs["param_bits"] == p].sort_values("params")
            colour = f"C{i}"
            used = at[fitted[at.index]]
            ax.plot(used["params"], used[ctx.y], "o", color=colour, ms=4, label=f"P = {p:g} bits")
            other = at[~fitted[at.index]]
            if len(other):
                ax.plot(other["params"], other[ctx.y], "x", color=colour, ms=5)
            if not isinstance(fit.law, str):
                grid = np.geomspace(at["params"].min(), at["params"].max() * 4, 60)
                ax.plot(grid, fit.law.predict(N=grid, D=np.full_like(grid, fit.samples),
                                              P=np.full_like(grid, p)), "-", color=colour, lw=1)
        log_axes(ax)
        ax.set_xlabel(label("params"))
        ax.set_ylabel(label(ctx.y))
        ax.legend(fontsize=7)
        ax2 = fig.add_axes([0.07, 0.08, 0.5, 0.33])
        if fit.choice.empty:
            message(ax2, "no memory answer without a precision law")
        else:
            order = fit.choice.sort_values("bits")
            ax2.plot(order["bits"], order["prediction"], "o-", color="k", ms=4)
            if "lower" in order:
                ax2.fill_between(order["bits"], order["lower"], order["upper"], color="k",
                                 alpha=0.12, lw=0)
            if not fit.measured.empty:
                ax2.plot(fit.measured["bits"], fit.measured["value"], "s", color="C3", ms=5,
                         label="measured: swept run of largest N within M")
                ax2.legend(fontsize=7)
            ax2.set_xscale("log", base=2)
            ax2.set_xticks(list(BITS))
            ax2.set_xticklabels([str(b) for b in BITS])
            ax2.set_xlabel(f"weight bits P (N = 8·M/P, M = {fit.memory_bytes:.3g} bytes)")
            ax2.set_ylabel(f"predicted {label(ctx.y)}")
        lines = ["## Best bit width under a memory budget", *fit.sentences()]
        if not fit.choice.empty:
            lines.append("## Each P at that memory")
            for r in fit.choice.sort_values("bits").itertuples():
                interval = f" [{r.lower:.3g}, {r.upper:.3g}]" if hasattr(r, "lower") else ""
                lines.append(f"P = {r.bits}: N = {r.params:.3g}, {r.prediction:.4g}{interval}")
        if fit.fraction is not None:
            lines.append("## QAT fraction f (× in the plot: f below the fitted one)")
            lines.extend(fraction_sentences(fit.runs[_quantized(fit.runs)], ctx.y))
        lines.append("## Method")
        lines.append("L = E + A·N_eff^(−α) + B·D^(−β), N_eff = N(1 − e^(−P/γ)) (Kumar et al. "
                     "2024, eq. 3); P: the weights' bits in the forward pass (k-bit QAT, 16 "
                     "under bf16, 32 in fp32). QAT runs are evaluated quantized. Memory: "
                     "N·P/8 bytes of weights; intervals: bootstrap, "
                     f"{LEVEL:.0%}.")
        text_block(fig, 0.6, 0.86, lines, size=8, width=0.37)
        pages.append((f"precision{'_' + str(variant) if len(variants) > 1 else ''}", fig))
    return pages
