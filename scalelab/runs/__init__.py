"""The runs table: the contract between training and analysis, and its readers. Torch-free.

One row per run × evaluation step, the RunConfig's fields as columns (the columns
are declared once, in :mod:`scalelab.runs.columns`). Laws, calibration and reports
take this table; so can a user's notebook, or a table of someone else's runs.

- :func:`load_runs` (:mod:`~scalelab.runs.sources`): the table from a run store, a
  CSV/Parquet file, a DataFrame, W&B offline folders or an online W&B project,
  filtered by ``status=`` and ``sweep=`` alike for every source.
- :class:`StoreReader` (:mod:`~scalelab.runs.store`): a run store opened read-only,
  and the store's SQLite schema (its writer is :mod:`scalelab.sweep.store`).
- :mod:`~scalelab.runs.tracking`: runs written to W&B and read back.
- :func:`require_columns`, :func:`final_rows`, :func:`finished_runs`
  (:mod:`~scalelab.runs.table`): checks and selections an analysis makes on the table
  (:func:`finished_runs`: the one rule of which runs count in a fit).

Imports neither torch nor :mod:`scalelab.sweep`.
"""

from scalelab.runs.columns import DONE, RUN_COLUMNS, RUN_FACTS, STATUSES
from scalelab.runs.sources import load_runs
from scalelab.runs.store import StoreReader
from scalelab.runs.table import final_rows, finished_runs, require_columns

__all__ = ["load_runs", "StoreReader", "final_rows", "finished_runs", "require_columns", "DONE",
           "STATUSES",
           "RUN_COLUMNS", "RUN_FACTS"]
