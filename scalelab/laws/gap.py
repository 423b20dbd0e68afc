"""The law of a gap in N: does scale close it, and at what N would it close?

A gap is a difference of two results of the same runs that is zero when they agree —
under geographic shift (:mod:`scalelab.data.regions`), a metric on a shifted region less
the same metric on the training region (``kind="difference"``), or their ratio less one
(``kind="ratio"``); positive means worse out of region (for a metric where higher is
better the two are swapped). Unlike a loss it may be negative and may grow, so it is
fitted not by :class:`~scalelab.laws.PowerLaw` (a positive loss and its floor) but by

    g(N) = G + B·(N/N₀)^(−β),   β ∈ [0, 3],  N₀ the smallest N,

by least squares: for each β of a grid the model is linear in (G, B) (variable projection,
Golub & Pereyra 1973), and the β of least squared error is kept. ``G`` is the gap the law
tends to at large N, ``B`` its part that changes with N. Intervals come from a residual
bootstrap (Efron & Tibshirani 1993, §9.5): refits to the fitted values plus resampled
centred residuals.

The gap closes where g(N*) = 0: with B > 0, β > 0 (it shrinks) and G < 0,
N* = N₀·(B/(−G))^(1/β). ``closing_sentence()`` says, in one sentence, whether and where:
at N* with its bootstrap interval and the share of refits that never close; "not
within the fitted range" when N* lies beyond ``horizon`` × the largest N fitted; "never"
when the gap shrinks towards a floor G > 0 (its interval above zero) or does not shrink
at all; "not resolved" when it shrinks towards a floor whose interval includes zero;
"nothing to close" when the shifted result is already as good at the largest N.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scalelab._errors import TableError

BETAS = np.round(np.arange(0.0, 3.0001, 0.01), 4)
GAP_KINDS = ("difference", "ratio")


def gap_values(shifted, reference, kind: str = "difference", higher_is_better: bool = False):
    """The gap of ``shifted`` against ``reference`` (arrays): positive = worse when shifted."""
    shifted = np.asarray(shifted, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if kind not in GAP_KINDS:
        raise TableError(f"gap kind must be one of {', '.join(GAP_KINDS)}, got {kind!r}.")
    if kind == "ratio":
        out = shifted / reference - 1.0
        return -out if higher_is_better else out
    return reference - shifted if higher_is_better else shifted - reference


def _fit_arrays(log_n: np.ndarray, y: np.ndarray):
    """(G, B, β) of least squares over the β grid; β = 0 is the constant gap (B = 0).

    ``y`` may be ``(n,)`` or ``(n, k)`` (k gaps at the same N, e.g. bootstrap replicates):
    the design at each β is shared, so every column is fitted at once; returns a tuple of
    three floats, or an array ``(k, 3)``.
    """
    single = y.ndim == 1
    ys = y[:, None] if single else y
    best = np.column_stack([ys.mean(axis=0), np.zeros(ys.shape[1]), np.zeros(ys.shape[1])])
    best_sse = ((ys - ys.mean(axis=0)) ** 2).sum(axis=0)
    for beta in BETAS[1:]:
        z = np.exp(-beta * log_n)
        design = np.column_stack([np.ones_like(z), z])
        if np.ptp(z) < 1e-12:  # the two columns coincide: the constant gap again
            continue
        coef = np.linalg.pinv(design) @ ys  # (2, k)
        sse = ((design @ coef - ys) ** 2).sum(axis=0)
        better = sse < best_sse - 1e-15 * np.maximum(1.0, best_sse)
        best[better] = np.column_stack([coef[0], coef[1], np.full(ys.shape[1], beta)])[better]
        best_sse = np.where(better, sse, best_sse)
    return tuple(float(v) for v in best[0]) if single else best


def _closing(params, n0: float) -> float:
    """N at which the law's gap reaches 0 going up in N (inf: never)."""
    g, b, beta = params
    if beta <= 0 or b <= 0 or g >= 0:
        return np.inf
    return float(n0 * (b / -g) ** (1.0 / beta))


@dataclass
class GapLaw:
    """``g(N) = G + B·(N/N₀)^(−β)`` fitted to a gap; see the module's docstring.

    ``GapLaw(n_bootstrap=400, level=0.9, horizon=100).fit(N, gap)``; what is learned ends
    with an underscore: ``params_`` (G, B, beta), ``n0_``, ``x_``/``y_`` (the points),
    ``bootstrap_`` (refits' parameters), ``closes_at_`` (N*, inf: never) and
    ``closes_interval_``, ``never_fraction_``.
    """

    n_bootstrap: int = 400
    level: float = 0.9
    horizon: float = 100.0  # N* beyond horizon × the largest N is "not within the fitted range"
    seed: int = 0
    params_: dict = field(default=None, repr=False)

    def fit(self, params, gap) -> "GapLaw":
        x = np.asarray(params, dtype=np.float64)
        y = np.asarray(gap, dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y) & (x > 0)
        x, y = x[keep], y[keep]
        if np.unique(x).size < 3:
            raise TableError(f"a gap law needs runs at 3 or more distinct N with a finite gap, "
                             f"got {np.unique(x).size}; add runs at more sizes.")
        self.n0_ = float(x.min())
        self.x_, self.y_ = x, y
        log_n = np.log(x / self.n0_)
        theta = _fit_arrays(log_n, y)
        self.params_ = dict(zip(("G", "B", "beta"), theta))
        fitted = self._curve(theta, x)
        residuals = y - fitted
        residuals = residuals - residuals.mean()
        rng = np.random.default_rng(self.seed)
        draws = rng.choice(residuals, (residuals.size, self.n_bootstrap))
        self.bootstrap_ = _fit_arrays(log_n, fitted[:, None] + draws).reshape(-1, 3)
        self.closes_at_ = _closing(theta, self.n0_)
        closes = np.array([_closing(b, self.n0_) for b in self.bootstrap_])
        self.never_fraction_ = float(np.mean(~np.isfinite(closes))) if closes.size else np.nan
        tail = (1 - self.level) / 2
        if closes.size:
            lo, hi = np.quantile(np.where(np.isfinite(closes), closes, np.inf),
                                 [tail, 1 - tail], method="nearest")
        else:
            lo = hi = np.nan
        self.closes_interval_ = (float(lo), float(hi))
        return self

    def _curve(self, theta, x):
        g, b, beta = theta
        return g + b * (np.asarray(x, dtype=np.float64) / self.n0_) ** (-beta)

    def predict(self, x) -> np.ndarray:
        """The gap the law gives at N = ``x``."""
        theta = tuple(self.params_[k] for k in ("G", "B", "beta"))
        return self._curve(theta, x)

    def predict_interval(self, x, level: float | None = None) -> dict:
        """The law's gap at ``x`` and the bootstrap band of its refits (``level``)."""
        level = self.level if level is None else level
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        curves = np.stack([self._curve(b, x) for b in self.bootstrap_]) if len(
            self.bootstrap_) else self.predict(x)[None]
        tail = (1 - level) / 2
        return {"prediction": self.predict(x), "lower": np.quantile(curves, tail, axis=0),
                "upper": np.quantile(curves, 1 - tail, axis=0)}

    def interval(self, name: str) -> tuple[float, float]:
        """The bootstrap interval (``level``) of a parameter (``G``, ``B``, ``beta``)."""
        column = ("G", "B", "beta").index(name)
        tail = (1 - self.level) / 2
        values = self.bootstrap_[:, column]
        return tuple(float(v) for v in np.quantile(values, [tail, 1 - tail]))

    @property
    def trend(self) -> str:
        """``shrinks``, ``grows`` or ``flat``: how the law's gap moves as N grows."""
        b, beta = self.params_["B"], self.params_["beta"]
        if beta <= 0 or b == 0:
            return "flat"
        return "shrinks" if b > 0 else "grows"

    def closing_sentence(self, unit: str = "") -> str:
        """Whether scale closes the gap and at what N, in one sentence (see the module)."""
        g, b, beta = (self.params_[k] for k in ("G", "B", "beta"))
        largest = float(self.x_.max())
        at_largest = self.y_[self.x_ == largest].mean()
        pct = f"{self.level:.0%}"
        g_lo, g_hi = self.interval("G")
        if at_largest <= 0:
            return (f"nothing to close: at the largest N ({largest:.3g}) the shifted result is "
                    f"already as good as the training region's (gap {at_largest:.3g}{unit}).")
        if self.trend != "shrinks":
            how = "stays flat" if self.trend == "flat" else "grows"
            return (f"never, the gap does not shrink: it {how} with N (β = {beta:.2f}, "
                    f"B = {b:.3g}); scaling N does not close it.")
        if not np.isfinite(self.closes_at_) and g_lo < 0:
            lo = self.closes_interval_[0]
            tail = (1 - self.level) / 2
            earliest = (f" (the earliest {tail:.0%} of all refits by N ≈ {lo:.3g})"
                        if np.isfinite(lo) else "")
            return (f"not resolved: the gap shrinks with N (β = {beta:.2f}) towards a floor "
                    f"G = {g:.3g}{unit} whose {pct} interval ({g_lo:.3g} to {g_hi:.3g}) "
                    f"includes zero; {1 - self.never_fraction_:.0%} of bootstrap refits close "
                    f"it{earliest}, the others never.")
        if not np.isfinite(self.closes_at_):
            return (f"never: the gap shrinks with N (β = {beta:.2f}) but towards a floor "
                    f"G = {g:.3g}{unit} ({pct} interval {g_lo:.3g} to {g_hi:.3g}) above zero; "
                    f"{self.never_fraction_:.0%} of bootstrap refits never close it.")
        lo, hi = self.closes_interval_
        upper = "never" if not np.isfinite(hi) else f"{hi:.3g}"
        factor = self.closes_at_ / largest
        if factor > self.horizon:
            return (f"not within the fitted range: the law reaches zero gap only at "
                    f"N ≈ {self.closes_at_:.3g}, {factor:.3g}× the largest run ({largest:.3g}), "
                    f"beyond the {self.horizon:g}× this page extrapolates to ({pct} interval "
                    f"{lo:.3g} to {upper}; {self.never_fraction_:.0%} of refits never close).")
        return (f"closes at N ≈ {self.closes_at_:.3g}, {factor:.3g}× the largest run "
                f"({pct} interval {lo:.3g} to {upper}; {self.never_fraction_:.0%} of bootstrap "
                f"refits never close it).")
