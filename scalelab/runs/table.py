"""Checks and selections over the runs table (one row per run × evaluation step); torch-free.

The runs table is the contract between training and analysis. These helpers check
the columns an analysis needs and pick each run's result (its final row).
"""

from __future__ import annotations

import pandas as pd

from scalelab._errors import TableError


def require_columns(table: pd.DataFrame, *columns: str, what: str = "this analysis") -> None:
    """Raise one TableError sentence naming the first missing column."""
    if not isinstance(table, pd.DataFrame):
        raise TableError(f"{what} needs a pandas DataFrame of runs, got {type(table).__name__}; "
                         f"load one with scalelab.load_runs(path) or pandas.read_csv.")
    for column in columns:
        if column not in table.columns:
            have = ", ".join(map(str, table.columns[:12])) or "none"
            raise TableError(f"{what} needs a column {column!r}, which the table lacks (it has: "
                             f"{have}); name the right column with a keyword argument.")


def final_rows(table: pd.DataFrame, run: str = "run_id", step: str = "step") -> pd.DataFrame:
    """Each run's result: its row with the largest ``step`` (tables without runs pass through)."""
    if run not in table.columns or step not in table.columns or table.empty:
        return table.copy()
    last = table.dropna(subset=[step]).sort_values(step).groupby(run, sort=False).tail(1)
    return last.sort_index().reset_index(drop=True)
