"""The registry of law forms that :func:`scalelab.laws.predict` may use.

A law becomes a candidate of ``predict`` by declaring itself, once, beside its class::

    register_candidate(Candidate(
        name="ChinchillaLaw", formula="E + A/N^α + B/{D}^β", kind="joint",
        make=lambda ctx: ChinchillaLaw(n_bootstrap=ctx.n_bootstrap, seed=ctx.seed),
        roles=("N", "D")))

and nothing else: ``predict`` builds its candidates from this registry, fits each where
the table allows it (``min_sizes`` distinct sizes of the axis extrapolated, the table's
columns for its ``roles``, ``applies``), backtests it and keeps it only where it beats
the naive guesses. The kinds:

- ``"slice"``: a law in one variable x (the axis extrapolated: parameters N, distinct
  samples U, samples seen D, or compute C for the compute envelope), fitted to the runs
  at the target's other sizes. Its law's ``fit(table, x=, y=)`` is called with
  ``x`` the column; ``predict(x=...)`` answers.
- ``"grouped"``: a law in x with a ``group=`` column (the one other size swept), fitted
  to every run, answering at swept groups only.
- ``"joint"``: a law of several inputs fitted to every run of the table, whatever grid
  they lie on. ``roles`` names the inputs among ``N`` (params), ``D`` (the data axis the
  table varies: distinct samples U, or samples seen where the runs repeat data), ``U``
  (distinct samples), ``Dseen`` (samples seen), ``P`` (the weights' bits,
  ``param_bits``) and ``F`` (the QAT fraction, ``qat_fraction``). The law's ``fit`` is called with the
  keywords of its class's ``inputs`` mapped to the columns, and ``predict`` with its
  symbols. A joint law also answers a compute target C (the lowest loss it predicts over
  the models of that compute) when ``optimum`` is True.
- ``"curves"``: a law fitted to the whole training curves of every run (each row a
  run × evaluation), with ``fit(curves, params=, step=, lr=, y=, run=)``; it predicts a
  run's end from the forward and annealing areas (``S1``, ``S2``) of the schedule of the
  largest run nearest the target in the other sizes (the big run trained like it).

Torch-free; imports no law (the laws import it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from scalelab._errors import InputTypeError, ScalelabError

KINDS = ("slice", "grouped", "joint", "curves")
ROLES = ("N", "D", "U", "Dseen", "P", "F")


@dataclass(frozen=True)
class FitContext:
    """What a candidate's ``make`` may read: bootstrap settings and the data it will fit.

    ``table`` holds the rows the law will be fitted to, ``columns`` maps its roles (``x``
    for a slice law; ``N``, ``D``, ``U``, ``Dseen`` for a joint one) to their columns, and
    ``y`` names the metric, so that a law may place its starts on the data's scale.
    """

    n_bootstrap: int
    seed: int
    y_min: float
    table: object = None
    columns: dict = field(default_factory=dict)
    y: str = "val_loss"


@dataclass(frozen=True)
class Candidate:
    """One law form ``predict`` may use, declared once beside its class.

    name : the candidate's name in tables and in ``Prediction.law``.
    formula : the formula, ``{x}`` standing for the extrapolated axis's symbol (slice
        laws) and ``{D}`` for the data axis's (joint laws).
    kind : ``"slice"``, ``"grouped"`` or ``"joint"`` (see the module's docstring).
    make : ``make(FitContext) -> Law``, an unfitted law (its starts may be placed on the
        data of ``FitContext.table``).
    roles : the inputs of a joint law, in the order of its ``fit`` keywords (``("N",
        "D")``); the law's ``inputs`` give the symbols ``predict`` takes.
    min_sizes : distinct sizes of the axis extrapolated the law needs.
    applies : ``applies(table, columns) -> None`` or the sentence why the law does not
        apply to this table (e.g. no run repeats its data).
    optimum : a joint law whose minimum over model sizes at fixed compute answers a
        compute target.
    order : where it is listed (lower first).
    preference : the candidate's backtest error is divided by this before the choice.
        Above 1 for a law built for the regime its ``applies`` detects, which the others
        can only approximate (the data-constrained law where runs repeat data: 1.3, about
        the margin by which two laws' backtest errors differ from one draw of noise to
        the next, within which the law of the regime is the better bet far out); below 1
        for a riskier extrapolation that must win clearly (a curve law, whose separable
        form the runs' ends alone would not support: 0.6).
    """

    name: str
    formula: str
    kind: str
    make: Callable
    roles: tuple = ()
    min_sizes: int = 3
    applies: Callable | None = None
    optimum: bool = False
    order: int = 100
    preference: float = 1.0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ScalelabError(f"Candidate {self.name!r}: kind must be one of "
                                f"{', '.join(KINDS)}, got {self.kind!r}.")
        unknown = [r for r in self.roles if r not in ROLES]
        if unknown:
            raise ScalelabError(f"Candidate {self.name!r}: unknown roles {unknown}; roles are "
                                f"{', '.join(ROLES)}.")
        if self.kind == "joint" and not self.roles:
            raise ScalelabError(f"Candidate {self.name!r}: a joint law names its roles, e.g. "
                                f"roles=('N', 'D').")
        if not callable(self.make):
            raise InputTypeError(f"Candidate {self.name!r}: make must be a function "
                                 f"make(context) -> Law.")


_REGISTRY: dict[str, Candidate] = {}


def register_candidate(candidate: Candidate, replace: bool = False) -> Candidate:
    """Make ``candidate`` one of :func:`scalelab.laws.predict`'s candidates."""
    if not isinstance(candidate, Candidate):
        raise InputTypeError(f"register_candidate takes a Candidate, got "
                             f"{type(candidate).__name__}.")
    if candidate.name in _REGISTRY and not replace:
        raise ScalelabError(f"a candidate named {candidate.name!r} is already registered; "
                            f"choose another name or pass replace=True.")
    _REGISTRY[candidate.name] = candidate
    return candidate


def unregister_candidate(name: str) -> None:
    """Remove a candidate (for tests and for users who want a law left out)."""
    _REGISTRY.pop(name, None)


def registered_candidates() -> list[Candidate]:
    """Every registered candidate, in listing order."""
    return sorted(_REGISTRY.values(), key=lambda c: (c.order, c.name))
