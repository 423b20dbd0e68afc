"""RunConfig: one point of a sweep, as a flat set of values.

A run is fully described by its RunConfig (nanoGPT style: one flat set of values,
no framework objects). Its ``run_id`` is a hash of its content, so a sweep that is
started twice runs each point once. This module imports neither torch nor the
training code; the registries of valid names are consulted lazily in
:meth:`RunConfig.validate`.
"""

from __future__ import annotations

import dataclasses
import datetime
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
    ``samples`` (training-set size D), ``val_samples``. Objective: ``loss_variant``.
    Optimisation: ``optimizer``, ``lr``, ``weight_decay``, ``batch_size``,
    ``steps``, ``schedule``, ``warmup_steps``, ``eval_every``, ``seed``.
    ``options`` holds family/field/loss-specific extras (JSON-serialisable).
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

    # Fields that change where/how a run executes (not what it computes in exact
    # arithmetic); they do not enter the run_id.
    _NOT_HASHED = ("device", "checkpoint_every", "compile", "channels_last")

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
        content = {k: v for k, v in self.to_dict().items() if k not in self._NOT_HASHED}
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
        from scalelab.data.options import check_field_options  # paths, variables, dates, size

        check_field_options(self.field, self.options, source, self.field_size, self.scale)
        registry.check_choice("optimizer", self.optimizer, registry.OPTIMIZERS, source)
        registry.check_choice("schedule", self.schedule, registry.SCHEDULES, source)
        registry.check_choice("device", self.device.split(":")[0], registry.DEVICES, source)
        registry.check_choice("amp", self.amp, registry.AMP, source)
        return self


def _plain(value: Any) -> Any:
    """``options`` as plain JSON values: YAML's unquoted dates (2020-01-01) become ISO strings."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def _coerce(name: str, value: Any, annotation: Any, source: str) -> Any:
    kind = {"int": int, "float": float, "str": str, "dict": dict, "bool": bool}.get(str(annotation))
    if kind is dict and isinstance(value, dict):
        return _plain(value)
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
