"""``load_runs``: the runs table from wherever the runs are.

The runs table is the contract between training and analysis (one row per run ×
evaluation step, the config's fields as columns; its columns are declared in
:mod:`scalelab.runs.columns`). This module reads it from a run store, a CSV or
Parquet file, a DataFrame, W&B offline run folders or an online W&B project, and
applies ``status=`` and ``sweep=`` the same way to all of them. Torch-free; knows
nothing of sweeps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import pandas as pd

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
    if isinstance(source, pd.DataFrame):
        return select(source, status, sweep, "the DataFrame").reset_index(drop=True)
    if isinstance(source, str) and source.startswith("wandb:"):
        project = source[len("wandb:"):]
        return assemble(*tracking.read_online(project, sweep), status=status, sweep=sweep,
                        source=source)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        table = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        return with_data_columns(select(table, status, sweep, str(path)).reset_index(drop=True))
    if path.is_dir():
        return assemble(*tracking.read_offline(path), status=status, sweep=sweep,
                        source=str(path))
    with StoreReader(path) as store:
        return store.table(sweep, status=status)
