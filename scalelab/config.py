"""RunConfig: one point of a sweep, as a flat set of values.

A run is fully described by its RunConfig (nanoGPT style: one flat set of values,
no framework objects). Its ``run_id`` is a hash of its content, so a sweep that is
started twice runs each point once. This module imports neither torch nor the
training code; the registries of valid names are consulted lazily in
:meth:`RunConfig.validate`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, fields
from typing import Any

from scalelab._errors import SpecError


@dataclass(frozen=True)
class RunConfig:
    """One training run of a downscaling network.

    Model: ``family`` (network family), ``width`` (channels), ``depth`` (blocks),
    ``scale`` (upscaling factor). Data: ``field`` (field generator or dataset),
    ``field_size`` (HR size in pixels), ``degradation`` (coarsening operator),
    ``samples`` (U, the number of distinct training samples; the samples seen are
    D = steps × batch_size, so a run makes D/U epochs), ``val_samples``. Objective:
    ``loss_variant``. Optimisation: ``optimizer``, ``lr``, ``weight_decay``,
    ``batch_size``, ``steps``, ``schedule``, ``warmup_steps``, ``eval_every``, ``seed``.
    ``options`` holds family/field/loss-specific extras (JSON-serialisable).

    Data budgets from one trunk (``schedule: wsd``; Hägele et al. 2024):
    ``cooldowns`` lists branch points (steps, or fractions of ``steps``) and
    ``cooldown_fraction`` the length of each decay relative to its branch point. A
    sweep expands such a point into a constant-rate *trunk* (``cooldowns`` resolved
    to steps, ``steps`` the last of them) and one *branch* per point (``parent`` the
    trunk's run id, ``branch_step`` the point, ``steps`` the point plus its decay);
    see :mod:`scalelab.sweep.branches`. A config with ``branch_step`` and no
    ``parent`` trains the branch's schedule from scratch.
    """

    family: str = "edsr"
    width: int = 16
    depth: int = 2
    scale: int = 4
    field: str = "grf"
    field_size: int = 32
    degradation: str = "block_mean"
    samples: int = 1024
    val_samples: int = 256
    loss_variant: str = "mse"
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 0.0
    batch_size: int = 32
    steps: int = 200
    schedule: str = "cosine"
    warmup_steps: int = 0
    eval_every: int = 50
    seed: int = 0
    ensemble_members: int = 1  # M > 1: the stochastic variant of the family, M members
    checkpoint_every: int = 0  # steps between checkpoints (0: none)
    device: str = "auto"
    amp: str = "none"  # "none" | "bf16" (CUDA autocast)
    channels_last: bool = False
    compile: bool = False
    options: dict = dataclasses.field(default_factory=dict)
    cooldowns: list = dataclasses.field(default_factory=list)  # wsd branch points
    cooldown_fraction: float = 0.2  # each decay's length / its branch point
    parent: str = ""  # a branch: the run id of its trunk
    branch_step: int = 0  # a branch: the trunk's step it starts from (wsd: decay start)

    # Fields that change where/how a run executes (not what it computes in exact
    # arithmetic); they do not enter the run_id.
    _NOT_HASHED = ("device", "checkpoint_every", "compile", "channels_last")
    # Fields that enter the run_id only when set, so the ids of runs that use none of
    # them are those of the scalelab versions before them (a store keeps its runs).
    _HASHED_IF_SET = {"cooldowns": [], "cooldown_fraction": 0.2, "parent": "",
                      "branch_step": 0}

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "the spec") -> "RunConfig":
        """Build a config from a flat dict, naming any key that is not a config field."""
        known = set(cls.field_names())
        unknown = sorted(set(values) - known)
        if unknown:
            raise SpecError(
                f"{source}: unknown parameter {unknown[0]!r}; expected one of "
                f"{', '.join(sorted(known))}."
            )
        typed = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            typed[f.name] = _coerce(f.name, values[f.name], f.type, source)
        return cls(**typed)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def run_id(self) -> str:
        """Content hash of the config (12 hex digits); equal configs share an id."""
        content = {k: v for k, v in self.to_dict().items() if k not in self._NOT_HASHED
                   and not (k in self._HASHED_IF_SET and v == self._HASHED_IF_SET[k])}
        blob = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def validate(self, source: str = "the spec") -> "RunConfig":
        """Check every value is possible; raise one SpecError sentence naming the key."""
        positive = ("width", "depth", "scale", "field_size", "samples", "val_samples",
                    "batch_size", "steps", "eval_every")
        for name in positive:
            value = getattr(self, name)
            if value <= 0:
                raise SpecError(f"{source}: {name} must be a positive integer, got {value}.")
        if self.ensemble_members < 1 or self.checkpoint_every < 0:
            bad = "ensemble_members" if self.ensemble_members < 1 else "checkpoint_every"
            raise SpecError(f"{source}: {bad} must be >= {1 if bad == 'ensemble_members' else 0}, "
                            f"got {getattr(self, bad)}.")
        if not self.lr > 0:
            raise SpecError(f"{source}: lr must be positive, got {self.lr}.")
        if self.weight_decay < 0:
            raise SpecError(f"{source}: weight_decay must be >= 0, got {self.weight_decay}.")
        if self.warmup_steps < 0 or self.warmup_steps >= self.steps:
            raise SpecError(
                f"{source}: warmup_steps must be in [0, steps), got {self.warmup_steps} "
                f"with steps={self.steps}."
            )
        self._validate_budgets(source)
        if self.field_size % self.scale:
            raise SpecError(
                f"{source}: scale {self.scale} does not divide field_size {self.field_size}; "
                f"choose a field_size that is a multiple of the scale."
            )
        from scalelab import registry

        registry.check_choice("family", self.family, registry.model_families(), source)
        registry.check_choice("loss_variant", self.loss_variant, registry.loss_variants(), source)
        from scalelab.losses.names import needs_ensemble

        if needs_ensemble(self.loss_variant) and self.ensemble_members < 2:
            raise SpecError(
                f"{source}: loss_variant {self.loss_variant!r} scores an ensemble, so "
                f"ensemble_members must be at least 2 (got {self.ensemble_members}).")
        registry.check_choice("field", self.field, registry.fields(), source)
        registry.check_choice("degradation", self.degradation, registry.degradations(), source)
        registry.check_choice("optimizer", self.optimizer, registry.OPTIMIZERS, source)
        registry.check_choice("schedule", self.schedule, registry.SCHEDULES, source)
        registry.check_choice("device", self.device.split(":")[0], registry.DEVICES, source)
        registry.check_choice("amp", self.amp, registry.AMP, source)
        return self

    @property
    def role(self) -> str:
        """``"trunk"`` (constant rate, branches start from it), ``"branch"`` or ``"run"``."""
        return "branch" if self.parent else "trunk" if self.cooldowns else "run"

    def cooldown_steps(self) -> list[int]:
        """The branch points in steps: integers are steps, numbers in (0, 1] fractions of
        ``steps`` (rounded to the nearest step); sorted, without repeats."""
        points = {round(c * self.steps) if isinstance(c, float) and c <= 1 else int(c)
                  for c in self.cooldowns}
        return sorted(points)

    def _validate_budgets(self, source: str) -> None:
        if not self.cooldowns and not self.parent and not self.branch_step:
            return
        if self.schedule != "wsd":
            raise SpecError(f"{source}: cooldowns, parent and branch_step belong to schedule "
                            f"wsd (a constant-rate trunk with linear decays); set schedule: "
                            f"wsd, got {self.schedule!r}.")
        if not 0 < self.cooldown_fraction <= 1:
            raise SpecError(f"{source}: cooldown_fraction must be in (0, 1] (the decay's "
                            f"length relative to its branch point; 0.1-0.2 is usual), got "
                            f"{self.cooldown_fraction}.")
        if self.cooldowns:
            bad = [c for c in self.cooldowns if isinstance(c, bool)
                   or not isinstance(c, (int, float)) or not c > 0
                   or (isinstance(c, float) and c > 1 and not c.is_integer())]
            if bad:
                raise SpecError(f"{source}: cooldowns must be steps (positive integers) or "
                                f"fractions of steps in (0, 1], got {bad[0]!r}.")
            if self.parent or self.branch_step:
                raise SpecError(f"{source}: a config with cooldowns is a trunk; it takes no "
                                f"parent or branch_step.")
            points = self.cooldown_steps()
            if points[0] <= self.warmup_steps:
                raise SpecError(f"{source}: the first cooldown point (step {points[0]}) must "
                                f"come after the warmup ({self.warmup_steps} steps).")
            if points[-1] > self.steps:
                raise SpecError(f"{source}: cooldown point {points[-1]} lies beyond steps="
                                f"{self.steps}; give points up to steps (or fractions of it).")
            return
        if not self.warmup_steps < self.branch_step < self.steps:
            raise SpecError(f"{source}: branch_step must lie after the warmup and before "
                            f"steps (warmup_steps={self.warmup_steps}, steps={self.steps}), "
                            f"got {self.branch_step}.")


def _coerce(name: str, value: Any, annotation: Any, source: str) -> Any:
    kind = {"int": int, "float": float, "str": str, "dict": dict, "bool": bool,
            "list": list}.get(str(annotation))
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise SpecError(f"{source}: {name} must be true or false, got {value!r}.")
    if kind is None or isinstance(value, kind) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is float and isinstance(value, str):
        try:  # YAML reads "1e-3" as a string
            return float(value)
        except ValueError:
            pass
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    raise SpecError(
        f"{source}: {name} must be {kind.__name__}, got {value!r} ({type(value).__name__})."
    )
