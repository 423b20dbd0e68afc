"""Helpers over the runs table; kept as an alias of :mod:`scalelab.runs.table`."""

from scalelab.runs.table import (budget_savings, compute_spent, final_rows, require_columns,
                                 run_roles, with_data_columns)

__all__ = ["budget_savings", "compute_spent", "final_rows", "require_columns", "run_roles",
           "with_data_columns"]
