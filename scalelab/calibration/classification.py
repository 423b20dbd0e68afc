"""Calibration of classification and exceedance probabilities.

Binned calibration error of probabilities p against outcomes y ∈ {0, 1}: points
fall into bins B_b (right-closed, (e_{b−1}, e_b], so a confidence of exactly 1.0 lands
in the last bin and 0.0 in the first), and with n_b points, mean probability p̄_b and
outcome frequency ȳ_b in bin b (Naeini et al. 2015; Guo et al. 2017, eq. 3)::

    ECE_1   = Σ_b (n_b/n) |p̄_b − ȳ_b|                   (norm="l1")
    ECE_2   = ( Σ_b (n_b/n) (p̄_b − ȳ_b)² )^{1/2}         (norm="l2")
    MCE     = max_{b: n_b>0} |p̄_b − ȳ_b|                 (norm="max")

Debiased L2 calibration error (Kumar, Liang & Ma 2019, "Verified Uncertainty
Calibration", §5 and their code): each bin's (p̄_b − ȳ_b)² less the variance of ȳ_b,
ȳ_b(1−ȳ_b)/(n_b − 1) (bins with fewer than 2 points count 0), summed with weights
n_b/n, clipped at 0 and square-rooted. For p ≠ 2 the debiased estimate subtracts the
mean resampled bias under a normal approximation, as in their ``normal_debiased_ce``.

Bins are ``binning="width"`` (edges b/B), ``"mass"`` (edges halfway between the order
statistics that split the sorted probabilities into B near-equal parts, as Kumar et
al.'s ``get_equal_bins``) or ``"unique"`` (one bin per distinct value, for the output
of a binning recalibrator).

What is calibrated (``kind``): ``"top_label"`` the confidence max_k p_k against
whether argmax_k p_k was right; ``"marginal"`` every class column against its one-hot
label, aggregated over classes by the same norm (mean for l1, root-mean-square for
l2, max for max), as Kumar et al.'s ``mode='marginal'``. A 1-D input of shape (n,) is
ambiguous and must say what it holds with ``binary``: ``"p_positive"`` — P(y=1)
(e.g. the probability of exceeding a threshold) with labels 0/1, or
``"confidence"`` — a top-label confidence with labels 1 where the prediction was
correct. Both are scored the same way (probability against 0/1 outcome); the keyword
exists so that no caller's meaning is guessed.

Too few points per bin are refused, not scored: a binned error needs n ≥ 2 and more
points than bins (with one point a bin the plug-in error is mean |p − y|), the debiased
estimate n ≥ 2·bins (its bins of one point count 0, so it would score any input ≈ 0).
Rows of (n, k) probabilities must sum to 1 within 1e-4, or 4 epsilons of a low-precision
dtype (float16: 3.9e-3), so a softmax rounded to float16 passes.

Brier score (Brier 1950): mean Σ_k (p_k − 𝟙{y=k})²; for binary input mean (p − y)².
Negative log-likelihood: mean −log p_y, with p clipped below at ``eps``.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from scalelab._errors import InputTypeError, ScalelabError
from scalelab.calibration._arrays import (as_numpy, check_choice, check_seed, float_eps,
                                         is_integer, is_real)
from scalelab.calibration._toplabel import edge_bin_stats, top_label_checked, width_bin_stats

BINNINGS = ("width", "mass", "unique")
NORMS = ("l1", "l2", "max")
KINDS = ("top_label", "marginal")
BINARY = ("p_positive", "confidence")
SUM_TOLERANCE = 1e-4  # rows of class probabilities must sum to 1 within this ...
SUM_TOLERANCE_EPS = 4  # ... or within this many epsilons of their dtype (float16: 3.9e-3)
EDGE_SCAN_LIMIT = 32  # up to this many bin edges, bin by comparing with each edge


# ---------------------------------------------------------------------------- inputs
def _check_probs_labels(probs, labels, func: str, binary, scan_rows: bool = True,
                        tolerance: float | None = None):
    """Validated (probs float array (n,) or (n, k), labels int64 (n,)).

    ``scan_rows=False`` leaves out the scans of (n, k) values (NaN, range, row sums)
    for a caller that makes them in its own pass (``_top_label_checked``).
    """
    tolerance = sum_tolerance(probs) if tolerance is None else tolerance
    probs = as_numpy(probs, name="probs", func=func)
    if probs.dtype.kind not in "biuf":
        raise InputTypeError(f"{func}: probs must be numeric probabilities, got dtype "
                            f"{probs.dtype}.")
    if probs.dtype.kind != "f":
        probs = probs.astype(np.float64)
    elif probs.itemsize < 4:  # float16: checked and binned in float32, its rounding allowed for
        probs = probs.astype(np.float32)
    labels = as_numpy(labels, name="labels", func=func)
    if probs.ndim not in (1, 2) or probs.shape[0] == 0:
        raise ScalelabError(f"{func}: probs must be (n,) or (n, k) with n ≥ 1, got shape "
                            f"{probs.shape}.")
    if labels.shape != (probs.shape[0],):
        raise ScalelabError(f"{func}: labels must have shape ({probs.shape[0]},) to match probs "
                            f"{probs.shape}, got {labels.shape}.")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise ScalelabError(f"{func}: labels must be whole numbers (class indices or 0/1).")
    elif labels.dtype.kind not in "biu":
        raise InputTypeError(f"{func}: labels must be integers, got dtype {labels.dtype}.")
    labels = labels.astype(np.int64, copy=False)
    if scan_rows or probs.ndim == 1:
        low, high = probs.min(), probs.max()
        if np.isnan(low) or np.isnan(high):
            raise ScalelabError(f"{func}: probs hold NaN values; drop or fill them first.")
        if low < 0 or high > 1:
            raise ScalelabError(f"{func}: probabilities must lie in [0, 1], got values in "
                                f"[{low:g}, {high:g}]; pass probabilities, not logits.")
    if probs.ndim == 1:
        if binary is None:
            raise ScalelabError(f"{func}: probs of shape (n,) are ambiguous; pass "
                                f"binary='p_positive' if they are P(y=1) or "
                                f"binary='confidence' if they are top-label confidences.")
        check_choice(func, "binary", binary, BINARY)
        if labels.min() < 0 or labels.max() > 1:
            raise ScalelabError(f"{func}: with probs of shape (n,) labels must be 0 or 1, got "
                                f"values in [{labels.min()}, {labels.max()}].")
    else:
        if binary is not None:
            raise ScalelabError(f"{func}: binary= applies to probs of shape (n,) only; for "
                                f"(n, k) class probabilities leave it unset.")
        classes = probs.shape[1]
        if scan_rows:
            row_sums = np.einsum("ij->i", probs)  # ~4× faster than sum(axis=1) for short rows
            worst = float(np.abs(row_sums - 1).max())
            if worst > tolerance:
                raise ScalelabError(f"{func}: each row of probs must sum to 1 (worst row is off "
                                    f"by {worst:.3g}); normalise them, e.g. with a softmax.")
        if labels.min() < 0 or labels.max() >= classes:
            raise ScalelabError(f"{func}: labels must be class indices in [0, {classes - 1}], got "
                                f"values in [{labels.min()}, {labels.max()}].")
    return probs, labels


def sum_tolerance(probs) -> float:
    """How far a row of ``probs`` may sum from 1: ``SUM_TOLERANCE``, or for a low-precision
    dtype (float16, bfloat16) ``SUM_TOLERANCE_EPS`` of its epsilons — a softmax rounded to
    float16 is off by up to ~one epsilon and must pass."""
    return max(SUM_TOLERANCE, SUM_TOLERANCE_EPS * float_eps(probs))


def _columns(probs: np.ndarray, labels: np.ndarray, kind: str):
    """(probability, outcome) pairs to calibrate: one for binary, k for marginal."""
    if probs.ndim == 1:
        return [(probs, labels)]
    columns = np.ascontiguousarray(probs.T)  # one contiguous pass per class
    return [(columns[k], labels == k) for k in range(probs.shape[1])]


def _prepared_columns(probs, labels, func: str, binary, kind, default_kind: str):
    """Validated inputs as the (probability, outcome) columns to calibrate.

    Top-label columns of (n, k) input come from one cache-blocked pass that also
    checks the values (``_toplabel.top_label_checked``); every error is the one, and
    in the order, that the full ``_check_probs_labels`` gives.
    """
    tolerance = sum_tolerance(probs)
    try:
        probs, labels = _check_probs_labels(probs, labels, func, binary, scan_rows=False)
        kind = _resolve_kind(kind, probs, func, default_kind)
    except ScalelabError:
        _check_probs_labels(probs, labels, func, binary)  # the scans' errors come first
        raise
    # probs is now float32 for float16 input; the tolerance stays the input dtype's
    if kind == "top_label":
        return [top_label_checked(probs, labels, tolerance,
                                  lambda: _check_probs_labels(probs, labels, func, binary,
                                                              tolerance=tolerance))]
    if probs.ndim == 2:  # the row scans left out above
        _check_probs_labels(probs, labels, func, binary, tolerance=tolerance)
    return _columns(probs, labels, kind)


def _resolve_kind(kind, probs, func: str, default: str) -> str:
    if probs.ndim == 1:
        if kind is not None:
            raise ScalelabError(f"{func}: kind= applies to (n, k) probs; for the top-label error "
                                f"of a binary classifier pass np.stack([1 - p, p], axis=1).")
        return "binary"
    kind = default if kind is None else kind
    check_choice(func, "kind", kind, KINDS)
    return kind


# ---------------------------------------------------------------------------- binning
def bin_edges(values: np.ndarray, bins: int, binning: str) -> np.ndarray:
    """Upper bin edges (the last is 1.0); bins are right-closed: (e_{b−1}, e_b]."""
    if binning == "width":
        return np.arange(1, bins + 1) / bins
    if binning == "unique":
        distinct = np.unique(values)
        return np.append((distinct[:-1] + distinct[1:]) / 2.0, 1.0)
    n = values.size
    bins = min(bins, n)
    sizes = np.full(bins, n // bins)
    sizes[: n % bins] += 1  # np.array_split's part sizes
    splits = np.cumsum(sizes)[:-1]
    if splits.size == 0:
        return np.array([1.0])
    kth = np.unique(np.concatenate([splits - 1, splits]))
    ordered = np.partition(values, kth)
    edges = (ordered[splits - 1].astype(np.float64) + ordered[splits]) / 2.0
    return np.unique(np.append(edges, 1.0))


def _bin_stats(prob: np.ndarray, outcome: np.ndarray, bins: int, binning: str):
    """Per-bin count, Σp and Σy."""
    edges = bin_edges(prob, bins, binning)
    if binning == "width":
        # ceil(p·B) − 1 with a fix where rounding crossed an edge, in cache-sized
        # blocks; equal to searchsorted(edges, p, 'left') but several times faster
        return (*width_bin_stats(prob, outcome, bins), edges)
    if edges.size <= EDGE_SCAN_LIMIT:  # one compare per edge beats a binary search per point
        return (*edge_bin_stats(prob, outcome, edges), edges)
    index = np.searchsorted(edges, prob, side="left")
    size = edges.size
    # one integer bincount gives counts split by outcome (outcomes are 0/1)
    index += size * outcome.astype(np.intp)
    split = np.bincount(index, minlength=2 * size).astype(np.float64)
    count, sum_outcome = split[:size] + split[size:], split[size:]
    np.remainder(index, size, out=index)
    sum_prob = np.bincount(index, weights=prob, minlength=size)
    return count, sum_prob, sum_outcome, edges


def _binned_error(count, sum_prob, sum_outcome, power: float, debias: bool, rng) -> float:
    """Binned l_p calibration error of one column (p=inf: the maximum)."""
    n = count.sum()
    filled = count > 0
    gap = np.zeros_like(count)
    gap[filled] = (sum_prob[filled] - sum_outcome[filled]) / count[filled]
    share = count / n
    if power == np.inf:
        return float(np.abs(gap[filled]).max())
    if not debias:
        return float((share @ np.abs(gap) ** power) ** (1.0 / power))
    if power == 2:
        enough = count >= 2
        freq = np.zeros_like(count)
        freq[filled] = sum_outcome[filled] / count[filled]
        per_bin = np.zeros_like(count)
        per_bin[enough] = gap[enough] ** 2 - freq[enough] * (1 - freq[enough]) / (count[enough] - 1)
        return float(max(share @ per_bin, 0.0) ** 0.5)
    # p ≠ 2: bias under a normal approximation of each bin's frequency (Kumar et al. 2019)
    if (count[filled] < 2).any() or not filled.all():
        raise ScalelabError("calibration_error: the debiased estimate for p ≠ 2 needs every bin to "
                            "hold at least 2 points; use fewer bins or debias=False.")
    freq = sum_outcome / count
    mean_prob = sum_prob / count
    plugin = float((share @ np.abs(gap) ** power) ** (1.0 / power))
    draws = rng.normal(freq, np.sqrt(freq * (1 - freq) / count), size=(1000, count.size))
    resampled = ((np.abs(draws - mean_prob) ** power) @ share) ** (1.0 / power)
    return 2 * plugin - float(resampled.mean())


def _check_enough_points(prob: np.ndarray, bins: int, binning: str, debias: bool,
                         func: str) -> None:
    """Refuse a binned error its points cannot give: with one point per bin (bins ≥ n) the
    plug-in error is just mean |p − y| and the debiased one, whose bins of fewer than 2
    points count 0, is 0 for any input — so the debiased estimate needs n ≥ 2·bins."""
    n = prob.size
    if binning == "unique":
        bins, what = np.unique(prob).size, "bins (one per distinct value, binning='unique')"
    else:
        what = "bins"
    if n < 2:
        raise ScalelabError(f"{func}: a calibration error needs at least 2 points, got {n}; "
                            f"score more samples.")
    need = 2 * bins if debias else bins + 1
    if n < need:
        fix = (f"use bins={max(1, n // 2 if debias else n - 1)} or fewer"
               if binning != "unique" else "use binning='mass' with fewer bins")
        per_bin = "2 per bin" if debias else "more points than bins"
        raise ScalelabError(f"{func}: {n} points in {bins} {what} are too few (the "
                            f"{'debiased ' if debias else ''}estimate needs {per_bin}, {need} in "
                            f"all); {fix}, or score more points.")


def _calibration_error(probs, labels, *, bins, binning, power, debias, kind, binary, func, seed):
    if not is_integer(bins) or bins < 1:
        raise ScalelabError(f"{func}: bins must be a positive integer, got {bins!r}.")
    check_choice(func, "binning", binning, BINNINGS)
    check_seed(seed, func)
    columns = _prepared_columns(probs, labels, func, binary, kind,
                                "top_label" if func == "ece" else "marginal")
    _check_enough_points(columns[0][0], bins, binning, debias, func)
    rng = np.random.default_rng(seed)
    errors = []
    for prob, outcome in columns:
        count, sum_prob, sum_outcome, _ = _bin_stats(prob, outcome, bins, binning)
        errors.append(_binned_error(count, sum_prob, sum_outcome, power, debias, rng))
    if len(errors) == 1:
        return errors[0]
    errors = np.asarray(errors)
    if power == np.inf:
        return float(errors.max())
    return float(np.mean(errors ** power) ** (1.0 / power))


# ---------------------------------------------------------------------------- public
def ece(probs, labels, bins: int = 15, binning: str = "width", norm: str = "l1", kind=None,
        binary=None) -> float:
    """Plug-in expected calibration error (Guo et al. 2017, eq. 3).

    ``probs``: (n, k) class probabilities with integer ``labels`` (n,), or (n,)
    probabilities with ``binary="p_positive"`` (P(y=1), labels 0/1) or
    ``binary="confidence"`` (top-label confidence, labels 1 = correct).
    ``kind``: ``"top_label"`` (default for (n, k)) or ``"marginal"`` (class-wise).
    ``norm``: ``"l1"`` (ECE), ``"l2"`` or ``"max"`` (MCE). ``binning``: ``"width"``,
    ``"mass"`` or ``"unique"``.
    """
    check_choice("ece", "norm", norm, NORMS)
    power = {"l1": 1.0, "l2": 2.0, "max": np.inf}[norm]
    return _calibration_error(probs, labels, bins=bins, binning=binning, power=power,
                              debias=False, kind=kind, binary=binary, func="ece", seed=None)


def calibration_error(probs, labels, p: int = 2, debias: bool = True, bins: int = 15,
                      binning: str = "mass", kind=None, binary=None, seed=None) -> float:
    """l_p calibration error, debiased by default (Kumar, Liang & Ma 2019).

    Defaults match ``calibration.get_calibration_error`` for continuous probabilities
    (15 equal-mass bins, marginal over classes); ``p=2, debias=True`` is their
    debiased estimator, near 0 for a calibrated model where the plug-in ECE is not.
    For probabilities with few distinct values use ``binning="unique"``. ``seed``
    drives the resampling of the p ≠ 2 debiased estimate.
    """
    if not is_integer(p) or p < 1:
        raise ScalelabError(f"calibration_error: p must be an integer ≥ 1, got {p!r}.")
    if not isinstance(debias, (bool, np.bool_)):  # bool("False") is True
        raise InputTypeError(f"calibration_error: debias must be True or False, got "
                             f"{debias!r}.")
    return _calibration_error(probs, labels, bins=bins, binning=binning, power=float(p),
                              debias=bool(debias), kind=kind, binary=binary,
                              func="calibration_error", seed=seed)


def brier_score(probs, labels, binary=None) -> float:
    """Mean Brier score: Σ_k (p_k − 𝟙{y=k})² for (n, k) probs, (p − y)² for (n,) probs."""
    probs, labels = _check_probs_labels(probs, labels, "brier_score", binary)
    if probs.ndim == 1:
        return float(np.mean((probs - labels) ** 2))
    rows = np.arange(probs.shape[0])
    squares = np.einsum("ij,ij->i", probs, probs)
    return float(np.mean(squares - 2 * probs[rows, labels] + 1))


def nll(probs, labels, binary=None, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood −log p_y, p clipped below at ``eps`` (no inf for p = 0)."""
    probs, labels = _check_probs_labels(probs, labels, "nll", binary)
    if probs.ndim == 1:
        p_true = np.where(labels == 1, probs, 1 - probs)
    else:
        p_true = probs[np.arange(probs.shape[0]), labels]
    return float(-np.mean(np.log(np.maximum(p_true, eps))))


class ReliabilityCurve(NamedTuple):
    """The data of a reliability diagram: per bin, mean confidence, observed frequency
    (accuracy), number of points (NaN confidence/accuracy for empty bins) and upper edges."""

    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    edges: np.ndarray


def reliability_curve(probs, labels, bins: int = 15, binning: str = "width", binary=None
                      ) -> ReliabilityCurve:
    """Per-bin mean confidence, accuracy and count of the top-label (or binary) probabilities."""
    func = "reliability_curve"
    if not is_integer(bins) or bins < 1:
        raise ScalelabError(f"{func}: bins must be a positive integer, got {bins!r}.")
    check_choice(func, "binning", binning, BINNINGS)
    (prob, outcome), = _prepared_columns(probs, labels, func, binary, None, "top_label")
    count, sum_prob, sum_outcome, edges = _bin_stats(prob, outcome, bins, binning)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ReliabilityCurve(sum_prob / count, sum_outcome / count, count.astype(np.int64),
                                edges)


def plot_reliability(curve: ReliabilityCurve, ax=None, label=None):
    """Draw a reliability diagram (accuracy against confidence, with the diagonal)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    filled = curve.count > 0
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    ax.plot(curve.confidence[filled], curve.accuracy[filled], marker="o", label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("observed frequency")
    ax.set_aspect("equal")
    if label is not None:
        ax.legend(loc="upper left")
    return ax


class BootstrapInterval(NamedTuple):
    estimate: float
    low: float
    high: float


def bootstrap_ci(metric: Callable, probs, labels, level: float = 0.9, resamples: int = 200,
                 seed=None, **metric_kwargs) -> BootstrapInterval:
    """Percentile bootstrap interval of any metric here (ece, calibration_error, brier_score, nll).

    Resamples the (prob, label) pairs with replacement ``resamples`` times (Efron &
    Tibshirani 1993, §13.3); ``metric_kwargs`` go to the metric unchanged.
    """
    if not (is_real(level) and 0 < level < 1):
        raise ScalelabError(f"bootstrap_ci: level must be a float in (0, 1), got {level!r}.")
    level = float(level)  # np.float32 too, computed with in float64
    if not callable(metric):
        raise InputTypeError(f"bootstrap_ci: metric must be a function such as ece or "
                            f"brier_score, got {type(metric).__name__}.")
    if not is_integer(resamples) or resamples < 2:
        raise ScalelabError(f"bootstrap_ci: resamples must be an integer ≥ 2, got {resamples!r}.")
    check_seed(seed, "bootstrap_ci")
    probs = as_numpy(probs, name="probs", func="bootstrap_ci")
    labels = as_numpy(labels, name="labels", func="bootstrap_ci")
    estimate = metric(probs, labels, **metric_kwargs)  # checks the inputs
    rng = np.random.default_rng(seed)
    n = probs.shape[0]
    if n < 2:
        raise ScalelabError(f"bootstrap_ci: resampling needs at least 2 points, got {n}; score "
                            f"more samples.")
    values = np.array([metric(probs[idx], labels[idx], **metric_kwargs)
                       for idx in (rng.integers(0, n, n) for _ in range(resamples))])
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return BootstrapInterval(float(estimate), float(low), float(high))
