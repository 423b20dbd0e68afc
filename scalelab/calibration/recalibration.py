"""Recalibrators with the scikit-learn contract: ``fit(...)`` returns self, learned
state ends in ``_``, ``predict_proba(...)`` maps new scores to calibrated probabilities.

- :class:`TemperatureScaling` (Guo et al. 2017, §4.2): softmax(z / T), T > 0 minimising
  the NLL of (n, k) logits.
- :class:`PlattScaling` (Platt 1999): σ(a·logit(p) + b) fitted by maximum likelihood
  (Newton's method) on binary probabilities P(y=1); the same map as Kumar et al.'s
  ``get_platt_scaler``.
- :class:`HistogramBinning` (Zadrozny & Elkan 2001): equal-mass bins of p, each mapped
  to its outcome frequency (an empty bin to its midpoint), as Kumar et al.'s
  ``HistogramCalibrator``.
- :class:`IsotonicCalibrator` (Zadrozny & Elkan 2002): the monotone least-squares fit
  by pool-adjacent-violators, interpolated linearly and clipped outside the data, as
  scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``.
- :class:`ScalingBinning` (Kumar, Liang & Ma 2019, §4): Platt scaling, then equal-mass
  bins of the scaled values, each mapped to the mean scaled value in it — calibration
  error measurable with few samples, as their ``PlattBinnerCalibrator`` (fitted on
  the same data; pass a held-out split yourself if you follow the paper's 3-way split).

Each is a :class:`scalelab._estimator.Estimator`: ``get_params``/``set_params``/
``clone``, a refit forgets the earlier fit, and ``predict_proba`` before ``fit`` raises
:class:`~scalelab._errors.NotFittedError`.

The binary recalibrators take (n,) probabilities of the positive event (e.g. of a
threshold exceedance) and 0/1 labels; for a classifier's top label pass its
confidence and whether it was right.
"""

from __future__ import annotations

import warnings

import numpy as np

from scalelab._errors import InputTypeError, ScalelabError, ScalelabWarning
from scalelab._estimator import Estimator, check_is_fitted
from scalelab.calibration._arrays import as_numpy
from scalelab.calibration.classification import _check_probs_labels, bin_edges

_EPS = 1e-12
LOG_T_BOUNDS = (-6.0, 6.0)  # log temperature searched in [e^-6, e^6]


def _binary(probs, labels, name: str):
    shape = (np.shape(as_numpy(probs, name="probs", func=f"{name}.fit"))
             if not hasattr(probs, "shape") else tuple(probs.shape))
    if len(shape) == 2:
        raise ScalelabError(f"{name}.fit: probs must be (n,) probabilities of the positive "
                            f"event, got shape {shape}; for a classifier's top label pass "
                            f"probs.max(axis=1) with labels probs.argmax(axis=1) == y.")
    return _check_probs_labels(probs, labels, f"{name}.fit", "p_positive")


def _numeric(values, what: str, name: str) -> np.ndarray:
    """``values`` as a float64 array, or one sentence when they are not numbers."""
    array = as_numpy(values, name=what, func=name)
    if array.dtype.kind not in "biuf":
        raise InputTypeError(f"{name}: {what} must be numeric, got dtype {array.dtype}.")
    return array.astype(np.float64)


def _probs_in(probs, name: str) -> np.ndarray:
    probs = _numeric(probs, "probs", f"{name}.predict_proba")
    if probs.ndim != 1 or np.isnan(probs).any() or (probs < 0).any() or (probs > 1).any():
        raise ScalelabError(f"{name}.predict_proba: probs must be a 1-D array of probabilities "
                            f"in [0, 1] without NaN.")
    return probs


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class TemperatureScaling(Estimator):
    """softmax(logits / T) with the temperature T fitted by minimum NLL (Guo et al. 2017)."""

    _fitted_attribute = "temperature_"

    def fit(self, logits, labels) -> "TemperatureScaling":
        from scipy.optimize import minimize_scalar

        self._reset()
        logits = _numeric(logits, "logits", "TemperatureScaling.fit")
        labels = _numeric(labels, "labels", "TemperatureScaling.fit")
        if logits.ndim != 2 or labels.shape != (logits.shape[0],) or not np.isfinite(logits).all():
            raise ScalelabError("TemperatureScaling.fit: logits must be finite (n, k) with labels "
                                f"(n,), got {logits.shape} and {labels.shape}.")
        if logits.shape[0] < 2 or logits.shape[1] < 2:
            raise ScalelabError(f"TemperatureScaling.fit needs at least 2 samples of at least 2 "
                                f"classes, got logits of shape {logits.shape}.")
        if (labels != np.round(labels)).any():
            raise ScalelabError("TemperatureScaling.fit: labels must be whole class indices.")
        labels = labels.astype(np.int64)
        if labels.min() < 0 or labels.max() >= logits.shape[1]:
            raise ScalelabError(f"TemperatureScaling.fit: labels must be class indices in "
                                f"[0, {logits.shape[1] - 1}].")
        true_logit = logits[np.arange(logits.shape[0]), labels]

        def nll_of(log_t):
            scaled = logits / np.exp(log_t)
            top = scaled.max(axis=1)
            log_z = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
            return float(np.mean(log_z - true_logit / np.exp(log_t)))

        result = minimize_scalar(nll_of, bounds=LOG_T_BOUNDS, method="bounded",
                                 options={"xatol": 1e-10})
        if min(abs(result.x - bound) for bound in LOG_T_BOUNDS) < 1e-3:
            warnings.warn(f"TemperatureScaling.fit: the temperature ran to its bound "
                          f"({np.exp(result.x):.3g}), so the NLL has no minimum inside; the "
                          f"logits separate the labels perfectly or not at all — fit on more, "
                          f"held-out samples.", ScalelabWarning, stacklevel=2)
        self.temperature_ = float(np.exp(result.x))
        return self

    def predict_proba(self, logits) -> np.ndarray:
        check_is_fitted(self)
        logits = _numeric(logits, "logits", "TemperatureScaling.predict_proba")
        if logits.ndim == 0 or logits.shape[-1] < 2:
            raise ScalelabError(f"TemperatureScaling.predict_proba: logits must hold at least 2 "
                                f"classes along the last axis, got shape {logits.shape}.")
        scaled = logits / self.temperature_
        scaled = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
        return scaled / scaled.sum(axis=-1, keepdims=True)


class PlattScaling(Estimator):
    """σ(a·logit(p) + b) for binary probabilities p = P(y=1), fitted by maximum likelihood."""

    _fitted_attribute = "intercept_"

    def __init__(self, max_iter: int = 100, tol: float = 1e-12):
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, probs, labels) -> "PlattScaling":
        self._reset()
        self._check_number("max_iter", integer=True, minimum=1)
        self._check_number("tol", minimum=0, exclusive=True)
        probs, labels = _binary(probs, labels, "PlattScaling")
        if labels.min() == labels.max():
            raise ScalelabError("PlattScaling.fit: labels hold a single class; need both 0 and 1.")
        design = np.column_stack([_logit(probs), np.ones_like(probs)])
        coef = np.zeros(2)
        for _ in range(self.max_iter):  # Newton–Raphson on the logistic log-likelihood
            fitted = 1 / (1 + np.exp(-(design @ coef)))
            gradient = design.T @ (labels - fitted)
            hessian = (design * (fitted * (1 - fitted))[:, None]).T @ design
            step = np.linalg.solve(hessian + 1e-12 * np.eye(2), gradient)
            coef += step
            if np.abs(step).max() < self.tol:
                break
        self.slope_, self.intercept_ = float(coef[0]), float(coef[1])
        return self

    def predict_proba(self, probs) -> np.ndarray:
        check_is_fitted(self)
        z = self.slope_ * _logit(_probs_in(probs, "PlattScaling")) + self.intercept_
        return 1 / (1 + np.exp(-z))


class HistogramBinning(Estimator):
    """Equal-mass (or equal-width) bins of p mapped to the outcome frequency in each."""

    _fitted_attribute = "values_"

    def __init__(self, bins: int = 15, binning: str = "mass"):
        self.bins = bins
        self.binning = binning

    def fit(self, probs, labels) -> "HistogramBinning":
        self._reset()
        self._check_number("bins", integer=True, minimum=1)
        if self.binning not in ("mass", "width"):
            raise ScalelabError(f"HistogramBinning: binning must be 'mass' or 'width', got "
                                f"{self.binning!r}.")
        probs, labels = _binary(probs, labels, "HistogramBinning")
        self.edges_, self.values_ = _bin_means(probs, labels.astype(np.float64), self.bins,
                                               self.binning)
        return self

    def predict_proba(self, probs) -> np.ndarray:
        check_is_fitted(self)
        return self.values_[np.searchsorted(self.edges_, _probs_in(probs, "HistogramBinning"))]


def _bin_means(probs, values, bins, binning):
    edges = bin_edges(probs, bins, binning)
    index = np.searchsorted(edges, probs)
    count = np.bincount(index, minlength=edges.size)
    sums = np.bincount(index, weights=values, minlength=edges.size)
    lower = np.concatenate([[0.0], edges[:-1]])
    means = np.where(count > 0, sums / np.maximum(count, 1), (lower + edges) / 2)
    return edges, means


class IsotonicCalibrator(Estimator):
    """Monotone non-decreasing map fitted by pool-adjacent-violators (least squares)."""

    _fitted_attribute = "y_"

    def fit(self, probs, labels) -> "IsotonicCalibrator":
        self._reset()
        probs, labels = _binary(probs, labels, "IsotonicCalibrator")
        x, inverse = np.unique(probs, return_inverse=True)
        weight = np.bincount(inverse).astype(np.float64)
        y = np.bincount(inverse, weights=labels.astype(np.float64)) / weight
        # pool adjacent violators on (y, weight) with a stack of blocks
        means, weights, sizes = [], [], []
        for value, w in zip(y.tolist(), weight.tolist()):
            size = 1
            while means and means[-1] >= value:
                total = weights[-1] + w
                value = (means[-1] * weights[-1] + value * w) / total
                w, size = total, size + sizes[-1]
                means.pop(), weights.pop(), sizes.pop()
            means.append(value), weights.append(w), sizes.append(size)
        self.x_ = x
        self.y_ = np.repeat(means, sizes)
        return self

    def predict_proba(self, probs) -> np.ndarray:
        check_is_fitted(self)
        return np.interp(_probs_in(probs, "IsotonicCalibrator"), self.x_, self.y_)


class ScalingBinning(Estimator):
    """Platt scaling followed by equal-mass binning of the scaled values (Kumar et al. 2019)."""

    _fitted_attribute = "values_"

    def __init__(self, bins: int = 15):
        self.bins = bins

    def fit(self, probs, labels) -> "ScalingBinning":
        self._reset()
        self._check_number("bins", integer=True, minimum=1)
        probs, labels = _binary(probs, labels, "ScalingBinning")
        self.platt_ = PlattScaling().fit(probs, labels)
        scaled = self.platt_.predict_proba(probs)
        self.edges_, self.values_ = _bin_means(scaled, scaled, self.bins, "mass")
        return self

    def predict_proba(self, probs) -> np.ndarray:
        check_is_fitted(self)
        scaled = self.platt_.predict_proba(probs)
        return self.values_[np.searchsorted(self.edges_, scaled)]
