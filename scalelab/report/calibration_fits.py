"""Scaling laws of calibration: how CRPS, the spread–skill gap and the rank histogram's
flatness improve with model size, fitted, extrapolated and backtested (torch-free).

For stochastic runs (ensembles) each metric's final value is fitted against N by a
saturating power law M(N) = E + A·N^(−α) (:class:`~scalelab.laws.PowerLaw`, the form of
Kaplan et al. 2020, eq. 1.1, with a floor) at the largest data size swept, per group
(loss variant, and family when a table holds several):

- ``val_crps``: the fair CRPS (Ferro 2014), a proper score; 0 is perfect;
- ``val_spread_skill``: fitted as the gap |1 − SSR| of the spread–skill ratio
  (Fortin et al. 2014), whose floor E is the miscalibration that size does not remove;
- ``val_rank_departure``: the rank histogram's RMS departure from flat, estimated without
  bias from per-image histograms (:func:`scalelab.calibration.rank_histogram_departure`;
  0 when flat). Not δ of Candille & Talagrand 2005, which grows in proportion to the
  number of pixels counted for any histogram that is not flat, so that a law in N of it
  would describe the validation set's size as much as the network.

Each law is backtested leave-largest-out (Choshen et al. 2024): fitted on the smaller
models, it predicts the largest, with the absolute relative error and whether the
prediction interval covered the truth — the same test the loss laws pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError, TableError
from scalelab.laws import PowerLaw, backtest
from scalelab.runs import final_rows, finished_runs

# metric: the value it is ideal at (None: 0), i.e. the law is fitted to |metric − ideal|
CALIBRATION_LAWS = {"val_crps": None, "val_spread_skill": 1.0, "val_rank_departure": None}
NAMES = {"val_crps": "CRPS", "val_spread_skill": "|1 − spread-skill ratio|",
         "val_rank_departure": "rank-histogram departure from flat"}


@dataclass
class CalibrationLaw:
    """A calibration metric's law in N (or in U) for one group, with its backtest."""

    metric: str
    group: object
    law: object  # PowerLaw, or the sentence why none was fitted
    backtest: object  # DataFrame (one row per held-out run), or the sentence why not
    samples: float | None  # the data size U the law in N was fitted at (None: one size)
    x: str = "params"  # the axis: params (N) or samples (U)
    params: float | None = None  # the model size N a law in U was fitted at

    @property
    def name(self) -> str:
        return NAMES.get(self.metric, self.metric)

    def predict_interval(self, at, level: float = 0.9) -> pd.DataFrame:
        """The metric's predicted distance from ideal at ``at`` (N, or U for a law in U),
        with an interval."""
        if not isinstance(self.law, PowerLaw):
            raise ScalelabError(f"{self.name} of {self.group}: no law to predict with "
                                f"({self.law}).")
        return self.law.predict_interval(x=at, level=level, kind="observation")

    def backtest_text(self, short: bool = False) -> str:
        if not isinstance(self.backtest, pd.DataFrame) or self.backtest.empty:
            return "no backtest" if short else \
                f"backtest not possible: {self.backtest}"
        bt = self.backtest.iloc[-1]
        verdict = "covered" if bt["covered"] else "missed"
        symbol = "N" if self.x == "params" else "U"
        if short:
            return f"backtest at {symbol} = {bt['target']:.3g}: ARE {bt['are']:.1%}, {verdict}"
        return (f"backtest at {symbol} = {bt['target']:.3g}: ARE {bt['are']:.1%}, interval "
                f"{verdict} the truth")


def calibration_laws(runs: pd.DataFrame, x: str = "params", by=None, n_bootstrap: int = 200,
                     level: float = 0.9) -> dict:
    """Fitted laws of CRPS, |1 − spread–skill ratio| and rank-histogram flatness in N,
    or with ``x="samples"`` in U (the distinct training samples).

    ``runs``: a runs table (curves or final rows). A law in N is fitted at the largest U
    swept, a law in U at the largest N. ``by``: the grouping columns (default
    ``loss_variant``, and ``family`` when there are several). Returns
    ``{metric: {group: CalibrationLaw}}`` for the metrics the table records; each law
    carries its leave-largest-out backtest (Choshen et al. 2024).
    """
    if x not in ("params", "samples"):
        raise ScalelabError(f"calibration_laws: x must be 'params' (N) or 'samples' (U), got "
                            f"{x!r}.")
    table = finished_runs(final_rows(runs))
    if x not in table.columns:
        raise TableError(f"calibration_laws needs a column {x!r} ("
                         f"{'model size' if x == 'params' else 'distinct training samples'}) "
                         f"in the runs table.")
    metrics = [m for m in CALIBRATION_LAWS if m in table.columns
               and np.isfinite(pd.to_numeric(table[m], errors="coerce")).any()]
    if not metrics:
        raise ScalelabError("no run in this table is stochastic (ensemble_members ≥ 2), so "
                            "there are no calibration metrics (CRPS, spread-skill, rank "
                            "histograms) to fit laws to.")
    other = "samples" if x == "params" else "params"  # held at its largest value
    fixed = None
    if other in table.columns and table[other].nunique() > 1:
        fixed = float(table[other].max())
        table = table[table[other] == fixed]
    if by is None:
        by = [c for c in ("family", "loss_variant") if c in table.columns
              and (c == "loss_variant" or table[c].nunique() > 1)]
    by = [by] if isinstance(by, str) else list(by)
    groups = table.groupby(by if len(by) > 1 else by[0]) if by else [(None, table)]
    out: dict = {m: {} for m in metrics}
    for key, group in groups:
        for metric in metrics:
            ideal = CALIBRATION_LAWS[metric]
            rows = group[np.isfinite(pd.to_numeric(group[metric], errors="coerce"))
                         & (group[x] > 0)].copy()
            column = metric if ideal is None else f"{metric}_gap"
            rows[column] = rows[metric].astype(float) if ideal is None else \
                (rows[metric].astype(float) - ideal).abs()
            try:
                law = PowerLaw(n_bootstrap=n_bootstrap).fit(rows, x=x, y=column)
            except ScalelabError as err:
                law = str(err)
            try:
                bt = backtest(PowerLaw(n_bootstrap=n_bootstrap), rows, y=column, size=x, x=x,
                              level=level)
            except ScalelabError as err:
                bt = str(err)
            out[metric][key] = CalibrationLaw(
                metric=metric, group=key, law=law, backtest=bt, x=x,
                samples=fixed if x == "params" else None,
                params=fixed if x == "samples" else None)
    return out
