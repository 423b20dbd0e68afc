"""Figures and the PDF report from a runs table and fits; knows nothing of how runs were made.

- :mod:`scalelab.report.analysis` — every number a report states (fits, predictions,
  backtests, allocation, calibration-metric laws); imports no matplotlib.
- :mod:`scalelab.report.figures` — every figure of the report, a public function a
  notebook can call alone; figures only draw.
- :mod:`scalelab.report.pages`, :mod:`scalelab.report.pdf` — the pages and the writer;
  :mod:`scalelab.report.layout` — page frames, text that flows onto continuation pages,
  tables sized to their cells, log axes; :mod:`scalelab.report.labels` — the words and
  symbols of the columns (the axes from :mod:`scalelab.runs.columns`).

Names are imported on first use, so ``scalelab.report.analysis`` works without matplotlib.
"""

from importlib import import_module

_HOMES = {
    "Analysis": "analysis", "FitFailure": "analysis", "MetricScaling": "analysis",
    "analyse": "analysis", "fit_power_laws": "analysis", "metric_scaling": "analysis",
    "comparison_metric": "analysis",
    "ReportContext": "context",
    "CalibrationLaw": "calibration_fits", "calibration_laws": "calibration_fits",
    "FamilyComparison": "families", "compare_families": "families",
    "label": "figures", "plot_frontier": "figures", "plot_isoflop": "figures",
    "plot_metric_law": "figures", "plot_metric_scaling": "figures",
    "plot_residuals": "figures", "plot_scaling": "figures", "plot_training_curves": "figures",
    "write_report": "pdf",
}

__all__ = sorted([*_HOMES, "parse_target"])


def __getattr__(name: str):
    if name == "parse_target":
        from scalelab.targets import parse_target

        return parse_target
    if name in _HOMES:
        value = getattr(import_module(f"scalelab.report.{_HOMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scalelab.report' has no attribute {name!r}")


def __dir__():
    return __all__
