"""Figures and the PDF report from a runs table and fits; knows nothing of how runs were made.

Every figure of the report is a public function here, so a notebook can draw any one.
"""

from scalelab.report.analysis import Analysis, analyse
from scalelab.report.calibration_laws import CalibrationLaw, calibration_laws
from scalelab.report.families import FamilyComparison, compare_families
from scalelab.report.context import ReportContext
from scalelab.targets import parse_target
from scalelab.report.figures import (fit_power_laws, label, plot_frontier, plot_isoflop,
                                     plot_metric_scaling, plot_residuals, plot_scaling,
                                     plot_training_curves)
from scalelab.report.pdf import write_report

__all__ = ["Analysis", "CalibrationLaw", "FamilyComparison", "ReportContext", "analyse",
           "calibration_laws", "compare_families", "fit_power_laws", "label", "parse_target",
           "plot_frontier", "plot_isoflop", "plot_metric_scaling", "plot_residuals",
           "plot_scaling", "plot_training_curves", "write_report"]
