"""Which value of a run is its result, and whether the run had finished learning.

A scaling law is fitted to one number per run. Two choices fit two training regimes:

- ``result="final"``: the value at the run's last evaluation — what a run trained to
  the end of its schedule gives (the Chinchilla setting: each run annealed to its end,
  Hoffmann et al. 2022 §3);
- ``result="best"``: the lowest value over the run's curve — what early stopping on
  the validation set keeps (Prechelt 1998, "Early stopping — but when?"; the regime of
  small-data downscaling, where the largest models start to overfit before the end).

A run whose value still falls by more than ``threshold`` (relative) over the last
fifth of its training has not converged: its result understates what its size can
reach, and a law fitted through it mixes the trend in size with the trend in training
length (the "undertrained" regime of Kaplan et al. 2020 §6 and Hoffmann et al. 2022
§3.2). :func:`undertrained_runs` measures that fall and flags such runs.

Torch-free; works on any runs table with ``run_id`` and ``step`` columns (tables of
final values only pass through unchanged).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError, TableError

from scalelab.result import RESULTS  # noqa: E402 - the one ("final", "best")
#: a run is undertrained when its value falls by more than this over its last fifth
UNDERTRAINED_THRESHOLD = 0.02
#: the tail of training over which the fall is measured
LAST_FRACTION = 0.2


def check_result(result: str) -> str:
    """``result`` if it is ``"final"`` or ``"best"``; one sentence otherwise."""
    if result not in RESULTS:
        raise ScalelabError(f"result must be 'final' (the value at the last evaluation) or "
                            f"'best' (the lowest over the curve, as early stopping keeps), got "
                            f"{result!r}.")
    return result


def result_rows(runs: pd.DataFrame, y: str = "val_loss", result: str = "final",
                run: str = "run_id", step: str = "step") -> pd.DataFrame:
    """One row per run: its final row, with ``y`` replaced by the curve's lowest value
    when ``result="best"`` (the step it was reached is kept in ``best_step``).

    Rows whose ``y`` is not finite are ignored (a diverged tail never counts as the best).
    A table without ``run`` and ``step`` columns is taken as one row per run already.
    """
    check_result(result)
    if not isinstance(runs, pd.DataFrame):
        raise TableError(f"a runs table (pandas DataFrame) is needed, got {type(runs).__name__}; "
                         f"load one with scalelab.load_runs(path).")
    if y not in runs.columns:
        have = ", ".join(map(str, runs.columns[:12])) or "none"
        raise TableError(f"the runs table has no column {y!r} (it has: {have}); name the "
                         f"metric with y=... .")
    twice = runs.columns[runs.columns.duplicated()].unique()
    if len(twice):
        raise TableError(f"the runs table has {int((runs.columns == twice[0]).sum())} columns "
                         f"named {twice[0]!r}, so which one is meant is unclear; keep one, e.g. "
                         f"table.loc[:, ~table.columns.duplicated()].")
    if run not in runs.columns or step not in runs.columns or runs.empty:
        return runs.copy().reset_index(drop=True)
    table = runs.dropna(subset=[step]).sort_values([run, step], kind="stable")
    final = table.groupby(run, sort=False).tail(1).set_index(run)
    if result == "best":
        values = pd.to_numeric(table[y], errors="coerce")
        finite = table[np.isfinite(values)]
        if not finite.empty:
            best = finite.loc[finite.groupby(run, sort=False)[y].idxmin(), [run, step, y]]
            best = best.set_index(run)
            final.loc[best.index, y] = best[y]
            final["best_step"] = best[step].reindex(final.index)
    out = final.reset_index()
    order = runs.drop_duplicates(run)[run]
    return out.set_index(run).loc[order[order.isin(out[run])]].reset_index()


def undertrained_runs(runs: pd.DataFrame, y: str = "val_loss", result: str = "final",
                      threshold: float = UNDERTRAINED_THRESHOLD, run: str = "run_id",
                      step: str = "step") -> pd.DataFrame:
    """How much each run's value fell over the last fifth of its steps, and whether that
    exceeds ``threshold`` (relative to the value at the end).

    The fall is (v(0.8·T) − v(T)) / v(T), with v the curve (linearly interpolated between
    evaluations) and T the last step; for ``result="best"`` v is the best-so-far curve
    (its running minimum), so a run that overfits at the end is not flagged. Returns one
    row per run with ``run_id``, the size columns present (``params``, ``samples``),
    ``fall`` and ``undertrained``; runs with fewer than two evaluations get NaN and False.
    """
    check_result(result)
    if not 0 <= threshold:
        raise ScalelabError(f"the undertrained threshold must be >= 0 (a relative fall, e.g. "
                            f"0.02), got {threshold}.")
    columns = [run, *[c for c in ("params", "samples") if c in runs.columns], "fall",
               "undertrained"]
    if run not in runs.columns or step not in runs.columns or y not in runs.columns:
        return pd.DataFrame(columns=columns)
    rows = []
    for run_id, curve in runs.dropna(subset=[step]).groupby(run, sort=False):
        curve = curve.sort_values(step)
        values = pd.to_numeric(curve[y], errors="coerce").to_numpy(dtype=float)
        steps = curve[step].to_numpy(dtype=float)
        keep = np.isfinite(values)
        steps, values = steps[keep], values[keep]
        fall = np.nan
        if values.size >= 2 and steps[-1] > 0:
            if result == "best":
                values = np.minimum.accumulate(values)
            start = np.interp((1 - LAST_FRACTION) * steps[-1], steps, values)
            fall = float((start - values[-1]) / abs(values[-1])) if values[-1] else np.nan
        row = {run: run_id, "fall": fall,
               "undertrained": bool(np.isfinite(fall) and fall > threshold)}
        for c in ("params", "samples"):
            if c in curve.columns:
                row[c] = curve[c].iloc[-1]
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
