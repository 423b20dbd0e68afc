"""Declared options: what each option of a family, field, degradation, loss term or schedule
accepts, written where the option is declared (torch-free, no numpy).

An :class:`Opt` holds an option's default, its kind (a number, an integer, one of some
choices, true/false, a list of numbers, ...), and its valid range (``low``/``high``,
each open or closed). :meth:`Opt.check` refuses a value outside it with one sentence
naming the key and the range; :func:`check_declared` applies a mapping of such
declarations to a run's ``options`` (or a loss term's settings). The records of each
kind (:mod:`scalelab.models.names`, :mod:`scalelab.data.names`,
:mod:`scalelab.losses.names`, :mod:`scalelab.registry`) declare their options this
way, so a spec is refused at plan time for a value the run could not use — never
inside the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scalelab._errors import SpecError

KINDS = ("number", "integer", "choice", "bool", "text", "numbers", "any")


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Opt:
    """One declared option: ``default``, ``kind`` (one of ``KINDS``) and its valid range.

    ``low``/``high``: bounds of a number or integer (``low_open``/``high_open``: the bound
    itself is excluded); numbers must be finite. ``choices``: the names a ``choice``
    takes. ``none``: None is allowed too (e.g. "derived from width"). ``doc``: one line.
    """

    default: Any = None
    kind: str = "number"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    none: bool = False
    doc: str = ""

    def __post_init__(self):
        assert self.kind in KINDS, self.kind

    def expect(self) -> str:
        """What a valid value is, in words ("a number in (0, 1]", "a positive integer")."""
        if self.kind == "choice":
            return f"one of {', '.join(map(str, self.choices))}"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "text":
            return "a text"
        if self.kind == "numbers":
            return "a list of finite numbers"
        if self.kind == "any":
            return "a value"
        noun = "an integer" if self.kind == "integer" else "a number"
        low, high = self.low, self.high
        if low is not None and high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            return f"{'' if self.kind == 'number' else noun + ' '}in {left}{low:g}, {high:g}{right}"
        noun = "a finite number" if self.kind == "number" else noun
        if (low == 0 and self.low_open) or (low == 1 and self.kind == "integer"):
            return "a positive integer" if self.kind == "integer" else "a positive finite number"
        if low is not None:
            return f"{noun} {'>' if self.low_open else '>='} {low:g}"
        if high is not None:
            return f"{noun} {'<' if self.high_open else '<='} {high:g}"
        return "a finite number" if self.kind == "number" else noun

    def valid(self, value) -> bool:
        if value is None:
            return self.none
        if self.kind == "any":
            return True
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "text":
            return isinstance(value, str)
        if self.kind == "numbers":
            return isinstance(value, (list, tuple)) and all(
                is_number(v) and math.isfinite(v) for v in value)
        if not is_number(value) or not math.isfinite(value):
            return False
        if self.kind == "integer" and not float(value).is_integer():
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open
                                      else value > self.high):
            return False
        return True

    def check(self, value, label: str, source: str) -> None:
        """Raise one SpecError sentence unless ``value`` is valid: "SOURCE: LABEL must be ..."."""
        if not self.valid(value):
            also = " (or null)" if self.none else ""
            raise SpecError(f"{source}: {label} must be {self.expect()}{also}, got {value!r}.")


# shorthands for the records
def number(default, low=None, high=None, *, low_open=False, high_open=False, none=False,
           doc="") -> Opt:
    return Opt(default, "number", low, high, low_open, high_open, none=none, doc=doc)


def positive(default, *, high=None, none=False, doc="") -> Opt:
    return Opt(default, "number", 0, high, low_open=True, none=none, doc=doc)


def count(default, *, high=None, none=False, doc="") -> Opt:
    """A positive integer (at most ``high``)."""
    return Opt(default, "integer", 1, high, none=none, doc=doc)


def choice(default, choices: tuple, doc="") -> Opt:
    return Opt(default, "choice", choices=tuple(choices), doc=doc)


def check_declared(declared: dict[str, Opt], values: dict, source: str,
                   label: str = "options.") -> None:
    """Check each value of ``values`` whose key is declared in ``declared``."""
    for key, value in (values or {}).items():
        if key in declared:
            declared[key].check(value, f"{label}{key}", source)


def defaults(declared: dict[str, Opt]) -> dict:
    return {key: opt.default for key, opt in declared.items()}


def resolve(path):
    """The object an import path ``"package.module:name"`` names (loaded on first use); a
    record may hold the object itself (a callable), which is returned as it is."""
    import importlib

    if callable(path):
        return path
    module, _, name = path.partition(":")
    found = importlib.import_module(module)
    for part in name.split("."):  # "module:Class.method"
        found = getattr(found, part)
    return found
