"""What a report is drawn from: the runs table, its final rows, targets and provenance.

``ReportContext.build(runs, ...)`` checks the table once (one clear sentence when
nothing at all can be drawn) and derives what every page needs. Pages that cannot be
drawn from it raise :class:`~scalelab.ScalelabError`; the PDF writer puts that
sentence on the page instead.

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
from scalelab.runs.table import budget_savings, compute_spent, run_roles
from scalelab.targets import parse_target, targets_from_spec

@dataclass
class ReportContext:
    runs: pd.DataFrame
    final: pd.DataFrame
    y: str = "val_loss"
    targets: list = field(default_factory=list)
    spec: dict | None = None
    source: str = ""
    title: str = "scalelab report"
    result: str = "final"  # each run's value: its last ("final") or its lowest ("best")

    @classmethod
    def build(cls, runs: pd.DataFrame, y: str = "val_loss", targets=None, spec=None,
              source: str = "", title: str = "scalelab report",
              result: str | None = None) -> "ReportContext":
        if not isinstance(runs, pd.DataFrame):
            raise ScalelabError(f"a report needs a runs table (pandas DataFrame), got "
                                f"{type(runs).__name__}; load one with scalelab.load_runs(path).")
        if runs.empty:
            raise ScalelabError("the runs table is empty, so there is nothing to report; run a "
                                "sweep first or check the store path.")
        if y not in runs.columns:
            have = ", ".join(map(str, runs.columns[:15]))
            raise ScalelabError(f"the runs table has no column {y!r} to report (it has: {have}); "
                                f"name the metric with --y or y=... .")
        if result is None:
            result = ((spec or {}).get("scalelab") or {}).get("result", "final")
        check_result(result)
        final = result_rows(runs, y, result)
        final = final[run_roles(final) != "trunk"]
        if "status" in final.columns:
            final = final[final["status"].fillna("finished") == "finished"]
        final = final[np.isfinite(pd.to_numeric(final[y], errors="coerce"))]
        targets = [parse_target(t) if isinstance(t, str) else dict(t) for t in (targets or [])]
        if not targets:
            targets = targets_from_spec(spec)
        return cls(runs=runs, final=final.reset_index(drop=True), y=y, targets=targets,
                   spec=spec, source=str(source), title=title, result=result)

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
