"""Helpers over the runs table; kept as an alias of :mod:`scalelab.runs.table`."""

from scalelab.runs.table import final_rows, require_columns

__all__ = ["final_rows", "require_columns"]
