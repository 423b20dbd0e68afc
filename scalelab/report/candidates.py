"""The laws ``predict`` weighed for each headline prediction: every registered candidate
(:mod:`scalelab.laws.registry`) with its formula, its backtest error and coverage, its
prediction and interval, which one was chosen, and why a law was not a candidate.

So a law that declares itself (Farseer's surface, the precision law, the over-training and
data-constrained laws, a user's own) is seen in the report wherever the runs' grid supports
it, with the numbers that decided the choice; persistence, the naive guess, is the last
row of each table. One page (continued where long) of tables, one per target × variant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from scalelab.report.layout import Flow

#: the longest note drawn in a table cell (the whole sentence is in ``Prediction.candidates``)
NOTE_CHARS = 70
#: the longest formula drawn (superscripts and Greek letters are wider than the table's
#: estimate of a character; the law's name identifies it)
FORMULA_CHARS = 36


def _percent(value) -> str:
    return f"{value:.2%}" if isinstance(value, (int, float)) and np.isfinite(value) else "—"


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) and np.isfinite(value) else "—"


def _short(note, chars: int = NOTE_CHARS) -> str:
    note = "" if note is None or (isinstance(note, float) and np.isnan(note)) else str(note)
    return note if len(note) <= chars else note[:chars - 1] + "…"


def candidates_frame(prediction) -> pd.DataFrame:
    """The table of one :class:`scalelab.laws.prediction.Prediction`'s candidates, drawn:
    law, formula, backtest ARE, coverage of its backtests, prediction [interval], chosen,
    note; persistence's backtest ARE last."""
    cands = prediction.candidates
    rows = []
    for _, c in cands.iterrows():
        chosen = (c["law"] == prediction.law or
                  (str(prediction.law).startswith("weighted") and c.get("weight", 0) > 0))
        interval = (f"{_number(c['prediction'])} [{_number(c['lower'])}, "
                    f"{_number(c['upper'])}]" if np.isfinite(c.get("prediction", np.nan))
                    else "—")
        covered = c.get("covered", np.nan)
        rows.append({"law": c["law"], "formula": _short(c.get("formula", ""), FORMULA_CHARS),
                     "backtest ARE": _percent(c.get("backtest_are", np.nan)),
                     "covered": (f"{covered:.0%}" if np.isfinite(covered) else "—"), "prediction [interval]": interval,
                     "chosen": "★" if chosen else "", "note": _short(c.get("note", ""))})
    rows.append({"law": "persistence", "formula": "the largest run's value",
                 "backtest ARE": _percent(prediction.persistence_are), "covered": "—",
                 "prediction [interval]": "—",
                 "chosen": "★" if prediction.law == "persistence" else "", "note": ""})
    return pd.DataFrame(rows)


def page_candidates(ctx, analysis):
    """One table per headline prediction: the laws predict weighed (none without one)."""
    objects = getattr(analysis, "prediction_objects", {}) or {}
    if not objects:
        return []
    from scalelab.report.pages import new_page

    flow = Flow("The laws predict weighed for each headline prediction", "candidates",
                lambda title: new_page(title, ctx))
    flow.text(["Every law registered as a candidate of predict, fitted to the same runs and "
               "backtested on the same folds (the largest sizes left out, their runs "
               "predicted from the rest); the chosen one (★) has the lowest backtest error "
               "after each law's declared preference, and persistence (the largest run's "
               "value) is the guess it must beat. 'covered': the share of backtest "
               "truths inside the law's interval built from the other folds. A note says "
               "why a law was not fitted (e.g. too few sizes for its parameters)."], size=8)
    for (target, variant), prediction in objects.items():
        tag = f" [{variant}]" if variant is not None else ""
        flow.text([f"## {target}{tag}: {prediction.law}"], size=9)
        flow.table(candidates_frame(prediction), size=7)
    return flow.pages
