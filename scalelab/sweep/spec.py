"""Sweep specs: YAML files in the W&B sweep format, plus a ``scalelab`` section.

Where the two overlap a spec is a W&B sweep configuration
(https://docs.wandb.ai/guides/sweeps/sweep-config-keys): ``method`` (``grid`` or
``random``), ``metric``, ``run_cap`` and ``parameters``, each parameter being
``{value: x}``, ``{values: [...]}`` (with optional ``probabilities`` for random),
``{distribution: ..., min:, max:, q:}`` (``uniform``, ``log_uniform_values``,
``int_uniform``, ``q_uniform``; random only) or a nested ``{parameters: {...}}``
group, flattened into the run's flat config as W&B does. The ``scalelab`` section
holds what W&B has no words for: executor (``local`` or ``ray``), workers,
devices, runs per GPU, Ray address, retries, store and report paths, tracking,
the report's targets and ``result`` (``final``: each run's last value is what the laws
fit; ``best``: its lowest over the curve, as early stopping keeps).
The same file can be handed to ``wandb sweep``.

Random search draws from a generator seeded by ``scalelab.seed``, so expanding a
spec twice gives the same runs and — each run's id being the hash of its config —
a restarted sweep runs nothing twice. Everything is validated when the spec is
loaded, before any run starts; a problem is one :class:`SpecError` sentence
naming the file and the key.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scalelab._errors import ScalelabError, SpecError
from scalelab.config import RunConfig
from scalelab.targets import targets_from_spec

TOP_KEYS = {"name", "description", "method", "metric", "parameters", "program", "command",
            "project", "entity", "run_cap", "early_terminate", "scalelab"}
METHODS = ("grid", "random")
SCALELAB_KEYS = {"executor", "workers", "devices", "runs_per_gpu", "address", "max_attempts",
                 "ray_max_retries", "seed", "store", "report", "wandb", "targets", "result"}
EXECUTORS = ("local", "ray")
WANDB_KEYS = {"project", "entity", "group", "tags", "mode", "dir", "init_timeout"}
DISTRIBUTIONS = ("uniform", "log_uniform_values", "int_uniform", "q_uniform")
PARAM_KEYS = {"value", "values", "probabilities", "distribution", "min", "max", "q",
              "parameters", "mu", "sigma"}
# Guard against a grid that would take forever to even enumerate.
MAX_RUNS = 100_000


@dataclass
class SweepSpec:
    """A validated sweep: its name, the expanded run configs, and where things go."""

    name: str
    path: Path | None
    raw: dict
    runs: list[RunConfig]
    executor: str = "local"
    workers: int | None = None
    devices: str | list = "auto"
    runs_per_gpu: int = 1
    address: str | None = None
    max_attempts: int = 3
    ray_max_retries: int = 3
    store: Path = Path("reports/sweep/runs.db")
    report: Path | None = None
    wandb: dict = field(default_factory=dict)
    targets: list = field(default_factory=list)  # [{"params": 1e8}, {"compute": 1e18}, ...]
    result: str = "final"  # each run's value for the laws: "final" or "best" (early stopping)

    def __len__(self) -> int:
        return len(self.runs)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep spec file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such sweep spec file; give the path of a YAML spec "
                        f"such as sweeps/quickstart.yaml.")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise SpecError(f"{path}: YAML syntax error{where} ({problem}); fix the YAML "
                        f"and run again.") from None
    return parse_spec(raw, source=str(path), path=path)


def parse_spec(raw: Any, source: str = "the spec", path: Path | None = None) -> SweepSpec:
    """Validate a spec given as a dict and expand it into run configs."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: a sweep spec must be a YAML mapping with a 'parameters' "
                        f"section, got {type(raw).__name__}.")
    _check_keys(raw, TOP_KEYS, source, "top-level key")
    method = raw.get("method", "grid")
    if method not in METHODS:
        raise SpecError(f"{source}: method {method!r} is not supported; use one of "
                        f"{', '.join(METHODS)}.")
    metric = raw.get("metric")
    if metric is not None:
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
            raise SpecError(f"{source}: metric must be a mapping with a 'name' (e.g. "
                            f"{{name: val_loss, goal: minimize}}).")
        if metric.get("goal", "minimize") not in ("minimize", "maximize"):
            raise SpecError(f"{source}: metric.goal must be minimize or maximize, got "
                            f"{metric['goal']!r}.")
    run_cap = raw.get("run_cap")
    if run_cap is not None and (not isinstance(run_cap, int) or isinstance(run_cap, bool)
                                or run_cap <= 0):
        raise SpecError(f"{source}: run_cap must be a positive integer, got {run_cap!r}.")
    params = raw.get("parameters")
    if not isinstance(params, dict) or not params:
        raise SpecError(f"{source}: 'parameters' must be a non-empty mapping of run "
                        f"parameters (e.g. width: {{values: [8, 16]}}).")
    axes = _flatten_parameters(params, source, prefix="parameters", method=method)
    known = set(RunConfig.field_names())
    for axis in axes:
        if axis.name not in known:
            raise SpecError(f"{source}: unknown parameter {axis.name!r}; expected one of "
                            f"{', '.join(sorted(known))}.")

    extra = raw.get("scalelab") or {}
    if not isinstance(extra, dict):
        raise SpecError(f"{source}: the 'scalelab' section must be a mapping.")
    _check_keys(extra, SCALELAB_KEYS, source, "key in the 'scalelab' section")
    seed = _positive_int(extra, "seed", 0, source, minimum=0)

    if method == "grid":
        size = math.prod(len(a.values) for a in axes)
        if size > MAX_RUNS and run_cap is None:
            raise SpecError(f"{source}: the grid has {size} points (more than {MAX_RUNS}); "
                            f"set run_cap or use fewer values.")
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
    for combo in combos:
        cfg = RunConfig.from_dict(dict(zip(names, combo)), source=source).validate(source)
        if cfg.run_id not in seen:
            seen.add(cfg.run_id)
            runs.append(cfg)
        if run_cap is not None and len(runs) >= run_cap:
            break

    executor = extra.get("executor", "local")
    if executor not in EXECUTORS:
        raise SpecError(f"{source}: scalelab.executor {executor!r} is unknown; valid choices "
                        f"are {', '.join(EXECUTORS)}.")
    workers = extra.get("workers", "auto")
    if workers == "auto":
        workers = None
    elif not isinstance(workers, int) or isinstance(workers, bool) or workers <= 0:
        raise SpecError(f"{source}: scalelab.workers must be a positive integer or 'auto', "
                        f"got {workers!r}.")
    devices = extra.get("devices", "auto")
    if not (devices in ("auto", "cpu") or (isinstance(devices, list) and devices and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in devices))):
        raise SpecError(f"{source}: scalelab.devices must be auto, cpu or a list of CUDA "
                        f"device indices such as [0, 1], got {devices!r}.")
    runs_per_gpu = _positive_int(extra, "runs_per_gpu", 1, source)
    max_attempts = _positive_int(extra, "max_attempts", 3, source)
    ray_max_retries = _positive_int(extra, "ray_max_retries", 3, source, minimum=0)
    address = extra.get("address")
    if address is not None and not isinstance(address, str):
        raise SpecError(f"{source}: scalelab.address must be a Ray address such as "
                        f"'auto' or 'ray://head:10001', got {address!r}.")
    if address is not None and executor != "ray":
        raise SpecError(f"{source}: scalelab.address is only used by the ray executor; set "
                        f"executor: ray or remove address.")

    name = str(raw.get("name") or (path.stem if path else "sweep"))
    wandb_cfg = extra.get("wandb") or {}
    if not isinstance(wandb_cfg, dict):
        raise SpecError(f"{source}: scalelab.wandb must be a mapping (project, mode, ...).")
    _check_keys(wandb_cfg, WANDB_KEYS, source, "key in scalelab.wandb")
    if wandb_cfg.get("mode", "auto") not in ("auto", "offline", "online", "disabled"):
        raise SpecError(f"{source}: scalelab.wandb.mode must be auto, offline, online or "
                        f"disabled, got {wandb_cfg['mode']!r}.")
    timeout = wandb_cfg.get("init_timeout", 30)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise SpecError(f"{source}: scalelab.wandb.init_timeout must be a positive number of "
                        f"seconds, got {timeout!r}.")
    tags = wandb_cfg.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise SpecError(f"{source}: scalelab.wandb.tags must be a list of strings.")
    result = extra.get("result", "final")
    if result not in ("final", "best"):
        raise SpecError(f"{source}: scalelab.result must be final (each run's last value) or "
                        f"best (its lowest over the curve, as early stopping keeps), got "
                        f"{result!r}.")
    store = Path(extra.get("store", f"reports/{name}/runs.db"))
    report = extra.get("report", str(store.parent / "report.pdf"))
    return SweepSpec(
        name=name, path=path, raw=raw, runs=runs, executor=executor, workers=workers,
        devices=devices, runs_per_gpu=runs_per_gpu, address=address,
        max_attempts=max_attempts, ray_max_retries=ray_max_retries,
        store=store, report=Path(report) if report else None, wandb=dict(wandb_cfg),
        targets=_targets(raw, source), result=result,
    )


def _targets(raw: dict, source: str) -> list:
    """The report's targets (``scalelab.targets``), checked now so a typo fails early."""
    try:
        return targets_from_spec(raw)
    except ScalelabError as err:
        raise SpecError(f"{source}: scalelab.targets: {err}") from None


def wandb_config(spec: SweepSpec) -> dict:
    """The spec as W&B's sweep controller takes it: everything but the ``scalelab`` section.

    W&B's sweep schema (wandb/sweeps, ``config/schema.json``) allows no top-level keys of
    its own beyond its list, so ``wandb sweep`` with a local controller refuses a file with
    a ``scalelab`` section; ``scalelab sweep wandb SPEC -o FILE`` writes this instead. The
    expanded runs are the same: grid/random search, distributions, nested parameters.
    """
    config = {k: v for k, v in spec.raw.items() if k != "scalelab"}
    config.setdefault("name", spec.name)
    project = (spec.wandb or {}).get("project")
    if project and "project" not in config:
        config["project"] = project
    return config


def _positive_int(mapping: dict, key: str, default: int, source: str, minimum: int = 1) -> int:
    value = mapping.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError(f"{source}: scalelab.{key} must be an integer >= {minimum}, got "
                        f"{value!r}.")
    return value


def _check_keys(mapping: dict, allowed: set[str], source: str, what: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise SpecError(f"{source}: unknown {what} {key!r}; expected one of "
                            f"{', '.join(sorted(allowed))}.")


@dataclass
class _Axis:
    """One swept parameter: a finite list of values, or a distribution to draw from."""

    name: str
    values: list | None = None
    probabilities: list | None = None
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
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise SpecError(f"{source}: {where}.{key} must be a number, got {value!r}.")
    return value


def _flatten_parameters(params: dict, source: str, prefix: str, method: str) -> list[_Axis]:
    axes: list[_Axis] = []
    for key, entry in params.items():
        where = f"{prefix}.{key}"
        if not isinstance(entry, dict):
            raise SpecError(f"{source}: {where} must be a mapping such as {{value: x}} or "
                            f"{{values: [x, y]}}, got {entry!r}.")
        _check_keys(entry, PARAM_KEYS, source, f"key in {where}")
        if "parameters" in entry:
            if not isinstance(entry["parameters"], dict) or not entry["parameters"]:
                raise SpecError(f"{source}: {where}.parameters must be a non-empty mapping.")
            axes += _flatten_parameters(entry["parameters"], source, where, method)
            continue
        if "value" in entry:
            axes.append(_Axis(key, values=[entry["value"]]))
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
            axes.append(_Axis(key, values=values, probabilities=probs))
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
            axes.append(_Axis(key, distribution=dist, low=low, high=high, q=q))
        else:
            raise SpecError(f"{source}: {where} needs 'value', 'values' or 'distribution' "
                            f"(got keys {', '.join(map(str, entry)) or 'none'}).")
    return axes
