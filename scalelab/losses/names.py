"""Names of the loss variants and the syntax of a loss expression (torch-free, for validation).

A spec's ``loss_variant`` is a name or a weighted sum of terms::

    mse
    mse+0.1*spectral
    l1 + 0.5*gradient + 0.01*wasserstein_reg(weight=1.0)
    crps_afair(alpha=0.95)
    huber(huber_delta=0.5) + 2e-2*downscale_consistency(weight=1)

A term is ``[weight*]name[(key=value, ...)]`` with a non-negative numeric weight, a
name from ``NAMES`` and keyword settings from ``PARAMS[name]`` (numbers, strings, or
lists of numbers such as ``edges=[0.1, 1, 5]``), each in the range its term's record
declares (``TERMS``: one :class:`LossTerm` per term, from which the loss's dispatch,
``NAMES``, ``PARAMS`` and ``ENSEMBLE`` are built). :func:`parse_loss` gives the
checked :class:`LossSpec` that the run's config carries and the loss takes as given.
Expressions are parsed with Python's ``ast`` (nothing is evaluated), so this module
imports neither torch nor numpy.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

from scalelab._declare import Opt, choice, defaults, number, positive
from scalelab._errors import SpecError

PIXEL = ("mse", "l1")  # allowed as the ``pixel`` part of downscale_consistency/wasserstein_reg


@dataclass(frozen=True)
class LossTerm:
    """Everything about one loss term: its ``name`` in a loss expression, its ``function``
    (an import path ``"module:name"`` of a function of the signature in
    :mod:`scalelab.losses.terms`, loaded on first use), its ``options`` (keyword settings
    with their defaults and valid ranges), whether it scores an ``ensemble`` (then it
    needs ``ensemble_members`` >= 2), and ``check(settings, where)``, a rule tying
    settings together (raises SpecError)."""

    name: str
    function: str | Callable
    options: dict[str, Opt] = field(default_factory=dict)
    ensemble: bool = False
    check: Callable[[dict, str], None] | None = None
    doc: str = ""
    #: it scores the latent of the network (the KL of FuXi-ENS): the run's stochastic
    #: variant is then the VAE perturbation (scalelab.models.stochastic.LatentPerturbed)
    latent: bool = False


def _check_bins(settings: dict, where: str) -> None:
    edges = settings["edges"]
    if not edges or not all(a < b for a, b in zip(edges, edges[1:])):
        raise SpecError(f"{where}: edges must be an increasing list of numbers.")
    weights = settings["weights"]
    if weights is not None and (len(weights) != len(edges) + 1 or not all(w > 0 for w in weights)):
        raise SpecError(f"{where}: weights must be a list of {len(edges) + 1} positive numbers "
                        f"(one per bin).")


_T = "scalelab.losses.terms:"
_PIXEL_PART = {"weight": number(1.0, 0, doc="weight of the regulariser"),
               "pixel": choice("mse", PIXEL, doc="the pixel loss it is added to")}
#: the loss terms, one record each; a new term is one function (scalelab.losses.terms or
#: its own module) and one line here
TERMS: tuple[LossTerm, ...] = (
    LossTerm("mse", _T + "mse"),
    LossTerm("l1", _T + "l1"),
    LossTerm("charbonnier", _T + "charbonnier", {"eps": positive(1e-3)}),
    LossTerm("huber", _T + "huber", {"huber_delta": positive(1.0)}),
    LossTerm("spectral", _T + "spectral", {"eps": positive(1e-8)}),
    LossTerm("gradient", _T + "gradient"),
    LossTerm("downscale_consistency", _T + "downscale_consistency", dict(_PIXEL_PART)),
    LossTerm("crps_nrg", _T + "crps_nrg", ensemble=True),
    LossTerm("crps_fair", _T + "crps_fair", ensemble=True),
    LossTerm("crps_afair", _T + "crps_afair", {"alpha": number(0.95, 0, 1)}, ensemble=True),
    LossTerm("wasserstein_reg", _T + "wasserstein_reg", dict(_PIXEL_PART)),
    LossTerm("quantile", _T + "quantile", {"tau": number(0.5, 0, 1, low_open=True,
                                                         high_open=True)}),
    LossTerm("class_weighted_ce", _T + "class_weighted_ce",
             {"edges": Opt([0.05, 1.0, 3.0], "numbers"), "sigma": positive(0.25),
              "weights": Opt(None, "numbers", none=True)}, check=_check_bins),
    # FuXi-ENS (Zhong et al. 2024): crps_fair + 0.1*kl
    LossTerm("kl", _T + "kl", ensemble=True, latent=True,
             doc="KL of the VAE perturbation's latent against N(0, I)"),
)
#: name → record: what the parser and the loss read (a plugin may add a record to it)
REGISTRY: dict[str, LossTerm] = {term.name: term for term in TERMS}
NAMES = tuple(REGISTRY)
# keyword settings each loss accepts, with their defaults
PARAMS: dict[str, dict] = {name: defaults(term.options) for name, term in REGISTRY.items()}
ENSEMBLE = tuple(name for name, term in REGISTRY.items() if term.ensemble)


class Term(NamedTuple):
    """One term of a loss expression: ``weight * name(settings)`` (settings with defaults)."""

    weight: float
    name: str
    settings: dict


@dataclass(frozen=True)
class LossSpec:
    """A parsed, checked loss expression: its text and its terms."""

    expression: str
    terms: tuple[Term, ...]

    @property
    def needs_ensemble(self) -> bool:
        """Whether a term scores an ensemble (the run needs ``ensemble_members`` >= 2)."""
        return any(REGISTRY[term.name].ensemble for term in self.terms)

    @property
    def needs_latent(self) -> bool:
        """Whether a term scores the network's latent (``kl``): the run's stochastic variant
        is then the VAE perturbation."""
        return any(REGISTRY[term.name].latent for term in self.terms)


def parse_loss(expression: str, source: str = "the spec") -> LossSpec:
    """The :class:`LossSpec` of a loss expression; one SpecError sentence if it is bad."""
    terms = tuple(_parse(expression, source))
    if not any(term.weight > 0 for term in terms):
        raise SpecError(f"{source}: loss_variant {expression!r} weighs every term by 0, so the "
                        f"loss is 0 and the network would learn nothing; give a term a "
                        f"positive weight.")
    return LossSpec(expression, terms)


def parse_variant(expression: str, source: str = "the spec") -> list[Term]:
    """Terms ``(weight, name, settings)`` of a loss expression; one SpecError sentence if bad."""
    return list(parse_loss(expression, source).terms)


def _parse(expression: str, source: str) -> list[Term]:
    where = f"{source}: loss_variant {expression!r}"
    if not isinstance(expression, str) or not expression.strip():
        raise SpecError(f"{where} is empty; give a loss name such as 'mse' or a sum like "
                        "'mse+0.1*spectral'.")
    try:
        tree = ast.parse(expression.strip(), mode="eval").body
    except SyntaxError:
        raise SpecError(f"{where} is not a sum of terms; write it like "
                        "'mse+0.1*spectral' or 'crps_afair(alpha=0.95)'.") from None
    terms: list[ast.AST] = []

    def flatten(node):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            flatten(node.left)
            flatten(node.right)
        else:
            terms.append(node)

    flatten(tree)
    return [_term(node, where) for node in terms]


def _number(node) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    return None


def _term(node, where: str) -> tuple[float, str, dict]:
    weight = 1.0
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        left, right = _number(node.left), _number(node.right)
        if left is not None:
            weight, node = left, node.right
        elif right is not None:
            weight, node = right, node.left
        else:
            raise SpecError(f"{where}: a product needs a number on one side, like '0.1*spectral'.")
        if weight < 0 or not math.isfinite(weight):
            raise SpecError(f"{where}: weights must be >= 0 and finite, got {weight}.")
    settings: dict = {}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.args:
        name = node.func.id
        for keyword in node.keywords:
            settings[keyword.arg] = _value(keyword.value, where)
    elif isinstance(node, ast.Name):
        name = node.id
    else:
        raise SpecError(f"{where} has a term that is not 'name', 'name(key=value)' or "
                        "'number*name'; write it like 'mse+0.1*spectral'.")
    if name not in REGISTRY:
        raise SpecError(f"{where}: unknown loss {name!r}; valid choices are "
                        f"{', '.join(REGISTRY)}.")
    term = REGISTRY[name]
    for key in settings:
        if key is None or key not in term.options:
            valid = ", ".join(term.options) or "none"
            raise SpecError(f"{where}: loss {name!r} has no setting {key!r}; valid settings are "
                            f"{valid}.")
    for key, value in settings.items():
        term.options[key].check(value, key, where)
    settings = {**defaults(term.options), **settings}
    if term.check is not None:
        term.check(settings, where)
    return Term(weight, name, settings)


def _value(node, where: str):
    number = _number(node)
    if number is not None:
        return number
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_value(item, where) for item in node.elts]
        if all(isinstance(v, float) for v in values):
            return values
    raise SpecError(f"{where}: a setting must be a number, a quoted word or a list of numbers.")


def needs_ensemble(expression: str) -> bool:
    """Whether any term of the expression takes an ensemble (needs ``ensemble_members`` >= 2)."""
    return parse_loss(expression).needs_ensemble


def check_variant(expression: str, source: str = "the spec") -> None:
    """Raise one SpecError sentence unless ``expression`` is a valid loss expression."""
    parse_variant(expression, source)
