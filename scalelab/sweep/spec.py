"""Sweep specs: YAML files in the W&B sweep format, plus a ``scalelab`` section.

A spec names a ``method`` (``grid``), a ``metric`` and ``parameters``; each parameter
is ``{value: x}`` or ``{values: [...]}``, or a nested ``{parameters: {...}}`` group
(flattened into the run's flat config, as W&B does for nested sweeps). The
``scalelab`` section holds what W&B has no words for: executor, workers, store and
report paths, tracking. The same file can be handed to ``wandb sweep``.

Everything is validated when the spec is loaded — before any run starts — and a
problem is raised as one :class:`SpecError` sentence naming the file and the key.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from scalelab._errors import SpecError
from scalelab.config import RunConfig

TOP_KEYS = {"name", "description", "method", "metric", "parameters", "program", "command",
            "project", "entity", "run_cap", "early_terminate", "scalelab"}
METHODS = ("grid",)
SCALELAB_KEYS = {"executor", "workers", "store", "report", "wandb", "targets"}
EXECUTORS = ("local",)
WANDB_KEYS = {"project", "entity", "group", "tags", "mode", "dir"}


@dataclass
class SweepSpec:
    """A validated sweep: its name, the expanded run configs, and where things go."""

    name: str
    path: Path | None
    raw: dict
    runs: list[RunConfig]
    executor: str = "local"
    workers: int | None = None
    store: Path = Path("reports/sweep/runs.db")
    report: Path | None = None
    wandb: dict = field(default_factory=dict)
    targets: dict = field(default_factory=dict)

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
    params = raw.get("parameters")
    if not isinstance(params, dict) or not params:
        raise SpecError(f"{source}: 'parameters' must be a non-empty mapping of run "
                        f"parameters (e.g. width: {{values: [8, 16]}}).")
    axes = _flatten_parameters(params, source, prefix="parameters")
    names = [name for name, _ in axes]
    runs: list[RunConfig] = []
    seen: set[str] = set()
    for combo in itertools.product(*[values for _, values in axes]):
        cfg = RunConfig.from_dict(dict(zip(names, combo)), source=source).validate(source)
        if cfg.run_id not in seen:
            seen.add(cfg.run_id)
            runs.append(cfg)
    run_cap = raw.get("run_cap")
    if run_cap is not None:
        if not isinstance(run_cap, int) or run_cap <= 0:
            raise SpecError(f"{source}: run_cap must be a positive integer, got {run_cap!r}.")
        runs = runs[:run_cap]

    extra = raw.get("scalelab") or {}
    if not isinstance(extra, dict):
        raise SpecError(f"{source}: the 'scalelab' section must be a mapping.")
    _check_keys(extra, SCALELAB_KEYS, source, "key in the 'scalelab' section")
    executor = extra.get("executor", "local")
    if executor not in EXECUTORS:
        raise SpecError(f"{source}: scalelab.executor {executor!r} is unknown; valid choices "
                        f"are {', '.join(EXECUTORS)}.")
    workers = extra.get("workers", "auto")
    if workers == "auto":
        workers = None
    elif not isinstance(workers, int) or workers <= 0:
        raise SpecError(f"{source}: scalelab.workers must be a positive integer or 'auto', "
                        f"got {workers!r}.")
    name = str(raw.get("name") or (path.stem if path else "sweep"))
    wandb_cfg = extra.get("wandb") or {}
    if not isinstance(wandb_cfg, dict):
        raise SpecError(f"{source}: scalelab.wandb must be a mapping (project, mode, ...).")
    _check_keys(wandb_cfg, WANDB_KEYS, source, "key in scalelab.wandb")
    if wandb_cfg.get("mode", "auto") not in ("auto", "offline", "online", "disabled"):
        raise SpecError(f"{source}: scalelab.wandb.mode must be auto, offline, online or "
                        f"disabled, got {wandb_cfg['mode']!r}.")
    store = Path(extra.get("store", f"reports/{name}/runs.db"))
    report = extra.get("report", str(store.parent / "report.pdf"))
    return SweepSpec(
        name=name, path=path, raw=raw, runs=runs, executor=executor, workers=workers,
        store=store, report=Path(report) if report else None, wandb=dict(wandb_cfg),
        targets=dict(extra.get("targets") or {}),
    )


def _check_keys(mapping: dict, allowed: set[str], source: str, what: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise SpecError(f"{source}: unknown {what} {key!r}; expected one of "
                            f"{', '.join(sorted(allowed))}.")


def _flatten_parameters(params: dict, source: str, prefix: str) -> list[tuple[str, list]]:
    axes: list[tuple[str, list]] = []
    for key, entry in params.items():
        where = f"{prefix}.{key}"
        if not isinstance(entry, dict):
            raise SpecError(f"{source}: {where} must be a mapping such as {{value: x}} or "
                            f"{{values: [x, y]}}, got {entry!r}.")
        if "parameters" in entry:
            axes += _flatten_parameters(entry["parameters"], source, where)
            continue
        if "value" in entry:
            values = [entry["value"]]
        elif "values" in entry:
            values = entry["values"]
            if not isinstance(values, list) or not values:
                raise SpecError(f"{source}: {where}.values must be a non-empty list.")
        else:
            raise SpecError(f"{source}: {where} needs 'value' or 'values' (got keys "
                            f"{', '.join(map(str, entry)) or 'none'}).")
        axes.append((key, values))
    return axes
