"""What a report is drawn from: the runs table, its final rows, targets and provenance.

``ReportContext.build(runs, ...)`` checks the table once (one clear sentence when
nothing at all can be drawn) and derives what every page needs. Pages that cannot be
drawn from it raise :class:`~scalelab.ScalelabError`; the PDF writer puts that
sentence on the page instead.

A run's variant is its whole training objective: its ``loss_variant``, with the
adversarial term where it has one (``mse + 0.01*adversarial``,
:func:`scalelab.runs.table.objective_variants`), so every page draws each apart.

Trunks of data budgets (constant learning rate, never annealed) are left out of the
final rows and of the per-variant tables the laws and frontiers are fitted on; their
branches, whose curves hold the trunk's rows, carry the budgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.laws.regime import check_result, result_rows
from scalelab.runs.table import (best_tuned, budget_savings, compute_spent, finished_mask,
                                 run_roles, with_objective_variants)
from scalelab.targets import parse_target


def spec_settings(spec, source: str = "the spec"):
    """What a report takes from a sweep's spec: ``(metric, settings, document)``.

    ``spec``: a :class:`~scalelab.sweep.SweepSpec` (its typed pieces, taken as given), a
    mapping (the spec's document, e.g. as a store saved it: its ``metric`` and its
    ``scalelab`` section's ``result`` and ``targets`` are parsed here, once, by the same
    declarations as a spec file's) or None (the defaults).
    """
    from scalelab.config import Metric, SweepSettings

    if spec is None:
        return Metric(), SweepSettings(), None
    if hasattr(spec, "settings") and hasattr(spec, "metric"):
        return spec.metric, spec.settings, getattr(spec, "raw", None)
    if not isinstance(spec, dict):
        raise ScalelabError(f"spec must be a SweepSpec or a spec's mapping, got "
                            f"{type(spec).__name__}.")
    section = spec.get("scalelab") or {}
    section = {k: section[k] for k in ("result", "targets") if isinstance(section, dict)
               and k in section}
    return (Metric.from_spec(spec.get("metric"), source),
            SweepSettings.from_section(section, source), spec)


@dataclass
class ReportContext:
    runs: pd.DataFrame
    final: pd.DataFrame
    y: str = "val_loss"
    targets: list = field(default_factory=list)
    spec: dict | None = None  # the spec's document, for the reproducibility page
    source: str = ""
    title: str = "scalelab report"
    result: str = "final"  # each run's value, one of scalelab.result.RESULTS
    #: sentences on the runs left out of the fits (not finished, a bad value), each with
    #: its count; the writer warns them and ``scalelab report`` prints them
    dropped: list = field(default_factory=list)

    @classmethod
    def build(cls, runs: pd.DataFrame, y: str | None = None, targets=None, spec=None,
              source: str = "", title: str = "scalelab report",
              result: str | None = None) -> "ReportContext":
        if not isinstance(runs, pd.DataFrame):
            raise ScalelabError(f"a report needs a runs table (pandas DataFrame), got "
                                f"{type(runs).__name__}; load one with scalelab.load_runs(path).")
        if runs.empty:
            raise ScalelabError("the runs table is empty, so there is nothing to report; run a "
                                "sweep first or check the store path.")
        metric, settings, document = spec_settings(spec)
        y = metric.name if y is None else y
        if y not in runs.columns:
            have = ", ".join(map(str, runs.columns[:15]))
            raise ScalelabError(f"the runs table has no column {y!r} to report (it has: {have}); "
                                f"name the metric with --y or y=... .")
        result = settings.result if result is None else result
        check_result(result)
        runs = numeric_columns(runs, y)
        # an adversarial weight makes another objective: each is its own variant, drawn apart
        runs = with_objective_variants(runs)
        final = result_rows(runs, y, result)
        final = final[run_roles(final) != "trunk"]
        final, dropped = usable_rows(final, y)
        final, tuned = best_tuned(final, y)
        dropped += tuned
        targets = [parse_target(t) if isinstance(t, str) else dict(t) for t in (targets or [])]
        if not targets:
            targets = list(settings.targets)  # parsed with the spec
        return cls(runs=runs, final=final.reset_index(drop=True), y=y, targets=targets,
                   spec=document, source=str(source), title=title, result=result,
                   dropped=dropped)

    # -- what was swept ------------------------------------------------------------------
    def column_values(self, column: str) -> list:
        if column not in self.runs.columns:
            return []
        return sorted(self.runs[column].dropna().unique().tolist())

    @property
    def variants(self) -> list:
        return self.column_values("loss_variant") or [None]

    def variant_rows(self, variant) -> pd.DataFrame:
        """The final rows (each run's result) of one loss variant."""
        return _of_variant(self.final, variant)

    def variant_runs(self, variant) -> pd.DataFrame:
        """Every curve row of one loss variant's runs (trunks left out)."""
        return _of_variant(self.runs[run_roles(self.runs) != "trunk"], variant)

    @property
    def total_compute(self) -> float | None:
        """The training compute spent (a branch counts its decay only)."""
        if "flops" not in self.runs.columns:
            return None
        return compute_spent(self.runs)

    @property
    def budget_savings(self) -> dict | None:
        """Compute saved by branching budgets from trunks (None without branches)."""
        return budget_savings(self.runs)

    @property
    def n_runs(self) -> int:
        return int(self.runs["run_id"].nunique()) if "run_id" in self.runs else len(self.runs)

    def status_counts(self) -> dict:
        if "status" not in self.runs.columns or "run_id" not in self.runs.columns:
            return {}
        per_run = self.runs.drop_duplicates("run_id")["status"].value_counts()
        return {str(k): int(v) for k, v in per_run.items()}


def _of_variant(table: pd.DataFrame, variant) -> pd.DataFrame:
    if variant is None or "loss_variant" not in table.columns:
        return table
    return table[table["loss_variant"] == variant]


#: columns the report reads as numbers (with the metric); a word in one is not a number
NUMERIC_COLUMNS = ("params", "samples", "samples_seen", "flops", "step")
#: columns a power law in log space needs positive, where the table has them
POSITIVE_COLUMNS = ("params", "samples")


def numeric_columns(runs: pd.DataFrame, y: str) -> pd.DataFrame:
    """``runs`` with its numeric columns as numbers: a value that is not one becomes NaN (and
    its run is left out and counted by :func:`usable_rows`); refused in one sentence when the
    metric holds no number at all (e.g. a column of words)."""
    values = pd.to_numeric(runs[y], errors="coerce")
    if values.isna().all() and runs[y].notna().any():
        example = runs[y].dropna().iloc[0]
        raise ScalelabError(f"the column {y!r} holds no numbers (e.g. {str(example)[:30]!r}), so "
                            f"there is nothing to fit; name a numeric metric with --y or y=... .")
    runs = runs.copy()
    for column in (y, *NUMERIC_COLUMNS):
        if column in runs.columns and not pd.api.types.is_numeric_dtype(runs[column]):
            runs[column] = pd.to_numeric(runs[column], errors="coerce")
    return runs


def usable_rows(final: pd.DataFrame, y: str) -> tuple[pd.DataFrame, list]:
    """The finished runs with a finite, positive ``y`` (and positive params and samples), and
    one sentence per reason a run was left out, with its count."""
    dropped = []
    total = len(final)

    def leave_out(bad, why: str) -> pd.DataFrame:
        count = int(bad.sum())
        if count:
            dropped.append(f"left out {count} of {total} runs: {why}.")
        return final[~bad]

    if "status" in final.columns:  # the one rule: scalelab.runs.table.finished_runs
        finished = finished_mask(final)
        counts = final["status"][~finished].value_counts()
        words = ", ".join(f"{n} {s}" for s, n in counts.items())
        final = leave_out(~finished, f"not finished ({words})")
    values = final[y]
    final = leave_out(values.isna(), f"{y} is missing or not a number")
    final = leave_out(np.isinf(final[y]), f"{y} is infinite")
    final = leave_out(final[y] <= 0, f"{y} <= 0, which a power law in log space cannot fit")
    for column in POSITIVE_COLUMNS:
        if column in final.columns:
            bad = ~(final[column] > 0)
            final = leave_out(bad, f"{column} is missing, not a number or <= 0")
    return final, dropped
