"""Figures and the PDF report from a runs table and fits; knows nothing of how runs were made."""

from scalelab.report.figures import fit_power_laws, plot_scaling, plot_training_curves
from scalelab.report.pdf import write_report

__all__ = ["fit_power_laws", "plot_scaling", "plot_training_curves", "write_report"]
