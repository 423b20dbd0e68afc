"""Calibration metrics, recalibrators and proper scores; imports without torch.

Plain functions over arrays, in the style of properscoring/scoringrules: numpy
arrays and (when torch is installed) torch tensors on any device are accepted, the
ensemble axis and the axes to reduce over are named by the caller. Each formula is
documented with its reference in its module:

- :mod:`scalelab.calibration.classification` — ECE (width/mass bins; top-label,
  marginal, binary; l1/l2/max), the debiased calibration error of Kumar et al. 2019,
  Brier score, NLL, reliability diagrams, bootstrap intervals.
- :mod:`scalelab.calibration.scores` — ensemble CRPS (nrg, fair, pwm, almost-fair),
  spread-skill ratio, rank histograms and their flatness, PIT, interval coverage,
  quantile scores.
- :mod:`scalelab.calibration.recalibration` — temperature, Platt, histogram-binning,
  isotonic and scaling-binning recalibrators (``fit`` / ``predict_proba``).
"""

from scalelab.calibration.classification import (
    BootstrapInterval,
    ReliabilityCurve,
    bootstrap_ci,
    brier_score,
    calibration_error,
    ece,
    nll,
    plot_reliability,
    reliability_curve,
)
from scalelab.calibration.recalibration import (
    HistogramBinning,
    IsotonicCalibrator,
    PlattScaling,
    ScalingBinning,
    TemperatureScaling,
)
from scalelab.calibration.scores import (
    RankDeparture,
    RankFlatness,
    crps_ensemble,
    interval_coverage,
    pit,
    quantile_score,
    rank_histogram,
    rank_histogram_departure,
    rank_histogram_flatness,
    spread_skill_ratio,
)

__all__ = [
    "HistogramBinning",
    "IsotonicCalibrator",
    "PlattScaling",
    "ScalingBinning",
    "TemperatureScaling",
    "BootstrapInterval",
    "RankDeparture",
    "RankFlatness",
    "ReliabilityCurve",
    "bootstrap_ci",
    "brier_score",
    "calibration_error",
    "crps_ensemble",
    "ece",
    "interval_coverage",
    "nll",
    "pit",
    "plot_reliability",
    "quantile_score",
    "rank_histogram",
    "rank_histogram_departure",
    "rank_histogram_flatness",
    "reliability_curve",
    "spread_skill_ratio",
]
