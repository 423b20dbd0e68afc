"""Sweep specs: YAML files in the W&B sweep format, plus a ``scalelab`` section.

Where the two overlap a spec is a W&B sweep configuration
(https://docs.wandb.ai/guides/sweeps/sweep-config-keys): ``method`` (``grid`` or
``random``), ``metric``, ``run_cap`` and ``parameters``, each parameter being
``{value: x}``, ``{values: [...]}`` (with optional ``probabilities`` for random),
``{distribution: ..., min:, max:, q:}`` (``uniform``, ``log_uniform_values``,
``int_uniform``, ``q_uniform``; random only) or a nested ``{parameters: {...}}``
group, flattened into the run's flat config as W&B does. The ``scalelab`` section
holds what W&B has no words for: executor (``local`` or ``ray``), workers,
devices, runs per GPU, Ray address, retries, store and report paths, tracking —
declared, with the run's own settings, in :mod:`scalelab.config`
(:class:`~scalelab.config.SweepSettings`). Command-line options that change a spec
(``--workers``, ``--store``, ``--executor``) are applied to that section before it
is validated (``overrides=``), so a bad one gets the same sentence as a bad file. ``result`` says what the laws fit
(``final``: each run's last value; ``best``: its lowest over the curve, as early
stopping keeps).
So are ``key=value`` assignments (:func:`apply_assignments`), with Hydra's grammar:
``width=64`` or ``model.width=64`` (a parameter, through its groups) fixes a parameter,
``samples=[256,512]`` or ``samples=256,512`` (Hydra's comma list) sweeps it over a list,
``options.path=a.nc`` sets a key inside a mapping-valued parameter (``path=a.nc`` too,
where one parameter's mapping holds ``path``), ``model={width: 8, depth: 2}`` sets a
group's parameters (what W&B's agent passes for a nested group), ``scalelab.workers=4``
or ``metric.name=val_crps`` sets any other key; ``+key=value`` adds a key the spec does
not have (refused if it has), ``++key=value`` sets it either way, ``~key`` deletes it
(``~key=value``: only if that is its value). Values are read as YAML (``1e-3``,
``true``, ``[a, b]``), or as the Python literal W&B's agent writes. The spec as run —
assignments applied, and listed under ``overrides`` — is what the store records.

``scalelab sweep wandb`` writes the spec as W&B's sweep controller takes it, with a
``program``/``command`` that makes ``wandb agent`` run each trial as ``scalelab
agent-run SPEC key=value ...`` (W&B's ``${args_no_hyphens}``): the same assignments,
so a trial runs through the same training code and is recorded in the spec's store.
``early_terminate`` (W&B's hyperband) is W&B's controller's to apply, to runs that
log their metric as they train — which scalelab's runs do; scalelab's own executors
run every run to its end and refuse a spec that asks for it, with a sentence.

Training length: a run's ``steps``, or instead ``samples_seen`` (D; steps =
⌈D / batch_size⌉) or ``epochs`` (D/U; steps = ⌈epochs × samples / batch_size⌉), so a
grid can vary the data seen together with the distinct samples U and the model size
N, and compute with both. ``schedule: wsd`` with ``cooldowns`` expands a point into a
constant-rate trunk and one branch per cooldown point
(:mod:`scalelab.sweep.branches`): data budgets from one trunk.

Random search draws from a generator seeded by ``scalelab.seed``, so expanding a
spec twice gives the same runs and — each run's id being the hash of its config —
a restarted sweep runs nothing twice. Everything is validated when the spec is
loaded, before any run starts; a problem is one :class:`SpecError` sentence
naming the file and the key.
"""

from __future__ import annotations

import ast
import copy
import itertools
import math
import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from scalelab._errors import SpecError
from scalelab.config import EXECUTORS, Metric, RunConfig, SweepSettings, check_keys
from scalelab.sweep import guards
from scalelab.sweep.branches import expand_budgets
from scalelab.sweep.guards import read_spec_yaml

__all__ = ["SweepSpec", "load_spec", "parse_spec", "wandb_config", "apply_assignments",
           "refuse_early_terminate", "EXECUTORS"]

TOP_KEYS = {"name", "description", "method", "metric", "parameters", "program", "command",
            "project", "entity", "run_cap", "early_terminate", "scalelab", "overrides"}
METHODS = ("grid", "random")
DISTRIBUTIONS = ("uniform", "log_uniform_values", "int_uniform", "q_uniform")
PARAM_KEYS = {"value", "values", "probabilities", "distribution", "min", "max", "q",
              "parameters", "mu", "sigma"}
#: spec parameters that set ``steps`` from a data budget instead of naming it
LENGTH_KEYS = ("samples_seen", "epochs")
# Guard against a sweep that would take more than seconds to even expand and validate
# (about 0.3 ms a run): a grid of more points needs run_cap, and run_cap is at most this.
MAX_RUNS = 10_000


@dataclass
class SweepSpec:
    """A validated sweep, the one object later layers take as given: its ``name``, ``path``,
    the expanded and validated run configs (``runs``), its ``scalelab`` section as
    :class:`~scalelab.config.SweepSettings` (``store`` and ``report`` resolved to paths,
    ``targets`` parsed) and its :class:`~scalelab.config.Metric`. ``raw``: the document as
    run (assignments applied), kept only to be recorded (the store, W&B's sweep file) —
    nothing reads a setting from it."""

    name: str
    path: Path | None
    runs: list[RunConfig]
    settings: SweepSettings
    metric: Metric = field(default_factory=Metric)
    raw: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.runs)

    @property
    def store(self) -> Path:
        return Path(self.settings.store)

    @property
    def report(self) -> Path | None:
        return Path(self.settings.report) if self.settings.report else None


def load_spec(path: str | Path, overrides: dict[str, tuple[str, Any]] | None = None,
              assignments: list[str] | None = None) -> SweepSpec:
    """Read and validate a sweep spec file.

    ``overrides``: values of the ``scalelab`` section given on the command line, keyed
    by the section's key (``{"workers": ("--workers", 4)}``); they replace the file's
    before validation, and a bad one's sentence names the option. ``assignments``:
    ``key=value`` texts (see :func:`apply_assignments`), applied before validation too.
    """
    path = Path(path)
    raw = read_spec_yaml(path)  # a folder, not UTF-8, YAML tags, a key given twice: refused
    if assignments:
        raw = apply_assignments(raw, assignments, source=str(path))
    return parse_spec(raw, source=str(path), path=path, overrides=overrides)


def parse_assignment(text: str, source: str = "the command line") -> tuple[list[str], Any]:
    """``"model.width=64"`` → (``["model", "width"]``, 64): a dotted key and a YAML value
    (``4,8``, Hydra's sweep over a list, → ``[4, 8]``)."""
    key, sep, value = text.partition("=")
    parts = _key_parts(key, sep, text, source)
    return parts, _parse_value(value, parts, text, source)


def parse_override(text: str, source: str = "the command line") -> tuple[str, list[str], Any]:
    """An override with Hydra's prefixes: ``("", key, value)`` for ``key=value``, ``"+"``
    for ``+key=value`` (add a key the spec lacks), ``"++"`` for ``++key=value`` (set it
    whether or not the spec has it), ``"~"`` for ``~key`` or ``~key=value`` (delete it;
    the value, when given, must be the spec's); ``_ANY`` stands for a missing value."""
    for op in ("++", "+", "~"):
        if text.startswith(op):
            break
    else:
        return ("", *parse_assignment(text, source))
    body = text[len(op):]
    if op == "~" and "=" not in body:
        return op, _key_parts(body, "=", text, source), _ANY
    key, sep, value = body.partition("=")
    parts = _key_parts(key, sep, text, source)
    return op, parts, _parse_value(value, parts, text, source)


_ANY = object()  # ``~key``: delete whatever value the key has


def _key_parts(key: str, sep: str, text: str, source: str) -> list[str]:
    parts = key.strip().split(".")
    if not sep or not all(p.strip() for p in parts) or key.strip()[:1] in "+~":
        raise SpecError(f"{source}: {text!r} is not a KEY=VALUE override; write e.g. "
                        f"width=64, model.width=64, options.path=a.nc, width=4,8, "
                        f"+key=value or ~key.")
    return [p.strip() for p in parts]


def _parse_value(value: str, parts: list[str], text: str, source: str) -> Any:
    """An override's value: YAML (or the Python literal W&B's agent writes for a nested
    group, ``{'depth': 2, 'flag': True}``); a comma outside brackets and quotes makes a list
    (Hydra's ``width=4,8``)."""
    items = _split_commas(value)
    if len(items) > 1:
        if not all(item.strip() for item in items):
            raise SpecError(f"{source}: {text!r} has an empty item in its comma list; write "
                            f"e.g. {'.'.join(parts)}=4,8.")
        return [_parse_one(item, parts, text, source) for item in items]
    return _parse_one(value, parts, text, source)


def _split_commas(value: str) -> list[str]:
    items, depth, quote, start = [], 0, None, 0
    for i, char in enumerate(value):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(value[start:i])
            start = i + 1
    return items + [value[start:]]


def _parse_one(value: str, parts: list[str], text: str, source: str) -> Any:
    if not value.strip():
        return ""
    if value.strip()[:1] in "[{":
        try:  # what W&B's agent writes for a nested group or a list: Python's repr
            parsed = ast.literal_eval(value.strip())
            if isinstance(parsed, (dict, list)):
                return parsed
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    try:  # the spec's own loader: a key twice ({a: 1, a: 2}) and tags refused here too
        parsed = yaml.load(value, Loader=guards._SpecLoader)  # noqa: S506
    except RecursionError:
        raise SpecError(f"{source}: the value of {'.'.join(parts)} nests lists or mappings "
                        f"too deeply to read (more than {guards.MAX_DEPTH} levels are "
                        f"refused); write flat values.") from None
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise SpecError(f"{source}: the value of {'.'.join(parts)} in {text!r} is not valid "
                        f"YAML ({problem}); quote it or fix it, e.g. samples=[256,512].") from None
    return _numbers(parsed)


def _numbers(value: Any) -> Any:
    """YAML 1.1 reads 1e-3 as text; YAML 1.2 and W&B read a number."""
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    return value


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def apply_assignments(raw: Any, assignments: list[str], source: str = "the spec") -> Any:
    """The spec ``raw`` with ``key=value`` assignments applied (a copy; see the module's
    docstring); the list is kept under ``overrides`` for the store's record."""
    if not isinstance(raw, dict):
        return raw  # parse_spec names the problem
    given = raw.get("overrides")
    if given is not None and not (isinstance(given, list)
                                  and all(isinstance(t, str) for t in given)):
        raise SpecError(f"{source}: overrides must be a list of KEY=VALUE texts, got {given!r}.")
    raw = copy.deepcopy(raw)
    for text in assignments:
        op, parts, value = parse_override(text, source)
        if parts[0] == "overrides":  # scalelab's record of the assignments themselves
            raise SpecError(f"{source}: {text!r}: overrides is scalelab's record of the "
                            f"command line's KEY=VALUE changes and cannot be set; give the "
                            f"changes themselves, e.g. width=64.")
        if parts[0] == "parameters":
            parts = parts[1:] or parts
        if parts[0] in TOP_KEYS - {"parameters"}:
            _set_key(raw, parts, op, value, text, source)
        else:
            if not isinstance(raw.get("parameters"), dict):
                raw["parameters"] = {}
            _set_parameter(raw["parameters"], parts, op, value, text, source)
    raw["overrides"] = list(raw.get("overrides") or []) + list(assignments)
    return raw


def _edit(container: dict, key: str, op: str, value, text: str, source: str, what: str) -> bool:
    """Apply ``+``/``~`` to ``container[key]`` (checked as Hydra does); True when done."""
    if op == "+" and key in container:
        raise SpecError(f"{source}: {text!r} adds {what}, which the spec already has; write "
                        f"{text[1:]} (or +{text}) to change it.")
    if op != "~":
        return False
    if key not in container:
        raise SpecError(f"{source}: {text!r} deletes {what}, which the spec does not have.")
    if value is not _ANY and container[key] != value:
        def shown(entry):  # a parameter's {value: x} as x
            return entry["value"] if isinstance(entry, dict) and list(entry) == ["value"] \
                else entry

        raise SpecError(f"{source}: {text!r} deletes {what} only if it is {shown(value)!r}, "
                        f"but it is {shown(container[key])!r}; write "
                        f"{text.partition('=')[0]} to delete it whatever it is.")
    del container[key]
    return True


def _set_key(raw: dict, parts: list[str], op: str, value, text: str, source: str) -> None:
    target = raw
    for i, part in enumerate(parts[:-1]):
        nxt = target.get(part)
        if nxt is None:
            if op == "~":
                raise SpecError(f"{source}: {text!r} deletes {'.'.join(parts)}, which the "
                                f"spec does not have.")
            nxt = target[part] = {}
        if not isinstance(nxt, dict):
            raise SpecError(f"{source}: {text!r} sets a key inside {'.'.join(parts[:i + 1])}, "
                            f"which is not a mapping in the spec.")
        target = nxt
    if not _edit(target, parts[-1], op, value, text, source, f"the key {'.'.join(parts)}"):
        target[parts[-1]] = value


def _is_group(entry) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("parameters"), dict)


def _find_parameter(params: dict, name: str, path: tuple = ()) -> tuple | None:
    for key, entry in params.items():
        if key == name and not _is_group(entry):
            return (*path, key)
        if _is_group(entry):
            found = _find_parameter(entry["parameters"], name, (*path, key))
            if found:
                return found
    return None


def _mappings(entry) -> list[dict]:
    """The mappings a mapping-valued parameter (``options``) holds: its value, or each of
    its values."""
    if not isinstance(entry, dict):
        return []
    if isinstance(entry.get("value"), dict):
        return [entry["value"]]
    values = entry.get("values")
    if isinstance(values, list) and values and all(isinstance(v, dict) for v in values):
        return values
    return []


def _holders(params: dict, key: str, path: tuple = ()) -> list[tuple]:
    """Paths of the mapping-valued parameters that hold ``key`` (``path`` in options)."""
    found = []
    for name, entry in params.items():
        if _is_group(entry):
            found += _holders(entry["parameters"], key, (*path, name))
        elif any(key in m for m in _mappings(entry)):
            found.append((*path, name))
    return found


MAPPING_PARAMETERS = ("options",)  # run parameters whose value is a mapping of keys


def _group_at(params: dict, path, text: str, source: str) -> dict:
    """The ``parameters`` of the group at ``path`` (one sentence when there is none)."""
    target = params
    for i, group in enumerate(path):
        entry = target.get(group)
        if not _is_group(entry):
            groups = [k for k, e in target.items() if _is_group(e)]
            raise SpecError(f"{source}: {text!r}: the spec has no parameter group "
                            f"{'.'.join(path[:i + 1])!r} (groups: {', '.join(groups) or 'none'}); "
                            f"write {text.partition('=')[0].split('.')[-1]}="
                            f"{text.partition('=')[2]} instead.")
        target = entry["parameters"]
    return target


def _set_parameter(params: dict, parts: list[str], op: str, value, text: str,
                   source: str) -> None:
    """Change a run parameter where the spec has it (through its groups), else at the top of
    ``parameters``: ``{value: v}``, ``{values: [...]}`` for a list (a sweep), a mapping given
    to a group spread over its parameters (W&B's agent gives ``model={'depth': 2}``), a key
    inside a mapping-valued parameter (``options.path=a.nc``, or ``path=a.nc`` where one
    parameter's mapping holds ``path``)."""
    if len(parts) == 1:
        name = parts[0]
        found = _find_parameter(params, name)
        if found:
            group, inner = list(found[:-1]), []
            name = found[-1]
        elif name not in params and name not in (*RunConfig.field_names(), *LENGTH_KEYS) \
                and len(holders := _holders(params, name)) == 1:
            group, name, inner = list(holders[0][:-1]), holders[0][-1], [parts[0]]
        else:
            group, inner = [], []
            if name not in params and name not in (*RunConfig.field_names(), *LENGTH_KEYS):
                from scalelab.data.options import DATA_KEYS

                if name in DATA_KEYS:
                    raise SpecError(f"{source}: {text!r}: {name} is not a run parameter but a "
                                    f"key of options; write options.{text.lstrip('+~')}.")
    else:
        # the longest run of leading groups, then the parameter, then keys inside its value
        i = 0
        target = params
        while i < len(parts) - 1 and _is_group(target.get(parts[i])):
            target = target[parts[i]]["parameters"]
            i += 1
        group, name, inner = parts[:i], parts[i], parts[i + 1:]
        if inner and i == 0 and name not in params:
            found = _find_parameter(params, name)
            if found:  # options.path with options inside a group
                group, name = list(found[:-1]), found[-1]
            elif name not in MAPPING_PARAMETERS:
                _group_at(params, parts[:-1], text, source)  # names the missing group
    container = _group_at(params, group, text, source)
    if inner:
        _set_inside(container, name, inner, op, value, text, source)
        return
    entry = container.get(name)
    if _is_group(entry) and op != "~":
        if not isinstance(value, dict):
            members = ", ".join(entry["parameters"])
            raise SpecError(f"{source}: {text!r}: {name} is a group of parameters ({members}); "
                            f"set one as {name}.{next(iter(entry['parameters']))}=VALUE or give "
                            f"a mapping, {name}={{KEY: VALUE}}.")
        for key, item in value.items():  # W&B's agent: model={'depth': 2, 'width': 4}
            _set_parameter(entry["parameters"], [str(key)], op, item, text, source)
        return
    if not _edit(container, name, op, value if value is _ANY else _entry(name, value), text,
                 source, f"the parameter {'.'.join([*group, name])}"):
        container[name] = _entry(name, value)


def _entry(name: str, value) -> dict:
    """A parameter's spec entry for an override's value: a list sweeps it, except the
    comma-less list of a list-valued parameter (``cooldowns=[0.25,0.5]``)."""
    if isinstance(value, list) and name != "cooldowns":
        return {"values": value}
    return {"value": value}


def _set_inside(container: dict, name: str, inner: list[str], op: str, value, text: str,
                source: str) -> None:
    """``options.path=a.nc``: a key inside a mapping-valued parameter (in each of its
    values where it is swept); a comma list there sweeps the parameter over copies."""
    entry = container.get(name)
    if entry is None:
        if op == "~":
            raise SpecError(f"{source}: {text!r} deletes a key of {name}, which the spec "
                            f"does not have.")
        entry = container[name] = {"value": {}}
    mappings = _mappings(entry)
    if not mappings:
        raise SpecError(f"{source}: {text!r} sets a key inside {name}, whose value is not a "
                        f"mapping in the spec; write {name}={{{inner[0]}: ...}} instead.")
    if isinstance(value, list) and op != "~":  # a sweep of the key: one mapping per value
        if len(mappings) > 1:
            raise SpecError(f"{source}: {text!r} sweeps a key of {name}, which the spec "
                            f"already sweeps; list its mappings in {name}.values instead.")
        copies = [copy.deepcopy(mappings[0]) for _ in value]
        for mapping, item in zip(copies, value):
            _set_key(mapping, inner, op, item, text, source)
        entry.pop("value", None)
        entry["values"] = copies
        return
    for mapping in mappings:
        _set_key(mapping, inner, op, value, text, source)


def parse_spec(raw: Any, source: str = "the spec", path: Path | None = None,
               overrides: dict[str, tuple[str, Any]] | None = None) -> SweepSpec:
    """Validate a spec given as a dict and expand it into run configs (``overrides``: see
    :func:`load_spec`)."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a sweep spec must be a YAML mapping with a 'parameters' "
                        f"section, got {type(raw).__name__}.")
    guards.check_nesting(raw, source)  # aliases that expand to millions, lists 3000 deep
    check_keys(raw, TOP_KEYS, source, "top-level key")
    method = raw.get("method", "grid")
    if method not in METHODS:
        raise SpecError(f"{source}: method {method!r} is not supported; use one of "
                        f"{', '.join(METHODS)}.")
    metric = Metric.from_spec(raw.get("metric"), source)
    run_cap = raw.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool)
                                or run_cap <= 0):
        raise SpecError(f"{source}: run_cap must be a positive integer, got {run_cap!r}.")
    if run_cap is not None and run_cap > MAX_RUNS:
        raise SpecError(f"{source}: run_cap {run_cap} is more runs than a sweep may plan "
                        f"(at most {MAX_RUNS}); split the sweep or lower run_cap.")
    if "name" in raw:
        guards.check_name(raw["name"], source)
    _check_early_terminate(raw.get("early_terminate"), source)
    given = raw.get("overrides")
    if given is not None and not (isinstance(given, list)
                                  and all(isinstance(t, str) for t in given)):
        raise SpecError(f"{source}: overrides must be a list of KEY=VALUE texts, got {given!r}.")
    params = raw.get("parameters")
    if not isinstance(params, dict) or not params:
        raise SpecError(f"{source}: 'parameters' must be a non-empty mapping of run "
                        f"parameters (e.g. width: {{values: [8, 16]}}).")
    axes = _flatten_parameters(params, source, prefix="parameters", method=method)
    places: dict[str, str] = {}
    for axis in axes:  # one name in two groups would keep one of them without a word
        if axis.name in places:
            raise SpecError(f"{source}: parameter {axis.name!r} is given twice, as "
                            f"{places[axis.name]} and {axis.where}; a run has one {axis.name}, "
                            f"so keep one of them (list its values there).")
        places[axis.name] = axis.where
    known = set(RunConfig.field_names()) | set(LENGTH_KEYS)
    for axis in axes:
        if axis.name not in known:
            raise SpecError(f"{source}: unknown parameter {axis.name!r}; expected one of "
                            f"{', '.join(sorted(known))}.")

    section = raw.get("scalelab")
    labels: dict[str, str] = {}
    if overrides and (section is None or isinstance(section, dict)):
        section = dict(section or {})
        for key, (option_name, value) in overrides.items():
            section[key] = value
            labels[key] = option_name
    settings = SweepSettings.from_section(section, source, labels)
    seed = settings.seed

    if method == "grid":
        size = math.prod(len(a.values) for a in axes)
        if size > MAX_RUNS and run_cap is None:
            raise SpecError(f"{source}: the grid has {size} points, more than a sweep may "
                            f"plan (at most {MAX_RUNS}); set run_cap or use fewer values.")
        combos = itertools.product(*[a.values for a in axes])
    else:
        if run_cap is None:
            raise SpecError(f"{source}: method random needs run_cap (how many runs to draw), "
                            f"e.g. run_cap: 20.")
        rng = random.Random(seed)
        combos = ([a.draw(rng) for a in axes] for _ in range(run_cap * 20))
    names = [a.name for a in axes]
    runs: list[RunConfig] = []
    seen: set[str] = set()
    drawn: set[str] = set()  # random search: a combination drawn again is not validated again
    for combo in combos:
        if method == "random":
            key = repr(combo)
            if key in drawn:
                continue
            drawn.add(key)
        values = _steps_from_budget(dict(zip(names, combo)), source)
        cfg = RunConfig.from_dict(values, source=source)  # types; the values are checked below
        if cfg.run_id not in seen:
            seen.add(cfg.run_id)
            cfg.check_budgets(source)  # what the expansion into trunks and branches needs
            runs.append(cfg)
        if run_cap is not None and len(runs) >= run_cap:
            break
    # each run checked once, after expansion: the configs later layers take as given
    runs = [cfg.validate(source) for cfg in _unique(expand_budgets(runs))]
    guards.check_parents(runs, source)  # a branch of a trunk that is not in the sweep
    guards.check_metric(metric, runs, source)  # a name no run records, before any trains

    guards.check_options_keys(runs, source)  # a typo in options, named before any work
    guards.check_schedule_options(runs, source)  # decay_fraction where no schedule reads it
    guards.check_sampling_work(runs, source)  # sampler_steps that would run for days
    guards.check_memory(runs, source)  # sizes that cannot fit, from a lower bound
    name = str(raw.get("name") or (path.stem if path else "sweep"))
    store = Path(settings.store or f"reports/{name}/runs.db")
    given = section if isinstance(section, dict) else {}
    report = given["report"] if "report" in given else str(store.parent / "report.pdf")
    settings = replace(settings, store=str(store), report=report)
    return SweepSpec(name=name, path=path, runs=runs, settings=settings, metric=metric, raw=raw)


def _steps_from_budget(values: dict, source: str) -> dict:
    """Replace ``samples_seen`` or ``epochs`` by the ``steps`` that see that much data."""
    given = [k for k in ("steps", *LENGTH_KEYS) if k in values]
    if len(given) > 1:
        raise SpecError(f"{source}: give a run's length once, as steps, samples_seen or "
                        f"epochs; got {' and '.join(given)}.")
    if not given or given[0] == "steps":
        return values
    key = given[0]
    amount = values.pop(key)
    if isinstance(amount, str):
        try:
            amount = float(amount)
        except ValueError:
            pass
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not amount > 0 \
            or not math.isfinite(amount):
        raise SpecError(f"{source}: {key} must be a positive number (finite), got {amount!r}.")
    batch = RunConfig.from_dict({k: values[k] for k in ("batch_size", "samples") if k in values},
                                source=source)
    seen = amount if key == "samples_seen" else amount * max(1, batch.samples)
    values["steps"] = max(1, math.ceil(seen / max(1, batch.batch_size) - 1e-9))
    return values


def _unique(runs: list[RunConfig]) -> list[RunConfig]:
    seen: set[str] = set()
    out = []
    for cfg in runs:
        if cfg.run_id not in seen:
            seen.add(cfg.run_id)
            out.append(cfg)
    return out


HYPERBAND_KEYS = {"type", "min_iter", "max_iter", "s", "eta", "strict"}


def _check_early_terminate(value, source: str) -> None:
    """``early_terminate`` as W&B defines it: ``{type: hyperband, min_iter: k}`` or
    ``{type: hyperband, max_iter: k, s: n}``, with optional ``eta`` (> 1) and ``strict``."""
    if value is None:
        return
    where = f"{source}: early_terminate"
    if not isinstance(value, dict) or value.get("type") != "hyperband":
        raise SpecError(f"{where} must be W&B's hyperband, e.g. {{type: hyperband, "
                        f"min_iter: 3}}, got {value!r}.")
    check_keys(value, HYPERBAND_KEYS, source, "key in early_terminate")
    ints = [k for k in ("min_iter", "max_iter") if k in value]
    for key in ints:
        if not isinstance(value[key], int) or isinstance(value[key], bool) or value[key] < 1:
            raise SpecError(f"{where}.{key} must be a positive integer (evaluations), got "
                            f"{value[key]!r}.")
    if "min_iter" not in value and not ("max_iter" in value and "s" in value):
        raise SpecError(f"{where} needs min_iter, or max_iter with s (W&B's hyperband).")
    for key in ("s", "eta"):
        if key in value and (not isinstance(value[key], (int, float))
                             or isinstance(value[key], bool)):
            raise SpecError(f"{where}.{key} must be a number, got {value[key]!r}.")
    if "eta" in value and value["eta"] <= 1:
        raise SpecError(f"{where}.eta must be above 1, got {value['eta']!r}.")
    if "strict" in value and not isinstance(value["strict"], bool):
        raise SpecError(f"{where}.strict must be true or false, got {value['strict']!r}.")


def refuse_early_terminate(spec: SweepSpec) -> None:
    """scalelab's own executors run every run to its end: a spec that asks W&B's hyperband
    to stop runs early is refused with a sentence saying how to get it."""
    if spec.raw.get("early_terminate") is not None:
        name = spec.path or "SPEC"
        raise SpecError(f"{spec.path or 'the spec'}: early_terminate (W&B's hyperband) stops "
                        f"runs from W&B's sweep controller, which scalelab's own executors do "
                        f"not have; run it with W&B (scalelab sweep wandb {name} -o sweep.yaml, "
                        f"wandb sweep sweep.yaml, wandb agent ID) or remove early_terminate.")


AGENT_COMMAND = ["${env}", "scalelab", "agent-run"]


def wandb_config(spec: SweepSpec, store: str | None = None) -> dict:
    """The spec as W&B's sweep controller takes it: everything but the ``scalelab`` section,
    with the ``program``/``command`` that ``wandb agent`` runs for each trial.

    W&B's sweep schema (wandb/sweeps, ``config/schema.json``) allows no top-level keys of
    its own beyond its list, so ``wandb sweep`` with a local controller refuses a file with
    a ``scalelab`` section; ``scalelab sweep wandb SPEC -o FILE`` writes this instead. The
    expanded runs are the same: grid/random search, distributions, nested parameters
    (W&B's controller gives a trial a nested group as one mapping, ``model={'width': 8}``,
    which ``agent-run`` spreads over the group's parameters).
    The command is ``scalelab agent-run [--store STORE] SPEC [overrides]
    ${args_no_hyphens}``: SPEC is the path as given (a relative one is found from the
    folder ``wandb agent`` runs in, so agents on other machines need not share a folder
    layout), ``store`` each agent's run store (``$VARS`` in it, and in SPEC, are expanded
    by each agent: ``runs/agent-$SCALELAB_AGENT.db``); W&B's agent appends the trial's
    values as ``key=value``, the overrides grammar of ``scalelab run``. A spec's own
    ``program``/``command`` is kept.
    """
    config = {k: v for k, v in spec.raw.items() if k not in ("scalelab", "overrides")}
    config.setdefault("name", spec.name)
    project = spec.settings.wandb.get("project")
    if project and "project" not in config:
        config["project"] = project
    if "command" not in config:
        if spec.path is None:
            raise SpecError("the spec has no file, and wandb agent's command must name one; "
                            "save it as YAML and export that file.")
        config["program"] = config.get("program", "scalelab")
        config["command"] = [*AGENT_COMMAND, *(["--store", str(store)] if store else []),
                             str(spec.path), *(spec.raw.get("overrides") or []),
                             "${args_no_hyphens}"]
    return config


@dataclass
class _Axis:
    """One swept parameter: a finite list of values, or a distribution to draw from."""

    name: str
    values: list | None = None
    probabilities: list | None = None
    where: str = ""
    distribution: str | None = None
    low: float = 0.0
    high: float = 0.0
    q: float = 1.0

    def draw(self, rng: random.Random):
        if self.values is not None:
            if self.probabilities is None:
                return rng.choice(self.values)
            return rng.choices(self.values, weights=self.probabilities)[0]
        if self.distribution == "uniform":
            return rng.uniform(self.low, self.high)
        if self.distribution == "log_uniform_values":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        if self.distribution == "int_uniform":
            return rng.randint(int(self.low), int(self.high))
        # q_uniform: round(uniform(min, max) / q) * q, as W&B defines it
        value = round(rng.uniform(self.low, self.high) / self.q) * self.q
        return int(value) if float(self.q).is_integer() and float(self.low).is_integer() \
            else value


def _number(entry: dict, key: str, where: str, source: str) -> float:
    value = entry.get(key)
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = entry[key] = float(value)  # YAML 1.1 reads 1e-4 as text; W&B reads a number
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise SpecError(f"{source}: {where}.{key} must be a finite number, got {value!r}.")
    return value


def _flatten_parameters(params: dict, source: str, prefix: str, method: str) -> list[_Axis]:
    axes: list[_Axis] = []
    for key, entry in params.items():
        where = f"{prefix}.{key}"
        if not isinstance(entry, dict):
            raise SpecError(f"{source}: {where} must be a mapping such as {{value: x}} or "
                            f"{{values: [x, y]}}, got {entry!r}.")
        check_keys(entry, PARAM_KEYS, source, f"key in {where}")
        if "parameters" in entry:
            if not isinstance(entry["parameters"], dict) or not entry["parameters"]:
                raise SpecError(f"{source}: {where}.parameters must be a non-empty mapping.")
            axes += _flatten_parameters(entry["parameters"], source, where, method)
            continue
        given = [k for k in ("value", "values", "distribution") if k in entry]
        if len(given) > 1:
            raise SpecError(f"{source}: {where} gives both {given[0]!r} and {given[1]!r}; keep "
                            f"one ('value' fixes the parameter, 'values' sweeps a list, "
                            f"'distribution' draws it).")
        if "value" in entry:
            axes.append(_Axis(key, values=[entry["value"]], where=where))
        elif "values" in entry:
            values = entry["values"]
            if not isinstance(values, list) or not values:
                raise SpecError(f"{source}: {where}.values must be a non-empty list.")
            probs = entry.get("probabilities")
            if probs is not None and (not isinstance(probs, list) or len(probs) != len(values)
                                      or any(not isinstance(p, (int, float)) or p < 0
                                             for p in probs)
                                      or not math.isclose(sum(probs), 1.0, abs_tol=1e-6)):
                raise SpecError(f"{source}: {where}.probabilities must be a list of "
                                f"{len(values)} non-negative numbers summing to 1.")
            axes.append(_Axis(key, values=values, probabilities=probs, where=where))
        elif "distribution" in entry:
            dist = entry["distribution"]
            if dist not in DISTRIBUTIONS:
                raise SpecError(f"{source}: {where}.distribution {dist!r} is not supported; "
                                f"use one of {', '.join(DISTRIBUTIONS)}.")
            if method == "grid":
                raise SpecError(f"{source}: {where} has a distribution, which method grid "
                                f"cannot enumerate; use method: random or give values.")
            low, high = _number(entry, "min", where, source), _number(entry, "max", where, source)
            if not low < high:
                raise SpecError(f"{source}: {where}.min must be below max, got min={low}, "
                                f"max={high}.")
            if dist == "log_uniform_values" and low <= 0:
                raise SpecError(f"{source}: {where}.min must be positive for "
                                f"log_uniform_values, got {low}.")
            if dist == "int_uniform" and not (isinstance(entry["min"], int)
                                               and isinstance(entry["max"], int)):
                raise SpecError(f"{source}: {where}.min and max must be integers for "
                                f"int_uniform.")
            q = 1.0
            if dist == "q_uniform":
                q = _number(entry, "q", where, source) if "q" in entry else 1.0
                if q <= 0:
                    raise SpecError(f"{source}: {where}.q must be positive, got {q}.")
            axes.append(_Axis(key, distribution=dist, low=low, high=high, q=q, where=where))
        else:
            raise SpecError(f"{source}: {where} needs 'value', 'values' or 'distribution' "
                            f"(got keys {', '.join(map(str, entry)) or 'none'}).")
    return axes
