"""Proper scores and calibration diagnostics for ensemble forecasts of fields.

Every function takes the observation ``obs`` and the ensemble ``ens`` whose members
lie along ``axis`` (``obs`` has ``ens``'s shape without that axis, or broadcasts to
it), and reduces over the axes of the score the caller names in ``reduce_axes``
(``None``: no reduction, ``"all"``: a scalar), optionally with ``weights`` that
broadcast to the score (e.g. ``cos(lat)[:, None]`` on a (lat, lon) grid).

CRPS (Gneiting & Raftery 2007, eq. 21), for M members x_j and observation y::

    CRPS_nrg  = (1/M) Σ_j |x_j − y| − 1/(2M²)      Σ_j Σ_k |x_j − x_k|
    CRPS_fair = (1/M) Σ_j |x_j − y| − 1/(2M(M−1)) Σ_j Σ_k |x_j − x_k|      (Ferro 2014)
    CRPS_pwm  = (1/M) Σ_j |x_j − y| + β₀ − 2β₁,  β₀ = x̄,  β₁ = Σ_i (i−1) x_(i) / (M(M−1))
                (probability-weighted moments, Taillardat et al. 2016; equal to fair)
    afCRPS_α  = α CRPS_fair + (1−α) CRPS_nrg                                (Lang et al. 2024,
                = 1/(2M(M−1)) Σ_j Σ_{k≠j} [|x_j−y| + |x_k−y| − (1−ε)|x_j−x_k|], ε = (1−α)/M)

The pairwise term never forms an M×M array: with the members sorted,
Σ_j Σ_k |x_j − x_k| = 2 Σ_i (2i − M − 1) x_(i)  (i = 1..M), so each estimator is
(1/M) Σ_j |x_j − y| + Σ_i w_i x_(i) with fixed weights w, an O(M log M) sort and two
dot products per point. The numpy path works through the field in cache-sized
chunks (members moved last into a reused buffer, sorted in place, reduced with
two dot products), so 50 × 64 × 128 × 128 float32 needs ~2 MB beyond the
inputs and the output. A torch tensor is scored with torch on its own device.

Spread-skill ratio with the finite-ensemble factor √((M+1)/M) (Fortin et al. 2014,
eq. 7) — of a degenerate ensemble: 0 with a warning when the members never differ
(zero spread), inf with a warning when the mean always equals the observation (zero
error), refused when both (0/0); rank histograms with random tie-breaking (Hamill 2001) and their flatness
(χ² test; Candille & Talagrand 2005 δ, which grows with the sample size; and the
sample-size-free departure from flat of :func:`rank_histogram_departure`); randomised PIT; central-interval coverage;
quantile (pinball) scores (Koenker & Bassett 1978).
"""

from __future__ import annotations

import warnings
from math import prod
from typing import NamedTuple

import numpy as np

from scalelab._errors import InputTypeError, ScalelabError, ScalelabWarning
from scalelab.calibration._arrays import (
    as_float,
    check_choice,
    check_seed,
    check_weights,
    is_real,
    is_torch,
    normalise_axes,
    scalar_or_array,
    weighted_mean,
)

ESTIMATORS = ("nrg", "fair", "pwm", "afair")
_CHUNK_BYTES = 1 << 21  # working buffer per chunk: ~2 MB stays in L2/L3


# ---------------------------------------------------------------------------- inputs
def _ensemble_inputs(obs, ens, axis: int, func: str, min_members: int = 1):
    """Validate shapes; return (obs, ens, axis, members, score_shape, torch?)."""
    torch_in = is_torch(ens)
    if torch_in:
        import torch  # already imported: the caller passed a tensor

        if not ens.is_floating_point():
            ens = ens.double()
        obs = torch.as_tensor(obs.detach() if is_torch(obs) else np.asarray(obs),
                              device=ens.device, dtype=ens.dtype)
        shape = tuple(ens.shape)
    else:
        ens = as_float(ens, "ens", func)
        obs = as_float(obs, "obs", func)
        shape = ens.shape
    ndim = len(shape)
    if ndim == 0:
        raise ScalelabError(f"{func}: ens must have an ensemble axis, got a scalar.")
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        raise InputTypeError(f"{func}: axis must be an integer naming the member axis, got "
                            f"{axis!r}.")
    if not -ndim <= axis < ndim:
        raise ScalelabError(f"{func}: axis {axis} is out of range for an ensemble of shape "
                            f"{shape}; pass the axis that holds the members.")
    axis %= ndim
    members = shape[axis]
    score_shape = shape[:axis] + shape[axis + 1:]
    try:
        broadcast = np.broadcast_shapes(tuple(obs.shape), score_shape)
    except ValueError:
        broadcast = None
    if broadcast != score_shape:
        raise ScalelabError(f"{func}: obs of shape {tuple(obs.shape)} does not match the ensemble "
                            f"{shape} without its member axis {axis} ({score_shape}); check axis.")
    if members < min_members:
        raise ScalelabError(f"{func}: needs at least {min_members} ensemble members along axis "
                            f"{axis}, got {members}.")
    if prod(score_shape) == 0:
        raise ScalelabError(f"{func}: the grid is empty (obs and the ensemble without its member "
                            f"axis have shape {score_shape}); pass at least one point.")
    obs_finite = bool(torch.isfinite(obs).all()) if torch_in else bool(np.isfinite(obs).all())
    if not obs_finite:
        raise ScalelabError(f"{func}: obs holds NaN or infinite values; mask or fill them first.")
    return obs, ens, axis, members, score_shape, torch_in


def _host_ensemble(obs, ens, axis: int, func: str, min_members: int):
    """:func:`_ensemble_inputs` as numpy arrays on the host, NaN members refused (for the
    diagnostics that compare members, where a NaN would silently count as "not below")."""
    obs, ens, axis, members, score_shape, torch_in = _ensemble_inputs(
        obs, ens, axis, func, min_members)
    if torch_in:
        ens, obs = ens.detach().cpu().numpy(), obs.detach().cpu().numpy()
    if np.isnan(ens).any():
        raise ScalelabError(f"{func}: the ensemble holds NaN values; mask or fill them first.")
    return obs, ens, axis, members, score_shape


def _check_finite_result(score, func: str) -> None:
    finite = bool(score.isfinite().all()) if is_torch(score) else bool(np.isfinite(score).all())
    if not finite:
        raise ScalelabError(f"{func}: the ensemble holds NaN or infinite values; mask or fill "
                            f"them first.")


def _reduce(score, reduce_axes, weights, func: str):
    axes = normalise_axes(reduce_axes, score.ndim, func)
    if axes is None and weights is not None:
        raise ScalelabError(f"{func}: weights need reduce_axes (e.g. reduce_axes='all').")
    w = check_weights(weights, tuple(score.shape), func, score if is_torch(score) else None)
    return scalar_or_array(weighted_mean(score, axes, w, func))


# ---------------------------------------------------------------------------- CRPS
def _spread_coefficient(members: int, estimator: str, alpha: float) -> float:
    """c of the estimator: CRPS = (1/M) Σ_j |x_j − y| − c Σ_i (2i − M − 1) x_(i).

    (Σ_j Σ_k |x_j − x_k| = 2 Σ_i (2i − M − 1) x_(i), so c is twice the pair sum's
    factor: 1/M² for nrg, 1/(M(M−1)) for fair and pwm, and for afair
    (1 − ε)/(M(M−1)) with ε = (1 − α)/M, i.e. (M − 1 + α)/(M²(M − 1)).)
    """
    m = float(members)
    if estimator == "nrg":
        return 1.0 / (m * m)
    if estimator in ("fair", "pwm"):
        return 1.0 / (m * (m - 1))
    return (m - 1 + alpha) / (m * m * (m - 1))  # afair


def _crps_numpy(obs: np.ndarray, ens: np.ndarray, axis: int, coefficient: float) -> np.ndarray:
    members = ens.shape[axis]
    dtype = np.result_type(ens.dtype, obs.dtype)
    score_shape = ens.shape[:axis] + ens.shape[axis + 1:]
    lead, trail = prod(ens.shape[:axis]), prod(ens.shape[axis + 1:])
    ens3 = np.ascontiguousarray(ens).reshape(lead, members, trail)
    obs2 = np.ascontiguousarray(np.broadcast_to(obs, score_shape), dtype=dtype).reshape(lead, trail)
    out = np.empty((lead, trail), dtype=dtype)
    rank = 2.0 * np.arange(1, members + 1) - members - 1  # 2i − M − 1
    w_sorted = (-coefficient * rank).astype(dtype)
    w_skill = np.full(members, 1.0 / members, dtype=dtype)
    chunk = max(64, _CHUNK_BYTES // (members * dtype.itemsize))
    buf_full = np.empty((chunk, members), dtype=dtype)

    skill_full = np.empty(chunk, dtype=dtype)

    # einsum, not matmul: a BLAS call per chunk wakes its thread pool each time,
    # which costs more than the product itself (10× slower on a busy 2-core machine)
    def score_block(block_t, y, dest):  # block_t: (c, M) view, y: (c,), dest: (c,)
        buf, skill = buf_full[: len(y)], skill_full[: len(y)]
        np.copyto(buf, block_t)
        buf.sort(axis=1)
        np.einsum("ij,j->i", buf, w_sorted, out=dest)
        np.subtract(buf, y[:, None], out=buf)
        np.abs(buf, out=buf)
        np.einsum("ij,j->i", buf, w_skill, out=skill)
        dest += skill

    if trail == 1:  # members already last: chunk over rows
        ens2, y_all, out_all = ens3[:, :, 0], obs2[:, 0], out[:, 0]
        for start in range(0, lead, chunk):
            stop = min(start + chunk, lead)
            score_block(ens2[start:stop], y_all[start:stop], out_all[start:stop])
    else:  # members before the grid: transpose one chunk at a time
        for row in range(lead):
            for start in range(0, trail, chunk):
                stop = min(start + chunk, trail)
                score_block(ens3[row, :, start:stop].T, obs2[row, start:stop],
                            out[row, start:stop])
    return out.reshape(score_shape)


def crps_torch(obs, ens, axis: int = 0, estimator: str = "nrg", alpha: float = 0.95):
    """The torch backend of :func:`crps_ensemble`: the CRPS per point, differentiable.

    Gradients flow to ``ens`` and ``obs`` (the sort passes them to the members), so
    the training losses ``crps_nrg``/``crps_fair``/``crps_afair`` call this. Nothing
    is checked but the estimator's name, and nothing is read back to the host: a
    NaN member gives a NaN score (a training loop reads that as divergence).
    :func:`crps_ensemble` validates its inputs, then calls this.
    """
    import torch  # already imported: the caller passed a tensor

    check_choice("crps_ensemble", "estimator", estimator, ESTIMATORS)
    members_last = ens.movedim(axis, -1)
    members = members_last.shape[-1]
    rank = 2 * torch.arange(1, members + 1, dtype=ens.dtype, device=ens.device) - members - 1
    # Σ_i (2i − M − 1) x_(i); a product and a sum, not a matmul, which bf16 autocast
    # (a training step) would run in bf16
    spread = (torch.sort(members_last, dim=-1).values * rank).sum(dim=-1)
    skill = (members_last - obs.unsqueeze(-1)).abs().mean(dim=-1)
    return skill - _spread_coefficient(members, estimator, float(alpha)) * spread


def crps_ensemble(obs, ens, axis: int = 0, estimator: str = "nrg", alpha: float = 0.95,
                  reduce_axes=None, weights=None):
    """CRPS of the ensemble ``ens`` (members along ``axis``) against ``obs``.

    ``estimator``: ``"nrg"`` (standard energy form), ``"fair"`` (Ferro 2014, unbiased
    for the infinite ensemble), ``"pwm"`` (probability-weighted moments; same value
    as fair) or ``"afair"`` (almost-fair CRPS of Lang et al. 2024 with weight
    ``alpha``: 1 gives fair, 0 gives nrg). Returns the score per point (obs's shape),
    or its (weighted) mean over ``reduce_axes``; a torch tensor in gives a tensor on
    the same device.
    """
    func = "crps_ensemble"
    check_choice(func, "estimator", estimator, ESTIMATORS)
    if estimator == "afair" and not (is_real(alpha) and 0.0 <= alpha <= 1.0):
        raise ScalelabError(f"{func}: alpha must be a number in [0, 1], got {alpha!r}.")
    min_members = 1 if estimator == "nrg" else 2
    obs, ens, axis, members, score_shape, torch_in = _ensemble_inputs(
        obs, ens, axis, func, min_members)
    if estimator == "afair" and members < 2:
        raise ScalelabError(f"{func}: the afair estimator needs at least 2 members, got 1.")
    if torch_in:
        score = crps_torch(obs, ens, axis, estimator, alpha)
    else:
        with np.errstate(invalid="ignore", over="ignore"):  # inf members: refused just below
            score = _crps_numpy(obs, ens, axis,
                                _spread_coefficient(members, estimator, float(alpha)))
    _check_finite_result(score, func)
    return _reduce(score, reduce_axes, weights, func)


# ---------------------------------------------------------------------------- spread/skill
def spread_skill_ratio(obs, ens, axis: int = 0, reduce_axes="all", weights=None):
    """Spread-skill ratio √((M+1)/M · mean var) / √(mean (x̄ − y)²) (Fortin et al. 2014).

    ``var`` is the unbiased (ddof=1) ensemble variance; the factor (M+1)/M makes a
    statistically consistent ensemble score 1 for any M. Means are taken over
    ``reduce_axes`` (default all: one number) with optional ``weights``.
    """
    func = "spread_skill_ratio"
    obs, ens, axis, members, score_shape, torch_in = _ensemble_inputs(obs, ens, axis, func, 2)
    axes = normalise_axes(reduce_axes, len(score_shape), func)
    if axes is None:
        raise ScalelabError(f"{func}: reduce_axes cannot be None — the ratio is of means; "
                            f"use 'all' or name the axes to average over.")
    if torch_in:
        ens_mean = ens.mean(dim=axis)
        variance = ens.var(dim=axis, correction=1)
    else:
        ens_mean = ens.mean(axis=axis, dtype=np.float64)
        variance = ens.var(axis=axis, ddof=1, dtype=np.float64)
    squared_error = (ens_mean - obs) ** 2
    _check_finite_result(variance, func)
    w = check_weights(weights, score_shape, func, ens if torch_in else None)
    spread = weighted_mean(variance, axes, w, func) * ((members + 1) / members)
    skill = weighted_mean(squared_error, axes, w, func)
    _check_degenerate(spread, skill, func)
    with np.errstate(divide="ignore"):
        ratio = (spread / skill) ** 0.5
    return scalar_or_array(ratio)


def _check_degenerate(spread, skill, func: str) -> None:
    """A ratio of a degenerate ensemble: refuse 0/0, warn for 0 (no spread) and inf (no error)."""
    host = (lambda v: v.detach().cpu().numpy()) if is_torch(spread) else np.asarray
    spread, skill = host(spread), host(skill)
    if ((spread == 0) & (skill == 0)).any():
        raise ScalelabError(f"{func}: every member equals the observation over the averaged "
                            f"points, so spread and error are both 0 and the ratio is undefined; "
                            f"check that obs is not one of the members.")
    if (spread == 0).any():
        warnings.warn(f"{func}: the ensemble has zero spread (all members equal) over the "
                      f"averaged points, so the ratio is 0; check that axis names the member "
                      f"axis and that the members differ.", ScalelabWarning, stacklevel=3)
    if (skill == 0).any():
        warnings.warn(f"{func}: the ensemble mean equals the observation over the averaged "
                      f"points, so the error is 0 and the ratio is inf; check that obs is not "
                      f"the ensemble mean.", ScalelabWarning, stacklevel=3)


# ---------------------------------------------------------------------------- ranks
def _ranks(obs, ens, axis: int, func: str, rng) -> tuple[np.ndarray, int]:
    obs, ens, axis, members, score_shape = _host_ensemble(obs, ens, axis, func, 1)
    y = np.expand_dims(obs, axis)
    below = np.count_nonzero(ens < y, axis=axis)
    ties = np.count_nonzero(ens == y, axis=axis)
    ranks = below
    if ties.any():  # random tie-breaking (Hamill 2001): uniform over the tied positions
        ranks = below + np.floor(rng.random(ties.shape) * (ties + 1)).astype(below.dtype)
    return np.broadcast_to(ranks, score_shape), members


def rank_histogram(obs, ens, axis: int = 0, weights=None, seed=None,
                   per: int | None = None) -> np.ndarray:
    """Counts of the observation's rank among the M members: an array of M+1 bins.

    Rank r = #{x_j < y}, ties broken uniformly at random (Hamill 2001); a flat
    histogram means the observation is indistinguishable from a member. ``weights``
    (broadcast to obs's shape) give weighted counts. ``per``: an axis of ``obs`` to keep,
    one histogram per index along it (e.g. per image), shape ``(n, M+1)``; the same ranks
    as the pooled histogram, which is their sum. Test flatness with
    :func:`rank_histogram_flatness`; measure it apart from the sample size with
    :func:`rank_histogram_departure` (give it the per-image histograms of a field).
    """
    func = "rank_histogram"
    ranks, members = _ranks(obs, ens, axis, func, np.random.default_rng(check_seed(seed, func)))
    w = check_weights(weights, ranks.shape, func)
    w_flat = None if w is None else np.broadcast_to(w, ranks.shape)
    if per is None:
        return np.bincount(ranks.ravel(), weights=None if w_flat is None else w_flat.ravel(),
                           minlength=members + 1)
    if not isinstance(per, (int, np.integer)) or not -ranks.ndim <= per < ranks.ndim:
        raise ScalelabError(f"{func}: per must be an axis of obs (0 … {ranks.ndim - 1}), got "
                            f"{per!r}.")
    ranks = np.moveaxis(ranks, per, 0).reshape(ranks.shape[per], -1)
    if w_flat is not None:
        w_flat = np.moveaxis(w_flat, per, 0).reshape(ranks.shape)
    bins = members + 1
    index = (ranks + bins * np.arange(ranks.shape[0])[:, None]).ravel()
    counts = np.bincount(index, weights=None if w_flat is None else w_flat.ravel(),
                         minlength=bins * ranks.shape[0])
    return counts.reshape(ranks.shape[0], bins)


class RankFlatness(NamedTuple):
    """Flatness of a rank histogram: χ² statistic, its degrees of freedom and p-value,
    and δ = Σ (s_k − N/(M+1))² / (N M/(M+1)) of Candille & Talagrand (2005), ≈ 1 when flat."""

    chi2: float
    dof: int
    p_value: float
    delta: float


def rank_histogram_flatness(counts) -> RankFlatness:
    """χ² goodness-of-fit of a rank histogram to the uniform, and δ (Candille & Talagrand 2005).

    δ ≈ 1 for a flat histogram of independent ranks, but for any histogram that is not
    flat it grows in proportion to the number of counted ranks n: E[δ] = 1 + n·χ²(p‖u)/M
    (p the rank probabilities, u the uniform), so δ of a 64 × 64 field and of a 32 × 32
    one differ fourfold for the same calibration, and neighbouring points of a field are
    correlated, so the χ² p-value is optimistic for gridded data. To compare calibration
    across runs or fit a law to it, use :func:`rank_histogram_departure`, which does not
    scale with n.
    """
    from scipy.stats import chi2 as chi2_dist

    counts = as_float(counts, "counts", "rank_histogram_flatness")
    if not np.isfinite(counts).all():
        raise ScalelabError("rank_histogram_flatness: counts hold NaN or infinite values; pass "
                            "the finite counts that rank_histogram returns.")
    if counts.ndim != 1 or counts.size < 2 or (counts < 0).any() or counts.sum() <= 0:
        raise ScalelabError("rank_histogram_flatness: counts must be a 1-D array of at least 2 "
                            "non-negative counts with a positive total (from rank_histogram).")
    total, bins = counts.sum(), counts.size
    expected = total / bins
    statistic = float(((counts - expected) ** 2).sum() / expected)
    delta = float(((counts - expected) ** 2).sum() / (total * (bins - 1) / bins))
    return RankFlatness(statistic, bins - 1, float(chi2_dist.sf(statistic, bins - 1)), delta)


class RankDeparture(NamedTuple):
    """How far a rank histogram's probabilities lie from flat, apart from the sample size.

    ``departure``: √max(χ̂², 0), the root-mean-square relative departure of the rank
    probabilities from flat, √(Σ_k (K p_k − 1)² / K) over the K = M+1 bins (0 when flat;
    0.1: the bins' probabilities are 10% off 1/K, RMS). ``divergence``: χ̂², the unbiased
    estimate of the χ² divergence χ²(p‖u) = K Σ_k (p_k − 1/K)² (may be slightly negative for
    a flat histogram). ``n``: the ranks counted; ``n_eff``: the effective number of
    independent ranks (n for a 1-D histogram; fewer when neighbours are correlated).
    """

    departure: float
    divergence: float
    n: float
    n_eff: float


def rank_histogram_departure(counts) -> RankDeparture:
    """The rank histogram's departure from flat, estimated without bias at any sample size.

    ``counts``: one histogram (K bins; its ranks taken as independent), or one per group of
    ranks, ``(groups, K)`` (e.g. per image: :func:`rank_histogram` with ``per=0``), the
    groups independent of one another while the ranks within a group may be correlated
    (neighbouring pixels of a field).

    With group frequencies f_i = c_i/n_i and g_i = f_i − 1/K, the cross-group products
    Δ̂² = Σ_{i≠j} n_i n_j ⟨g_i, g_j⟩ / Σ_{i≠j} n_i n_j = (|Σ_i n_i g_i|² − Σ_i n_i² |g_i|²) /
    (n² − Σ_i n_i²) estimate Δ² = Σ_k (p_k − 1/K)² without bias, whatever the correlation
    within a group (a U-statistic over independent groups; with one rank per group it is
    the multinomial's unbiased estimate, K Σ_k c_k(c_k − 1)/(n(n − 1)) − 1 for χ̂²). The
    squared deviation of the pooled histogram, Σ_k (p̂_k − 1/K)², exceeds Δ̂² by its noise,
    (1 − Σ p̂²)/n_eff, which gives ``n_eff``. δ of :func:`rank_histogram_flatness`, in
    contrast, estimates 1 + n·χ²(p‖u)/M and grows with n.
    """
    counts = as_float(counts, "counts", "rank_histogram_departure")
    if counts.ndim == 1:
        counts = counts[None, :]
        single = True
    else:
        single = False
    if counts.ndim != 2 or counts.shape[-1] < 2 or (counts < 0).any() or counts.sum() <= 0:
        raise ScalelabError("rank_histogram_departure: counts must be one histogram of at least "
                            "2 non-negative counts, or one per group (groups, bins), with a "
                            "positive total (from rank_histogram).")
    counts = counts.astype(np.float64)
    sizes = counts.sum(axis=1)
    counts, sizes = counts[sizes > 0], sizes[sizes > 0]
    total, bins = sizes.sum(), counts.shape[1]
    pooled = counts.sum(axis=0) / total
    if single:  # each rank its own group: Σ_i n_i² |g_i|² = n (1 − 1/K)
        own = total * (1 - 1 / bins)
        pairs = total**2 - total
    else:
        g = counts / sizes[:, None] - 1 / bins
        own = float((sizes**2 * (g**2).sum(axis=1)).sum())
        pairs = total**2 - float((sizes**2).sum())
    if pairs <= 0:
        raise ScalelabError("rank_histogram_departure: the departure needs ranks from at least "
                            "two groups (or two ranks); give more than one image's histogram.")
    spread = float(((pooled - 1 / bins) ** 2).sum())
    delta2 = (total**2 * spread - own) / pairs
    noise = spread - delta2
    n_eff = float((1 - (pooled**2).sum()) / noise) if noise > 0 else float("inf")
    divergence = bins * delta2
    return RankDeparture(float(np.sqrt(max(divergence, 0.0))), float(divergence),
                         float(total), float(total) if single else n_eff)


def pit(obs, ens, axis: int = 0, seed=None) -> np.ndarray:
    """Randomised PIT values u = (r + V)/(M+1), V ~ U(0, 1), r the rank of obs.

    u is exactly uniform on [0, 1] when the observation is exchangeable with the
    members (the continuous form of the rank histogram; Gneiting et al. 2007, §3.1).
    """
    rng = np.random.default_rng(check_seed(seed, "pit"))
    ranks, members = _ranks(obs, ens, axis, "pit", rng)
    return (ranks + rng.random(ranks.shape)) / (members + 1)


def interval_coverage(obs, ens, axis: int = 0, level: float = 0.9, reduce_axes="all",
                      weights=None):
    """Fraction of observations inside the ensemble's central ``level`` interval.

    The interval's ends are the empirical (1−level)/2 and (1+level)/2 quantiles of
    the members (numpy's linear interpolation); a calibrated ensemble covers
    ≈ ``level`` (up to the finite-M bias of empirical quantiles).
    """
    func = "interval_coverage"
    if not (is_real(level) and 0.0 < level < 1.0):
        raise ScalelabError(f"{func}: level must be a number in (0, 1), got {level!r}.")
    level = float(level)  # np.float32 too, computed with in float64
    obs, ens, axis, members, score_shape = _host_ensemble(obs, ens, axis, func, 2)
    lower, upper = np.quantile(ens, [(1 - level) / 2, (1 + level) / 2], axis=axis)
    inside = ((obs >= lower) & (obs <= upper)).astype(np.float64)
    return _reduce(inside, reduce_axes, weights, func)


def quantile_score(obs, quantiles, levels, axis: int = -1, reduce_axes=None, weights=None):
    """Pinball loss of quantile forecasts, per level (Koenker & Bassett 1978).

    ``quantiles`` holds one forecast per level in ``levels`` along ``axis``; the
    score is ρ_τ(y − q) = (𝟙{y < q} − τ)(q − y), returned with the level axis last
    (before any reduction over the other axes in ``reduce_axes``). Twice its mean over
    levels approximates the CRPS.
    """
    func = "quantile_score"
    levels = as_float(levels, "levels", func)
    obs, quantiles, axis, n_levels, score_shape, torch_in = _ensemble_inputs(
        obs, quantiles, axis, func, 1)
    if torch_in:
        quantiles, obs = quantiles.detach().cpu().numpy(), obs.detach().cpu().numpy()
    if levels.shape != (n_levels,) or (levels <= 0).any() or (levels >= 1).any():
        raise ScalelabError(f"{func}: levels must be {n_levels} numbers in (0, 1), one per "
                            f"quantile along axis {axis}, got shape {levels.shape}.")
    q = np.moveaxis(quantiles, axis, -1)
    y = np.asarray(obs)[..., None]
    loss = ((y < q) - levels) * (q - y)
    _check_finite_result(loss, func)
    axes = normalise_axes(reduce_axes, len(score_shape), func)
    if axes is None:
        if weights is not None:
            raise ScalelabError(f"{func}: weights need reduce_axes (e.g. reduce_axes='all').")
        return loss
    w = check_weights(weights, score_shape, func)
    w_full = None if w is None else np.asarray(w)[..., None]
    return weighted_mean(loss, axes, w_full, func)
