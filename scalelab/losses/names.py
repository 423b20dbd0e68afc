"""Names of the loss variants and the syntax of a loss expression (torch-free, for validation).

A spec's ``loss_variant`` is a name or a weighted sum of terms::

    mse
    mse+0.1*spectral
    l1 + 0.5*gradient + 0.01*wasserstein_reg(weight=1.0)
    crps_afair(alpha=0.95)
    huber(huber_delta=0.5) + 2e-2*downscale_consistency(weight=1)

A term is ``[weight*]name[(key=value, ...)]`` with a non-negative numeric weight, a
name from ``NAMES`` and keyword settings from ``PARAMS[name]`` (numbers, strings, or
lists of numbers such as ``edges=[0.1, 1, 5]``). Expressions are parsed with Python's
``ast`` (nothing is evaluated), so this module imports neither torch nor numpy.
"""

from __future__ import annotations

import ast

from scalelab._errors import SpecError

NAMES = ("mse", "l1", "charbonnier", "huber", "spectral", "gradient", "downscale_consistency",
         "crps_nrg", "crps_fair", "crps_afair", "wasserstein_reg", "quantile",
         "class_weighted_ce")

# keyword settings each loss accepts, with their defaults
PARAMS: dict[str, dict] = {
    "mse": {},
    "l1": {},
    "charbonnier": {"eps": 1e-3},
    "huber": {"huber_delta": 1.0},
    "spectral": {"eps": 1e-8},
    "gradient": {},
    "downscale_consistency": {"weight": 1.0, "pixel": "mse"},
    "crps_nrg": {},
    "crps_fair": {},
    "crps_afair": {"alpha": 0.95},
    "wasserstein_reg": {"weight": 1.0, "pixel": "mse"},
    "quantile": {"tau": 0.5},
    "class_weighted_ce": {"edges": [0.05, 1.0, 3.0], "sigma": 0.25, "weights": None},
}
ENSEMBLE = ("crps_nrg", "crps_fair", "crps_afair")  # take an ensemble (B, M, C, H, W)
PIXEL = ("mse", "l1")  # allowed as the ``pixel`` part of downscale_consistency/wasserstein_reg
assert tuple(PARAMS) == NAMES


def parse_variant(expression: str, source: str = "the spec") -> list[tuple[float, str, dict]]:
    """Terms ``(weight, name, settings)`` of a loss expression; one SpecError sentence if bad."""
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
        if weight < 0:
            raise SpecError(f"{where}: weights must be >= 0, got {weight}.")
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
    if name not in PARAMS:
        raise SpecError(f"{where}: unknown loss {name!r}; valid choices are {', '.join(NAMES)}.")
    for key in settings:
        if key is None or key not in PARAMS[name]:
            valid = ", ".join(PARAMS[name]) or "none"
            raise SpecError(f"{where}: loss {name!r} has no setting {key!r}; valid settings are "
                            f"{valid}.")
    _check_settings(name, settings, where)
    return weight, name, {**PARAMS[name], **settings}


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


def _check_settings(name: str, settings: dict, where: str) -> None:
    def need(ok: bool, message: str):
        if not ok:
            raise SpecError(f"{where}: {message}.")

    for key, value in settings.items():
        if key in ("eps", "huber_delta", "sigma"):
            need(isinstance(value, float) and value > 0, f"{key} must be a positive number")
        if key == "weight":
            need(isinstance(value, float) and value >= 0, "weight must be a number >= 0")
        if key == "pixel":
            need(value in PIXEL, f"pixel must be one of {', '.join(PIXEL)}")
        if key == "alpha":
            need(isinstance(value, float) and 0 <= value <= 1, "alpha must be in [0, 1]")
        if key == "tau":
            need(isinstance(value, float) and 0 < value < 1, "tau must be in (0, 1)")
        if key == "edges":
            need(isinstance(value, list) and len(value) >= 1
                 and all(a < b for a, b in zip(value, value[1:])),
                 "edges must be an increasing list of numbers")
    if "weights" in settings:
        edges = settings.get("edges", PARAMS[name]["edges"])
        value = settings["weights"]
        need(isinstance(value, list) and len(value) == len(edges) + 1
             and all(w > 0 for w in value),
             f"weights must be a list of {len(edges) + 1} positive numbers (one per bin)")


def needs_ensemble(expression: str) -> bool:
    """Whether any term of the expression takes an ensemble (needs ``ensemble_members`` >= 2)."""
    return any(name in ENSEMBLE for _, name, _ in parse_variant(expression))


def check_variant(expression: str, source: str = "the spec") -> None:
    """Raise one SpecError sentence unless ``expression`` is a valid loss expression."""
    parse_variant(expression, source)
