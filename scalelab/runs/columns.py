"""The columns of the runs table, declared once; how a source's frames become the table.

Every reader (the SQLite store, W&B offline folders and online projects) produces two
frames — one row per run (its config, status and facts) and one row per run ×
evaluation step (its curve) — and :func:`assemble` joins them the same way for all of
them. A later column is added here and nowhere else:

- ``RUN_FACTS``: what a run reports about itself once it ends (``params`` N,
  ``flops_per_sample``, ``device``, ``host``, ``wall_time_s`` — the run's whole wall
  time, ``diverged_step``, ``warning`` — what went wrong but did not stop the run, such
  as an unreadable checkpoint it started over from); one value per run, repeated on
  each of its rows.
- ``RUN_COLUMNS``: ``run_id``, the RunConfig fields, ``sweep`` (the sweep(s) the run
  belongs to, comma-separated when several), ``status``, ``attempts``, the facts,
  ``versions`` and ``error``.
- Curve columns (``step``, ``samples_seen``, ``flops``, ``train_loss``, ``val_loss``,
  ...) are whatever the training loop records. One that shares its name with a run
  column gets the suffix ``_step``: the curve's ``lr`` (the rate at that step) becomes
  ``lr_step`` beside the config's peak ``lr``, and the curve's ``wall_time_s`` (time
  elapsed at that step) becomes ``wall_time_s_step`` beside the run's total — so no
  merge suffix (``_x``, ``_y``) ever reaches a user. Curve rows also repeat the
  config's ``samples`` (U, distinct training samples; ``CONFIG_ECHOES``) so that each
  row is self-describing in W&B; the table keeps the run's one column.
- The data axis: ``samples`` (U), the curve's ``samples_seen`` (D = step × batch) and
  ``epochs`` (D/U; derived by :func:`scalelab.runs.table.with_data_columns` for tables
  written before rows carried it).
"""

from __future__ import annotations

import pandas as pd

from scalelab._errors import TableError
from scalelab.config import RunConfig
from scalelab.runs.table import with_data_columns

STATUSES = ("pending", "running", "finished", "diverged", "failed")
DONE = ("finished", "diverged")  # the statuses load_runs keeps by default: runs with a result
RUN_FACTS = ("params", "flops_per_sample", "device", "host", "wall_time_s", "diverged_step",
             "warning")
RUN_COLUMNS = ("run_id", *RunConfig.field_names(), "sweep", "status", "attempts", *RUN_FACTS,
               "versions", "error")
STEP_SUFFIX = "_step"
CONFIG_ECHOES = ("samples",)  # curve columns that repeat a config field; the run's is kept
EMPTY_COLUMNS = ("run_id", *RunConfig.field_names(), "params", "status", "step", "val_loss")

#: What a run's curve rows record (:mod:`scalelab.train`): the row's own columns, the
#: deterministic skill of every run, and the ensemble scores of a run with
#: ensemble_members > 1. A spec's ``metric.name`` must be one of them.
CURVE_COLUMNS = ("step", "samples_seen", "samples", "epochs", "flops", "lr", "train_loss",
                 "wall_time_s")
_SKILL = ("val_loss", "val_mse", "val_rmse", "val_mae", "val_psnr", "val_ssim",
          "val_spectrum_error", "val_p99_bias", "val_p999_bias")
#: a run's skill, and that of bicubic upsampling of its coarse input on the same fields
#: (``val_bicubic_<metric>``, scored once per run: the reference of every page)
SKILL_METRICS = (*_SKILL, *(m.replace("val_", "val_bicubic_", 1) for m in _SKILL))
#: what a learned-rescaling run (``irn``) records besides: its own LR against the run's LR
#: input, and the HR reconstructed from its own LR (declared with the family's record)
from scalelab.models.names import RESCALING_METRICS  # noqa: E402
ENSEMBLE_METRICS = ("val_crps", "val_spread_skill", "val_rank_delta", "val_rank_departure",
                    "val_rank_neff", "val_exceed_ece", "val_exceed_brier", "val_bicubic_crps")

#: The scaling axes, one name and one symbol each (labels, headers, symbols and docs read
#: them here): parameters N, distinct training samples U, samples seen D = steps × batch,
#: epochs D/U, training compute C.
AXES = {"params": "N", "samples": "U", "samples_seen": "D", "epochs": "D/U", "flops": "C"}
AXIS_WORDS = {"params": "parameters", "samples": "distinct samples",
              "samples_seen": "samples seen", "epochs": "epochs", "flops": "training FLOPs"}


def axis_symbol(column: str) -> str:
    """The symbol of a scaling axis (``samples`` → ``U``), or the column's own name."""
    return AXES.get(column, column)


def axis_label(column: str) -> str:
    """An axis label in words with its symbol (``samples`` → ``distinct samples U``)."""
    return f"{AXIS_WORDS[column]} {AXES[column]}" if column in AXES else column


def run_facts(info: dict) -> dict:
    """The facts of a run's ``info`` (what ``scalelab.train`` returns) that the table keeps."""
    return {name: info.get(name) for name in RUN_FACTS}


def curve_name(column: str) -> str:
    """The table's name for a curve column (``lr`` → ``lr_step``; most keep theirs)."""
    return column + STEP_SUFFIX if column in RUN_COLUMNS and column != "run_id" else column


def check_status(status) -> tuple[str, ...] | None:
    """``status=`` as a tuple of known statuses (a single word allowed), or None for all."""
    if status is None:
        return None
    wanted = (status,) if isinstance(status, str) else tuple(status)
    for word in wanted:
        if word not in STATUSES:
            raise TableError(f"load_runs: unknown status {word!r}; valid statuses are "
                             f"{', '.join(STATUSES)} (or status=None for all).")
    return wanted


def assemble(runs: pd.DataFrame, curves: pd.DataFrame, status=DONE,
             sweep: str | None = None, source: str = "the runs") -> pd.DataFrame:
    """The runs table from a per-run frame and a per-step frame, filtered by status and sweep."""
    if runs.empty:
        return pd.DataFrame(columns=list(EMPTY_COLUMNS))
    runs = select(runs, status=status, sweep=sweep, source=source)
    if curves.empty:
        curves = pd.DataFrame(columns=["run_id", "step"])
    curves = curves.drop(columns=[c for c in CONFIG_ECHOES if c in curves.columns])
    curves = curves.rename(columns={c: curve_name(c) for c in curves.columns})
    table = runs.merge(curves, on="run_id", how="left", validate="one_to_many")
    return with_data_columns(table.sort_values(["run_id", "step"]).reset_index(drop=True))


def select(table: pd.DataFrame, status=DONE, sweep: str | None = None,
           source: str = "the table") -> pd.DataFrame:
    """Rows whose ``status`` is wanted and that belong to ``sweep``.

    A table without a ``status`` column (e.g. someone's published losses) holds results
    only and is kept whole; ``sweep=`` on a table without a ``sweep`` column is an error.
    """
    wanted = check_status(status)
    if wanted is not None and "status" in table.columns:
        table = table[table["status"].isin(wanted)]
    if sweep is not None:
        if "sweep" not in table.columns:
            raise TableError(f"{source}: the table has no 'sweep' column, so it cannot be "
                             f"narrowed to sweep {sweep!r}; drop sweep= or add the column.")
        member = table["sweep"].map(lambda names: isinstance(names, str)
                                    and sweep in names.split(","))
        table = table[member.astype(bool)]
    return table



#: Metrics of a shifted evaluation set (``options.regions``, :mod:`scalelab.data.regions`):
#: ``val_crps@tropics`` is ``val_crps`` on the validation patches of region ``tropics``;
#: the training region's set keeps the plain names.
REGION_SEPARATOR = "@"


def region_metric(metric: str, region: str) -> str:
    """The column of ``metric`` on the evaluation set of ``region``: ``val_crps@tropics``."""
    return f"{metric}{REGION_SEPARATOR}{region}"


def split_region(column: str) -> tuple[str, str | None]:
    """``val_crps@tropics`` → ``("val_crps", "tropics")``; a plain column → ``(column, None)``."""
    base, at, region = str(column).partition(REGION_SEPARATOR)
    return (base, region) if at and region and base else (str(column), None)


def region_columns(columns, metric: str) -> dict:
    """The regions whose ``metric`` a table holds: region → column, in the table's order."""
    out = {}
    for column in columns:
        base, region = split_region(column)
        if region is not None and base == metric:
            out[region] = column
    return out
