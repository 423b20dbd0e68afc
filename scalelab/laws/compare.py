"""Comparing two fitted laws: where does one variant overtake the other?

Given laws fitted to two variants (loss functions, optimisers, architectures), the
crossover is the size x* in a range where the difference of their predictions changes
sign; its interval comes from pairing the two laws' bootstrap refits (each refit pair
gives one crossover or none), as in the bootstrap comparison of scaling curves of
Hoffmann et al. 2022 (App. D) and Choshen et al. 2024.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalelab._errors import InputTypeError, ScalelabError


@dataclass
class Crossover:
    """Where ``law_b`` overtakes ``law_a`` (or the reverse) along one input."""

    over: str
    crossover: float  # NaN: never in range
    lower: float
    upper: float
    level: float
    never_fraction: float  # share of bootstrap pairs without a crossing in range
    better_beyond: str | None  # "a" or "b": which is lower past the crossover

    def __str__(self) -> str:
        if np.isnan(self.crossover):
            return (f"no crossover in range ({self.never_fraction:.0%} of bootstrap pairs "
                    f"agree)")
        return (f"{self.over} = {self.crossover:.4g} [{self.level:.0%}: {self.lower:.4g}, "
                f"{self.upper:.4g}]; law {self.better_beyond} is better beyond "
                f"({self.never_fraction:.0%} of bootstrap pairs never cross)")


def _first_crossing(grid: np.ndarray, diff: np.ndarray) -> np.ndarray:
    """x at the first sign change of each row of diff (log-linear interpolation); NaN if none."""
    sign = np.sign(diff)
    change = (sign[:, :-1] * sign[:, 1:]) < 0
    has = change.any(axis=1)
    j = np.argmax(change, axis=1)
    rows = np.arange(diff.shape[0])
    d0, d1 = diff[rows, j], diff[rows, j + 1]
    log_g = np.log(grid)
    t = d0 / (d0 - d1)
    x = np.exp(log_g[j] + t * (log_g[j + 1] - log_g[j]))
    return np.where(has, x, np.nan)


def crossover(law_a, law_b, lower: float, upper: float, over: str | None = None,
              level: float = 0.9, n_grid: int = 2000, **fixed) -> Crossover:
    """The value of input ``over`` in [lower, upper] where the two laws' predictions cross.

    ``over`` defaults to the laws' only input (``x`` for a PowerLaw); other inputs are
    held at values given as keywords (``crossover(a, b, 1e6, 1e10, over="N", D=1e11)``).
    The interval is the ``level`` percentile interval of the crossovers of the paired
    bootstrap refits that cross in range; ``never_fraction`` says how many did not.
    """
    from scalelab.laws.base import Law

    for name, law in (("law_a", law_a), ("law_b", law_b)):
        if not isinstance(law, Law):
            raise InputTypeError(f"crossover: {name} must be a fitted scaling law, got "
                                f"{type(law).__name__}.")
    if any(isinstance(v, (bool, np.bool_)) for v in (lower, upper)):
        raise InputTypeError(f"crossover: lower and upper must be sizes (numbers), got "
                             f"{lower!r} and {upper!r}.")
    if not 0 < lower < upper:
        raise ScalelabError(f"crossover: need 0 < lower < upper, got {lower}, {upper}.")
    over = over or next(iter(law_a.inputs))
    if over not in law_a.inputs or over not in law_b.inputs:
        raise ScalelabError(f"crossover: over={over!r} is not an input of both laws "
                            f"({', '.join(law_a.inputs)}).")
    grid = np.geomspace(lower, upper, n_grid)
    inputs = {over: grid, **fixed}
    ba, bb = law_a.predict_bootstrap(**inputs), law_b.predict_bootstrap(**inputs)
    pa, pb = law_a.predict(**inputs)[None], law_b.predict(**inputs)[None]
    point = _first_crossing(grid, pa - pb)[0]
    n = min(len(ba), len(bb))
    boot = _first_crossing(grid, ba[:n] - bb[:n])
    crossed = boot[np.isfinite(boot)]
    if crossed.size:
        lo, hi = np.quantile(crossed, [(1 - level) / 2, (1 + level) / 2])
    else:
        lo = hi = np.nan
    better = None
    if np.isfinite(point):
        better = "a" if pa[0, -1] < pb[0, -1] else "b"
    return Crossover(over=over, crossover=float(point), lower=float(lo), upper=float(hi),
                     level=level, never_fraction=float(1 - crossed.size / n),
                     better_beyond=better)
