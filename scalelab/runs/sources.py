"""``load_runs``: the runs table from wherever the runs are.

The runs table is the contract between training and analysis (one row per run ×
evaluation step, the config's fields as columns; its columns are declared in
:mod:`scalelab.runs.columns`). This module reads it from a run store, a CSV or
Parquet file, a DataFrame, W&B offline run folders or an online W&B project, and
applies ``status=`` and ``sweep=`` the same way to all of them. Torch-free; knows
nothing of sweeps.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Iterable

import pandas as pd

from scalelab._errors import InputTypeError, TableError
from scalelab.runs import tracking
from scalelab.runs.table import with_data_columns
from scalelab.runs.columns import DONE, assemble, check_status, select
from scalelab.runs.store import StoreReader

TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def load_runs(source, sweep: str | None = None, status: Iterable[str] | str | None = DONE
              ) -> pd.DataFrame:
    """The runs table: one row per run × evaluation step, config fields as columns.

    ``source`` is one of

    - a run store (``runs.db``), opened read-only (a running sweep is not blocked);
    - a CSV or Parquet file of runs (e.g. someone else's published losses, or
      ``scalelab runs export``);
    - a folder of W&B offline runs (``.../wandb`` or one ``offline-run-*`` folder),
      read back from each run's ``.wandb`` log without a server;
    - ``"wandb:ENTITY/PROJECT"``: an online W&B project, through ``wandb.Api()``
      (needs ``WANDB_API_KEY``);
    - a DataFrame (copied).

    Columns: ``run_id``, every RunConfig field (``family``, ``width``, ``samples`` —
    U, the distinct training samples —, ``loss_variant``, ``parent`` and
    ``branch_step`` of a branch, ...), ``sweep``, ``status``, the run's facts
    (``params``, ``flops_per_sample``, ``wall_time_s``, ...) and the curve columns
    (``step``, ``samples_seen`` — D, steps × batch —, ``epochs`` — D/U —, ``flops``,
    ``lr_step`` — the learning rate at that step, ``lr`` being the config's peak rate
    — ``train_loss``, ``val_loss``, ...).

    Only runs whose status is in ``status`` are kept (finished and diverged by
    default; ``None`` keeps all; a table without a ``status`` column is kept whole),
    and with ``sweep`` only the runs of that sweep (W&B: the run group).
    """
    check_status(status)  # a bad status= fails before any file is read
    if isinstance(source, dict):
        source = _frame_of_dict(source)
    if isinstance(source, pd.DataFrame):
        return select(source, status, sweep, "the DataFrame").reset_index(drop=True)
    if not isinstance(source, (str, PathLike)):
        raise InputTypeError(f"load_runs: source must be a path (run store, CSV, Parquet, "
                             f"W&B folder), 'wandb:ENTITY/PROJECT' or a DataFrame, got "
                             f"{type(source).__name__}.")
    if isinstance(source, str) and source.startswith("wandb:"):
        project = source[len("wandb:"):]
        return assemble(*tracking.read_online(project, sweep), status=status, sweep=sweep,
                        source=source)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        table = read_table(path)
        return with_data_columns(select(table, status, sweep, str(path)).reset_index(drop=True))
    if path.is_dir():
        return assemble(*tracking.read_offline(path), status=status, sweep=sweep,
                        source=str(path))
    with StoreReader(path) as store:
        return store.table(sweep, status=status)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; a file that cannot be read is one sentence."""
    if not path.is_file():
        raise TableError(f"{path}: no such table file; give the path of a CSV or Parquet file "
                         f"of runs.")
    try:
        if path.suffix.lower() == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise TableError(f"{path}: the file is empty (not even a header line); write the runs "
                         f"table with a header of column names.") from None
    except UnicodeDecodeError:
        raise TableError(f"{path}: the file is not UTF-8 text; save it as UTF-8 CSV.") from None
    except (pd.errors.ParserError, ValueError, OSError, ImportError) as err:
        kind = "CSV" if path.suffix.lower() == ".csv" else "Parquet"
        reason = " ".join(str(err).split()).rstrip(".").replace(". ", "; ")[:160]
        raise TableError(f"{path}: not a readable {kind} table ({reason}); check that the file "
                         f"is complete and written as {kind}.") from None


def _frame_of_dict(columns: dict) -> pd.DataFrame:
    try:
        return pd.DataFrame(columns)
    except ValueError as err:
        raise TableError(f"load_runs: the dict of columns is not a table "
                         f"({' '.join(str(err).split()).rstrip('.')}); give columns of one "
                         f"length.") from None
