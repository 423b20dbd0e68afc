"""Which network family wins at which training compute (torch-free).

Families compare at matched compute, not matched size: a parameter of a transformer,
a U-Net on the HR grid and a diffusion denoiser cost very different FLOPs. For each
family, the loss envelope of its training curves against FLOPs — at budgets spaced
log-evenly over the compute its runs reach, the lowest value of the metric any run
had reached (linear interpolation in log FLOPs along each curve; the envelope of
Chinchilla's approach 1, Hoffmann et al. 2022, §3.1) — is fitted by a saturating power
law L(C) = E + A·C^(−α) (:class:`~scalelab.laws.PowerLaw`, bootstrap intervals).
Along a compute grid from where every family has data to 10× the largest run, the
family with the lowest predicted value wins; where the winner changes, the crossover
compute and its interval come from :func:`scalelab.laws.crossover` (paired bootstrap
refits of the two laws, Hoffmann et al. 2022, App. D).

``compare_families(runs, y)`` returns a :class:`FamilyComparison`. The report computes it
per loss variant (each run's ``val_loss`` is in its own loss's units) in
:func:`scalelab.report.analysis.analyse` (``Analysis.families``), and its "families" page
(:func:`scalelab.report.pages.page_families`) draws it when a table holds two or more
families. Computation only: no matplotlib here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scalelab._errors import ScalelabError, TableError
from scalelab.laws import PowerLaw, crossover
from scalelab.laws import loss_envelope as laws_loss_envelope
from scalelab.report.analysis import LEVEL
from scalelab.runs import require_columns


@dataclass
class FamilyComparison:
    """Each family's law of the envelope in compute, and who wins where."""

    y: str
    envelopes: dict = field(default_factory=dict)  # family -> DataFrame(flops, loss)
    laws: dict = field(default_factory=dict)  # family -> PowerLaw | sentence why not
    segments: pd.DataFrame = None  # family, from_flops, to_flops (the winner on each span)
    switches: list = field(default_factory=list)  # (loser, winner, Crossover) in order
    compute_range: tuple = (np.nan, np.nan)
    level: float = LEVEL  # of the crossovers' intervals and the laws' bands

    def sentences(self) -> list[str]:
        """Which family wins at which compute, in words."""
        if self.segments is None or self.segments.empty:
            fitted = [f for f, law in self.laws.items() if isinstance(law, PowerLaw)]
            return [f"fewer than two families have a law in compute ({', '.join(fitted) or 'none'}"
                    f"), so none is compared."]
        lo, hi = self.compute_range
        out = [f"Over C = {lo:.3g}–{hi:.3g} FLOP (from where every family has runs to 10× "
               f"the largest run), lowest predicted {self.y}:"]
        for row in self.segments.itertuples():
            out.append(f"{row.family} wins from C = {row.from_flops:.3g} to {row.to_flops:.3g}")
        for loser, winner, cross in self.switches:
            if np.isfinite(cross.lower):
                where = (f"{self.level:.0%} interval {cross.lower:.3g}–{cross.upper:.3g}; "
                         f"{cross.never_fraction:.0%} of bootstrap pairs never cross")
            else:
                where = "no bootstrap pair crosses in range, so the switch is not resolved"
            out.append(f"{winner} overtakes {loser} at C ≈ {cross.crossover:.3g} ({where}).")
        if not self.switches:
            out.append(f"{self.segments['family'].iloc[0]} wins over the whole range.")
        return out


def loss_envelope(curves: pd.DataFrame, y: str, flops: str = "flops", run: str = "run_id",
                  n_budgets: int = 20) -> pd.DataFrame:
    """The lowest ``y`` any run had reached at each of ``n_budgets`` compute budgets, from
    the earliest start (a run past its end keeps its best): columns ``flops``, ``loss``.
    :func:`scalelab.laws.loss_envelope` with ``best_so_far`` and ``from_first_start``."""
    env = laws_loss_envelope(curves.dropna(subset=[flops, y]), y, flops, run, n_budgets,
                             best_so_far=True, from_first_start=True)
    return env.rename(columns={flops: "flops", y: "loss"})[["flops", "loss"]]


def compare_families(runs: pd.DataFrame, y: str = "val_loss", family: str = "family",
                     flops: str = "flops", run: str = "run_id", n_bootstrap: int = 200,
                     level: float = LEVEL, extrapolate: float = 10.0) -> FamilyComparison:
    """Fit each family's envelope law L(C) and find which family wins at which compute."""
    require_columns(runs, family, flops, y, run, what="compare_families")
    out = FamilyComparison(y=y, level=level)
    families = sorted(runs[family].dropna().unique().tolist())
    if len(families) < 2:
        raise ScalelabError(f"compare_families needs runs of two or more families; the table "
                            f"has {', '.join(map(str, families)) or 'none'}.")
    starts, ends = [], []
    for name in families:
        rows = runs[runs[family] == name]
        try:
            env = loss_envelope(rows, y, flops, run)
            out.envelopes[name] = env
            out.laws[name] = PowerLaw(n_bootstrap=n_bootstrap).fit(env, x="flops", y="loss")
            starts.append(env["flops"].min())
            ends.append(env["flops"].max())
        except ScalelabError as err:
            out.laws[name] = str(err)
    fitted = {name: law for name, law in out.laws.items() if isinstance(law, PowerLaw)}
    if len(fitted) < 2:
        out.segments = pd.DataFrame(columns=["family", "from_flops", "to_flops"])
        return out
    lo, hi = max(starts), extrapolate * max(ends)
    out.compute_range = (lo, hi)
    grid = np.geomspace(lo, hi, 400)
    names = list(fitted)
    predictions = np.stack([fitted[n].predict(x=grid) for n in names])
    winner = predictions.argmin(axis=0)
    segments, start = [], 0
    for i in range(1, len(grid) + 1):
        if i == len(grid) or winner[i] != winner[start]:
            segments.append({"family": names[winner[start]], "from_flops": float(grid[start]),
                             "to_flops": float(grid[i - 1])})
            start = i
    out.segments = pd.DataFrame(segments)
    for before, after in zip(segments, segments[1:]):
        a, b = fitted[before["family"]], fitted[after["family"]]
        cross = crossover(a, b, before["from_flops"], hi, level=level)
        out.switches.append((before["family"], after["family"], cross))
    return out
