"""Cache-blocked kernels behind the top-label calibration metrics (numpy only).

For (n, k) class probabilities with small k (≈ 10), numpy reduces a short last axis
one row at a time, and every whole-array step (min, max, row sums, argmax, binning)
streams n·k values through memory again. Here the rows are taken in blocks that fit
in the L2 cache; each block is transposed once into a (k, rows) buffer, and from it,
with contiguous (SIMD) passes over class rows:

- the checks of the values: min ≥ 0, max ≤ 1, no NaN (min/max propagate NaN) and
  |Σ_k p_k − 1| within the tolerance per row (summed in the input's dtype — float32
  accumulation over ~10 terms errs by ~1e-6, far below the 1e-4 tolerance);
- the confidence max_k p_k and whether the first argmax_k p_k equals the label:
  p_label = p[label] is gathered and compared with the maximum; only rows where the
  maximum is attained by several classes (rare) are settled by an exact argmax.

Equal-width binning of the confidences is done in blocks too, with integer and
weighted ``np.bincount``. The results equal the whole-array formulas exactly except
for the order of floating-point summation inside the bins.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

BLOCK_BYTES = 1 << 19  # one transposed block of probabilities: 512 KiB, L2-resident


def top_label_checked(probs: np.ndarray, labels: np.ndarray, tolerance: float,
                      on_bad_values: Callable[[], None]):
    """(confidence, correct) per row of ``probs`` (n, k), checking the values on the way.

    ``labels`` must already lie in [0, k). When a block holds NaN, values outside
    [0, 1] or a row whose sum is off by more than ``tolerance``, ``on_bad_values()``
    is called; it is expected to raise (with a message about the whole array).
    """
    n, classes = probs.shape
    rows = max(256, min(n, BLOCK_BYTES // (classes * probs.itemsize)))
    confidence = np.empty(n, dtype=probs.dtype)
    correct = np.empty(n, dtype=bool)
    storage = np.empty(classes * rows, dtype=probs.dtype)
    row_sum = np.empty(rows, dtype=np.result_type(probs.dtype, np.float32))
    p_label = np.empty(rows, dtype=probs.dtype)
    flat_index = np.empty(rows, dtype=np.intp)
    offsets = np.arange(rows, dtype=np.intp)
    low_sum, high_sum = 1 - tolerance, 1 + tolerance
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        size = stop - start
        block = storage[: classes * size].reshape(classes, size)  # contiguous for every size
        top, hit = confidence[start:stop], correct[start:stop]
        total, picked, index = row_sum[:size], p_label[:size], flat_index[:size]
        np.copyto(block, probs[start:stop].T)
        np.maximum.reduce(block, axis=0, out=top)
        np.add.reduce(block, axis=0, dtype=total.dtype, out=total)
        # `not (a <= b)` is True for NaN, so NaNs take the slow, raising path
        if not (block.min() >= 0 and top.max() <= 1
                and total.min() >= low_sum and total.max() <= high_sum):
            on_bad_values()
        # p[label] from the transposed block: element (label, i) sits at label·size + i
        np.multiply(labels[start:stop], size, out=index)
        index += offsets[:size]
        np.take(storage[: classes * size], index, out=picked)
        np.equal(picked, top, out=hit)
        if np.count_nonzero(block == top) != size:  # some row's maximum is tied
            tied = np.flatnonzero((block == top).sum(axis=0) > 1)
            hit[tied] = probs[start + tied].argmax(axis=1) == labels[start + tied]
    return confidence, correct


def width_bin_stats(prob: np.ndarray, outcome: np.ndarray, bins: int):
    """Per-bin count, Σp and Σy for B right-closed equal-width bins (e_{b−1}, e_b].

    The edges are e_b = (b+1)/B as ``np.arange(1, B + 1) / B`` gives them; the bin is
    ceil(p·B) − 1 with a one-step fix where rounding of p·B crossed an edge, the two
    neighbouring edges recomputed exactly as (c/B, (c−1)/B) from c = ceil(p·B), so it
    equals ``searchsorted(edges, p, 'left')`` (p = 0 goes to the first bin). Outcomes
    (0/1) shift the bin by B, so one integer and one weighted bincount give all sums.
    """
    n = prob.size
    rows = max(1024, min(n, BLOCK_BYTES // 16))
    upper = np.empty(rows, dtype=np.float64)  # c = bin + 1, then the bincount slot + 1
    edge = np.empty(rows, dtype=np.float64)
    crossed = np.empty(rows, dtype=bool)
    above_first = np.empty(rows, dtype=bool)
    slot = np.empty(rows, dtype=np.intp)
    split = np.zeros(2 * bins + 1, dtype=np.int64)
    sum_prob = np.zeros(2 * bins + 1, dtype=np.float64)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        size = stop - start
        p, c, e = prob[start:stop], upper[:size], edge[:size]
        cross, first, index = crossed[:size], above_first[:size], slot[:size]
        np.multiply(p, bins, out=c)
        np.ceil(c, out=c)
        np.maximum(c, 1, out=c)
        np.divide(c, bins, out=e)
        np.greater(p, e, out=cross)  # p·B rounded down across the upper edge
        c += cross
        np.subtract(c, 1, out=e)
        e /= bins
        np.less_equal(p, e, out=cross)  # rounded up across the lower edge
        np.greater(c, 1, out=first)
        cross &= first
        c -= cross
        np.multiply(outcome[start:stop], bins, out=e)
        c += e
        np.copyto(index, c, casting="unsafe")  # exact: small whole numbers
        split += np.bincount(index, minlength=2 * bins + 1)
        sum_prob += np.bincount(index, weights=p, minlength=2 * bins + 1)
    count = (split[1: bins + 1] + split[bins + 1:]).astype(np.float64)
    return count, sum_prob[1: bins + 1] + sum_prob[bins + 1:], split[bins + 1:].astype(np.float64)


def edge_bin_stats(prob: np.ndarray, outcome: np.ndarray, edges: np.ndarray):
    """Per-bin count, Σp and Σy for right-closed bins with sorted upper ``edges`` (few).

    The bin of p is the number of edges below it, Σ_j 𝟙{p > e_j} — exactly
    ``searchsorted(edges, p, 'left')`` — taken as one compare-and-add per edge over a
    cache-sized block, which for ~15 edges beats a binary search per point.
    """
    n, size_edges = prob.size, edges.size
    rows = max(1024, min(n, BLOCK_BYTES // 16))
    above = np.empty(rows, dtype=bool)
    slot = np.empty(rows, dtype=np.intp)
    split = np.zeros(2 * size_edges, dtype=np.int64)
    sum_prob = np.zeros(2 * size_edges, dtype=np.float64)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        p, hit, index = prob[start:stop], above[: stop - start], slot[: stop - start]
        np.multiply(outcome[start:stop], size_edges, out=index)
        for edge in edges[:-1]:  # p ≤ 1 = the last edge
            np.greater(p, edge, out=hit)
            index += hit
        split += np.bincount(index, minlength=2 * size_edges)
        sum_prob += np.bincount(index, weights=p, minlength=2 * size_edges)
    count = (split[:size_edges] + split[size_edges:]).astype(np.float64)
    return (count, sum_prob[:size_edges] + sum_prob[size_edges:],
            split[size_edges:].astype(np.float64))
