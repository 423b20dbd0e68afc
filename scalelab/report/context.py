"""What a report is drawn from: the runs table, its final rows, targets and provenance.

``ReportContext.build(runs, ...)`` checks the table once (one clear sentence when
nothing at all can be drawn) and derives what every page needs. Pages that cannot be
drawn from it raise :class:`~scalelab.ScalelabError`; the PDF writer puts that
sentence on the page instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError
from scalelab.table import final_rows

TARGET_KEYS = ("params", "samples", "compute")


def parse_target(text: str) -> dict[str, float]:
    """``"params=1e8"`` or ``"params=1e8,samples=1e6"`` → ``{"params": 1e8, ...}``."""
    target: dict[str, float] = {}
    for part in str(text).split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in TARGET_KEYS:
            raise ScalelabError(f"target {text!r} is not understood; write KEY=VALUE with KEY "
                                f"one of {', '.join(TARGET_KEYS)} (e.g. params=1e8).")
        try:
            number = float(value)
        except ValueError:
            raise ScalelabError(f"target {text!r}: {value.strip()!r} is not a number.") from None
        if not np.isfinite(number) or number <= 0:
            raise ScalelabError(f"target {text!r}: {key} must be a positive number.")
        target[key] = number
    return target


def targets_from_spec(spec: dict | None) -> list[dict[str, float]]:
    """Targets listed in a spec's ``scalelab.targets`` (a list or a mapping of lists)."""
    raw = ((spec or {}).get("scalelab") or {}).get("targets") or []
    if isinstance(raw, dict):
        raw = [f"{k}={v}" for k, values in raw.items()
               for v in (values if isinstance(values, list) else [values])]
    return [parse_target(t) if isinstance(t, str) else
            parse_target(",".join(f"{k}={v}" for k, v in t.items())) for t in raw]


@dataclass
class ReportContext:
    runs: pd.DataFrame
    final: pd.DataFrame
    y: str = "val_loss"
    targets: list = field(default_factory=list)
    spec: dict | None = None
    source: str = ""
    title: str = "scalelab report"

    @classmethod
    def build(cls, runs: pd.DataFrame, y: str = "val_loss", targets=None, spec=None,
              source: str = "", title: str = "scalelab report") -> "ReportContext":
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
        final = final_rows(runs)
        if "status" in final.columns:
            final = final[final["status"].fillna("finished") == "finished"]
        final = final[np.isfinite(pd.to_numeric(final[y], errors="coerce"))]
        targets = [parse_target(t) if isinstance(t, str) else dict(t) for t in (targets or [])]
        if not targets:
            targets = targets_from_spec(spec)
        return cls(runs=runs, final=final.reset_index(drop=True), y=y, targets=targets,
                   spec=spec, source=str(source), title=title)

    # -- what was swept ------------------------------------------------------------------
    def column_values(self, column: str) -> list:
        if column not in self.runs.columns:
            return []
        return sorted(self.runs[column].dropna().unique().tolist())

    @property
    def variants(self) -> list:
        return self.column_values("loss_variant") or [None]

    def variant_rows(self, variant) -> pd.DataFrame:
        if variant is None or "loss_variant" not in self.final.columns:
            return self.final
        return self.final[self.final["loss_variant"] == variant]

    @property
    def total_compute(self) -> float | None:
        if "flops" not in self.runs.columns:
            return None
        return float(final_rows(self.runs)["flops"].sum())

    @property
    def n_runs(self) -> int:
        return int(self.runs["run_id"].nunique()) if "run_id" in self.runs else len(self.runs)

    def status_counts(self) -> dict:
        if "status" not in self.runs.columns or "run_id" not in self.runs.columns:
            return {}
        per_run = self.runs.drop_duplicates("run_id")["status"].value_counts()
        return {str(k): int(v) for k, v in per_run.items()}


def describe_path(path) -> str:
    return str(Path(path).resolve()) if path else "(in memory)"
