"""Calibration metrics, recalibrators and proper scores; imports without torch.

Plain functions over arrays (numpy; torch tensors are converted), with the axes
named by the caller, in the style of properscoring/scoringrules.
"""

from scalelab.calibration.scores import crps_ensemble
from scalelab.calibration.classification import ece

__all__ = ["ece", "crps_ensemble"]
