"""Configuration, described once: a run (RunConfig) and a sweep's ``scalelab:`` section.

A run is fully described by its RunConfig (nanoGPT style: one flat set of values, no
framework objects). Its ``run_id`` is a hash of its content, so a sweep that is
started twice runs each point once. :class:`SweepSettings` describes the ``scalelab``
section of a sweep spec (executor, workers, store, W&B, ...) and
:class:`WandbSettings` its ``wandb`` mapping.

Each setting is declared once, as a dataclass field made by :func:`option`: its type
(the annotation), default, and what a valid value is (``minimum``, ``positive``,
``choices`` or a ``check``), with the words of the sentence that refuses a bad one.
One function, :func:`check_fields`, applies those declarations to RunConfigs and
spec sections alike, so every bad value — in a spec file or from a command-line
option applied to it — is refused with the same kind of sentence, naming the file,
the key and what is expected, before any run starts. Rules that tie two values
together (``warmup_steps < steps``, ``scale`` divides ``field_size``) follow the
per-value checks.

This module imports neither torch nor the training code: the names a spec may use
come from :mod:`scalelab.registry`, which is torch-free.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
from dataclasses import dataclass, fields
from typing import Any, Callable

from scalelab import registry
from scalelab._errors import SpecError, check_choice
from scalelab.losses.names import LossSpec, parse_loss


def option(default: Any = dataclasses.MISSING, *, minimum: float | None = None,
           positive: bool = False, choices: tuple | Callable[[], tuple] | None = None,
           check: Callable[[str, Any, str], None] | None = None, expect: str | None = None,
           hashed: bool = True, doc: str = "") -> Any:
    """A declared setting: a dataclass field whose metadata says what a valid value is.

    ``minimum``/``positive``: a number at least ``minimum`` / above zero, refused with
    "KEY must be EXPECT, got VALUE" (``expect`` defaults to "a positive integer", "an
    integer >= m", ">= m" or "positive"); ``choices``: one of these names (a tuple, or
    a function giving it); ``check(label, value, source)``: any other rule, raising
    SpecError. ``hashed=False``: the value says where a run executes, not what it
    computes, and stays out of the run id; ``hashed="if set"``: it enters the run id
    only when it differs from its default, so the ids of runs that use none of these
    settings are those of the versions before them (a store keeps its runs).
    """
    meta = {"minimum": minimum, "positive": positive, "choices": choices, "check": check,
            "expect": expect, "hashed": hashed, "doc": doc}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _default(f: dataclasses.Field) -> Any:
    """A field's default value (for a list or dict default, a fresh copy)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_fields(cls, values: dict[str, Any], source: str, prefix: str = "") -> None:
    """Check each declared setting of ``cls`` present in ``values``; one SpecError sentence.

    ``prefix`` names the section in the sentence (``"scalelab."``); a label in
    ``values.get("__labels__", {})`` replaces the key's (e.g. a command-line option).
    """
    labels = values.get("__labels__", {})
    for f in fields(cls):
        if f.name not in values or not f.metadata:
            continue
        meta, value = f.metadata, values[f.name]
        label = labels.get(f.name, prefix + f.name)
        minimum = meta["minimum"]
        if minimum is not None or meta["positive"]:
            integer = str(f.type).startswith("int")
            expect = meta["expect"] or (
                "positive" if meta["positive"] else "a positive integer"
                if integer and minimum == 1 else f"an integer >= {minimum}" if integer
                else f">= {minimum}")
            ok = _is_number(value) and math.isfinite(value) and (
                not integer or float(value).is_integer()) and (
                value > 0 if meta["positive"] else value >= minimum)
            if _is_number(value) and not math.isfinite(value):
                expect = f"{expect} and finite"
            if not ok:
                raise SpecError(f"{source}: {label} must be {expect}, got {value!r}.")
        if meta["choices"] is not None:
            choices = meta["choices"]() if callable(meta["choices"]) else meta["choices"]
            check_choice(source, label, value, choices, SpecError)
        if meta["check"] is not None:
            meta["check"](label, value, source)


def _device(label: str, value: str, source: str) -> None:
    check_choice(source, label, value.split(":")[0], registry.DEVICES, SpecError)


def _seed(label: str, value, source: str) -> None:
    if not (_is_number(value) and float(value).is_integer() and 0 <= value < 2**63):
        raise SpecError(f"{source}: {label} must be an integer in [0, 2^63) (torch's seeds are "
                        f"64-bit), got {value!r}.")


def _result(label: str, value, source: str) -> None:
    from scalelab.result import RESULTS

    if value not in RESULTS:
        raise SpecError(f"{source}: {label} must be final (each run's last value) or best (its "
                        f"lowest over the curve, as early stopping keeps), got {value!r}.")


def _bits(label: str, value, source: str) -> None:
    if not (_is_number(value) and float(value).is_integer() and (value == 0 or 2 <= value <= 16)):
        raise SpecError(f"{source}: {label} must be 0 (full precision) or a bit width in "
                        f"[2, 16], got {value!r}.")


def _fraction(label: str, value, source: str) -> None:
    if not (_is_number(value) and 0 < value <= 1):
        raise SpecError(f"{source}: {label} must be in (0, 1] (the share of the steps, at the "
                        f"end, trained quantized), got {value!r}.")


#: how an FP-then-QAT run schedules its learning rate (Dremov et al. 2025): ``split``, the
#: QAT phase restarts the run's schedule (warmup and decay of its own); ``fused``, one WSD
#: schedule whose decay is the QAT phase (cooldown and QAT fused)
QAT_SCHEDULES = ("split", "fused")


@dataclass(frozen=True)
class RunConfig:
    """One training run of a downscaling network (every field is a setting a spec may sweep).

    Model: ``family`` (network family), ``width`` (channels), ``depth`` (blocks),
    ``scale`` (upscaling factor). Data: ``field`` (field generator or dataset),
    ``field_size`` (HR size in pixels), ``degradation`` (coarsening operator),
    ``samples`` (U, the number of distinct training samples; the samples seen are
    D = steps × batch_size, so a run makes D/U epochs), ``val_samples``. Objective:
    ``loss_variant``. Optimisation: ``optimizer``, ``lr``, ``weight_decay``,
    ``batch_size``, ``steps``, ``schedule``, ``warmup_steps``, ``eval_every``, ``seed``;
    ``parametrization: mup`` with ``base_width`` scales the learning rates of the hidden
    weights and the output layer with the width (μP, :mod:`scalelab.models.mup`).
    ``adversarial_weight`` > 0 trains the network against a discriminator
    (:mod:`scalelab.train.adversarial`).
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

    family: str = option("edsr", choices=registry.model_families, doc="network family")
    width: int = option(16, minimum=1, doc="channels")
    depth: int = option(2, minimum=1, doc="blocks")
    scale: int = option(4, minimum=1, doc="upscaling factor")
    field: str = option("grf", choices=registry.fields, doc="field generator or dataset")
    field_size: int = option(32, minimum=8, expect="an integer >= 8 (SSIM's 7×7 window and "
                                                  "the spectrum's rings must fit)",
                             doc="HR size in pixels")
    degradation: str = option("block_mean", choices=registry.degradations,
                              doc="coarsening operator")
    samples: int = option(1024, minimum=1, doc="training-set size D (distinct samples)")
    val_samples: int = option(256, minimum=1)
    loss_variant: str = option("mse", doc="a loss name or a weighted sum, e.g. "
                                          "mse+0.1*spectral (parsed by validate: ``loss``)")
    optimizer: str = option("adamw", choices=registry.OPTIMIZERS)
    lr: float = option(2e-3, positive=True, doc="peak learning rate")
    weight_decay: float = option(0.0, minimum=0)
    batch_size: int = option(32, minimum=1)
    steps: int = option(200, minimum=1)
    schedule: str = option("cosine", choices=registry.SCHEDULES)
    warmup_steps: int = option(0, minimum=0, expect="in [0, steps)")
    eval_every: int = option(50, minimum=1)
    seed: int = option(0, check=_seed)
    ensemble_members: int = option(1, minimum=1,
                                   doc="M > 1: the stochastic variant of the family")
    adversarial_weight: float = option(0.0, minimum=0, hashed="if set",
                                       doc="weight of the adversarial term in the generator's "
                                           "loss (SRGAN; 0: no discriminator)")
    checkpoint_every: int = option(0, minimum=0, hashed=False,
                                   doc="steps between checkpoints (0: none)")
    device: str = option("auto", check=_device, hashed=False)
    amp: str = option("none", choices=registry.AMP,
                      doc="training precision: none (fp32) or bf16 (autocast, CUDA or CPU)")
    weight_bits: int = option(0, check=_bits, hashed="if set",
                              doc="k in [2, 16]: fake-quantized k-bit weights (QAT); 0: none")
    act_bits: int = option(0, check=_bits, hashed="if set",
                           doc="k in [2, 16]: fake-quantized k-bit layer inputs; 0: none")
    qat_fraction: float = option(1.0, check=_fraction, hashed="if set",
                                 doc="QAT for the last f of the steps, full precision before")
    qat_schedule: str = option("split", choices=QAT_SCHEDULES, hashed="if set",
                               doc="split (each phase its own LR schedule) or fused (QAT "
                                   "over the WSD decay)")
    channels_last: bool = option(False, hashed=False)
    compile: bool = option(False, hashed=False)
    options: dict = option({})
    cooldowns: list = option([], hashed="if set",
                             doc="wsd branch points: steps, or fractions of steps")
    cooldown_fraction: float = option(0.2, positive=True, hashed="if set",
                                      doc="each decay's length / its branch point")
    parent: str = option("", hashed="if set", doc="a branch: the run id of its trunk")
    branch_step: int = option(0, minimum=0, hashed="if set",
                              doc="a branch: the trunk's step it starts from")
    parametrization: str = option("standard", choices=registry.PARAMETRIZATIONS,
                                  hashed="if set",
                                  doc="standard, or mup: hidden weights' Adam learning rates "
                                      "and the output layer scaled by base_width/width")
    base_width: int = option(0, minimum=0, hashed="if set",
                             doc="mup: the width whose learning rate every width shares")

    def __post_init__(self):
        # qat_fraction and qat_schedule mean nothing to a run that quantizes nothing: such a
        # point of a grid over weight_bits is the one full-precision run (one run id)
        if not (self.weight_bits or self.act_bits):
            object.__setattr__(self, "qat_fraction", 1.0)
            object.__setattr__(self, "qat_schedule", "split")

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
        return cls(**coerce_fields(cls, values, source))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def run_id(self) -> str:
        """Content hash of the config (12 hex digits); equal configs share an id."""
        values = self.to_dict()
        content = {f.name: values[f.name] for f in fields(self)
                   if f.metadata["hashed"] is True
                   or (f.metadata["hashed"] == "if set" and values[f.name] != _default(f))}
        blob = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def validate(self, source: str = "the spec") -> "RunConfig":
        """Check every value is possible; raise one SpecError sentence naming the key.

        Run once per run, where the config enters (a sweep's expansion, or a user's own
        config given to ``train``): the config is then marked ``validated`` and carries its
        parsed loss (:attr:`loss`), which the later layers take as given. A config made
        from it by ``dataclasses.replace`` is a new config, checked again.
        """
        values = self.to_dict()
        coerce_fields(type(self), values, source)  # a wrong type is named before its value
        check_fields(type(self), values, source)
        if self.warmup_steps >= self.steps:
            raise SpecError(f"{source}: warmup_steps must be in [0, steps), got "
                            f"{self.warmup_steps} with steps={self.steps}.")
        self.check_budgets(source)
        self.check_quantization(source)
        if self.field_size % self.scale:
            raise SpecError(f"{source}: scale {self.scale} does not divide field_size "
                            f"{self.field_size}; choose a field_size that is a multiple of "
                            f"the scale.")
        loss = parse_loss(self.loss_variant, source)  # the one parse of the run's loss
        from scalelab._declare import check_declared
        from scalelab.models.names import check_family

        check_family(self, source)
        from scalelab.models.names import check_parametrization

        check_parametrization(self, source)
        check_declared(registry.TRAIN_OPTIONS_DECLARED, self.options, source)
        if loss.needs_ensemble and self.ensemble_members < 2:
            raise SpecError(
                f"{source}: loss_variant {self.loss_variant!r} scores an ensemble, so "
                f"ensemble_members must be at least 2 (got {self.ensemble_members}).")
        self.check_generator(loss, source)
        from scalelab.data.names import check_field  # ranges; paths, variables, dates, size

        check_field(self, source)
        object.__setattr__(self, "_loss", loss)  # frozen: set once, by the check itself
        return self

    @property
    def validated(self) -> bool:
        """Whether :meth:`validate` has accepted this config (it then carries its loss)."""
        return "_loss" in self.__dict__

    @property
    def loss(self) -> LossSpec:
        """The parsed loss expression: validate's, or parsed now for a config never validated."""
        return self.__dict__.get("_loss") or parse_loss(self.loss_variant)

    def on_device(self, device: str) -> "RunConfig":
        """This config with ``device`` named (it stays out of the run id); a validated config
        stays validated (the device a worker resolved is one torch knows)."""
        moved = dataclasses.replace(self, device=device)
        if self.validated:
            object.__setattr__(moved, "_loss", self.loss)
        return moved

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

    @property
    def quantized(self) -> bool:
        """Whether the run trains (part of its steps) with fake-quantized weights or inputs."""
        return bool(self.weight_bits or self.act_bits)

    def qat_start(self) -> int:
        """The first step trained quantized: ``steps`` less the QAT fraction's share (split),
        or the start of the WSD decay (fused); 0 for a run quantized throughout."""
        if not self.quantized:
            return self.steps
        if self.qat_schedule == "fused":  # where lr_at's WSD decay begins
            decay = float(self.options.get("decay_fraction", 0.2))
            return self.warmup_steps + math.ceil(
                (1.0 - decay) * (self.steps - self.warmup_steps) - 1e-9)
        return self.steps - round(self.qat_fraction * self.steps)

    def check_quantization(self, source: str) -> None:
        """The rules tying the QAT fields together; part of validate."""
        if not self.quantized:  # qat_fraction and qat_schedule were reset (__post_init__)
            return
        if not 0 <= self.qat_start() < self.steps:
            raise SpecError(f"{source}: qat_fraction {self.qat_fraction} leaves no step "
                            f"quantized in {self.steps} steps; raise it.")
        if self.qat_schedule == "fused":
            decay = float(self.options.get("decay_fraction", 0.2))
            if self.schedule != "wsd" or self.parent or self.cooldowns or self.branch_step:
                raise SpecError(f"{source}: qat_schedule fused trains quantized over the decay "
                                f"of a WSD schedule; set schedule: wsd (without cooldowns), "
                                f"got {self.schedule!r}.")
            if abs(decay - self.qat_fraction) > 1e-9:
                raise SpecError(f"{source}: qat_schedule fused trains quantized over the WSD "
                                f"decay, so qat_fraction must equal options.decay_fraction "
                                f"({decay:g}), got {self.qat_fraction:g}; set both.")

    def check_generator(self, loss: LossSpec, source: str) -> None:
        """Adversarial training and the VAE perturbation train the network on its output;
        a generative family trains by its own objective and draws its own samples."""
        from scalelab.models.names import REGISTRY as FAMILIES

        if not FAMILIES[self.family].generative:
            return
        if self.adversarial_weight > 0:
            raise SpecError(f"{source}: adversarial_weight applies to a network trained on its "
                            f"output, and the {self.family} family trains by its own "
                            f"objective; set adversarial_weight: 0 or choose another family.")
        if loss.needs_latent:
            raise SpecError(f"{source}: loss_variant {self.loss_variant!r} scores the latent of a "
                            f"VAE-perturbed network, and the {self.family} family draws its own "
                            f"samples; drop the kl term or choose another family.")

    def check_budgets(self, source: str) -> None:
        """The rules of data budgets (cooldowns, parent, branch_step): what a sweep's
        expansion into trunks and branches needs before it runs; part of validate."""
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


def coerce_fields(cls, values: dict[str, Any], source: str) -> dict[str, Any]:
    """The values of ``cls``'s fields in ``values``, converted to the declared types.

    YAML gives ``1e-3`` as a string and ``10.0`` for 10: those are converted; a value
    that cannot be (``width: wide``) is refused with one sentence.
    """
    return {f.name: _coerce(f.name, values[f.name], f.type, source)
            for f in fields(cls) if f.name in values}


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
    kind = {"int": int, "float": float, "str": str, "dict": dict, "bool": bool,
            "list": list}.get(str(annotation))
    if kind is dict and isinstance(value, dict):
        return _plain(value)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise SpecError(f"{source}: {name} must be true or false, got {value!r}.")
    if kind is None or isinstance(value, kind) and not isinstance(value, bool):
        return value
    if kind is float and _is_number(value):
        return float(value)
    if kind is float and isinstance(value, str):
        try:  # YAML reads "1e-3" as a string
            return float(value)
        except ValueError:
            pass
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind is int and isinstance(value, str):  # YAML 1.1 reads 1e9 as text
        try:
            number = float(value)
        except ValueError:
            number = None
        if number is not None and math.isfinite(number) and number.is_integer():
            return int(number)
    raise SpecError(
        f"{source}: {name} must be {kind.__name__}, got {value!r} ({type(value).__name__})."
    )


# -- the ``scalelab`` section of a sweep spec -------------------------------------------------
EXECUTORS = ("local", "ray")
WANDB_MODES = ("auto", "offline", "online", "disabled")


def _executor(label: str, value, source: str) -> None:
    if value not in EXECUTORS:
        raise SpecError(f"{source}: {label} {value!r} is unknown; valid choices are "
                        f"{', '.join(EXECUTORS)}.")


def _workers(label: str, value, source: str) -> None:
    if value != "auto" and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise SpecError(f"{source}: {label} must be a positive integer or 'auto', "
                        f"got {value!r}.")


def _devices(label: str, value, source: str) -> None:
    if not (value in ("auto", "cpu") or (isinstance(value, list) and value and all(
            isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value))):
        raise SpecError(f"{source}: {label} must be auto, cpu or a list of CUDA device "
                        f"indices such as [0, 1], got {value!r}.")


def _address(label: str, value, source: str) -> None:
    if value is not None and not isinstance(value, str):
        raise SpecError(f"{source}: {label} must be a Ray address such as 'auto' or "
                        f"'ray://head:10001', got {value!r}.")


def _gpus_per_run(label: str, value, source: str) -> None:
    if value is not None and (not _is_number(value) or not 0 <= value < math.inf):
        raise SpecError(f"{source}: {label} must be a number of GPUs >= 0 (a fraction such as "
                        f"0.25 packs runs on a GPU), got {value!r}.")


def _path(label: str, value, source: str) -> None:
    if value is None or value == "":
        raise SpecError(f"{source}: {label} is empty; give a file path, or remove the key "
                        f"to use the default.")
    if not isinstance(value, str):
        raise SpecError(f"{source}: {label} must be a file path, got {value!r}.")
    from scalelab._files import check_name_lengths

    try:
        check_name_lengths(value, f" ({label})")
    except SpecError:
        raise
    except Exception as err:  # noqa: BLE001 - a ScalelabError: the spec names it
        raise SpecError(f"{source}: {err}") from None
    if value.endswith(("/", "\\")):  # a path ending in a slash would become a file of that name
        raise SpecError(f"{source}: {label} {value!r} ends in a slash, so it names a folder, not "
                        f"a file; give a file path inside it, e.g. {value}runs.db.")


def _report_path(label: str, value, source: str) -> None:
    _path(label, value, source)
    if not value.lower().endswith(".pdf"):
        raise SpecError(f"{source}: {label} {value!r} must end in .pdf (the report is a PDF); "
                        f"give a path such as reports/NAME/report.pdf.")


def _mapping_of(cls, prefix: str):
    def check(label: str, value, source: str) -> None:
        if not isinstance(value, dict):
            raise SpecError(f"{source}: {label} must be a mapping (project, mode, ...).")
        check_keys(value, {f.name for f in fields(cls)}, source, f"key in {label}")
        check_fields(cls, value, source, prefix=prefix)
    return check


def _tags(label: str, value, source: str) -> None:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise SpecError(f"{source}: {label} must be a list of strings.")


def _init_timeout(label: str, value, source: str) -> None:
    if not _is_number(value) or not 0 < value < math.inf:
        raise SpecError(f"{source}: {label} must be a positive number of seconds (finite), got "
                        f"{value!r}.")


def _boolean(label: str, value, source: str) -> None:
    if not isinstance(value, bool):
        raise SpecError(f"{source}: {label} must be true or false, got {value!r}.")


def _targets(label: str, value, source: str) -> None:
    if not isinstance(value, (list, dict)):
        raise SpecError(f"{source}: {label} must be a list such as [params=1e8, compute=1e18], "
                        f"got {value!r}; write each target as an item of the list.")


def _parse_targets(value, source: str) -> list[dict[str, float]]:
    """A spec's ``scalelab.targets`` parsed once: ``[{"params": 1e8}, {"compute": 1e18}]``."""
    from scalelab._errors import ScalelabError
    from scalelab.targets import targets_from_spec

    try:
        return targets_from_spec({"scalelab": {"targets": value}})
    except ScalelabError as err:
        raise SpecError(f"{source}: scalelab.targets: {err}") from None


@dataclass(frozen=True)
class WandbSettings:
    """``scalelab.wandb``: where a sweep's runs are tracked in Weights & Biases."""

    project: str | None = option(None, doc="default scalelab-<sweep name>")
    entity: str | None = option(None)
    group: str | None = option(None, doc="default: the sweep's name")
    tags: list = option([], check=_tags)
    mode: str = option("auto", choices=WANDB_MODES,
                       doc="auto: online with WANDB_API_KEY, else offline")
    dir: str | None = option(None, doc="default: the store's folder")
    init_timeout: float = option(30, check=_init_timeout)


@dataclass(frozen=True)
class SweepSettings:
    """The ``scalelab`` section of a sweep spec: what W&B's sweep format has no words for."""

    executor: str = option("local", check=_executor, doc="local or ray")
    workers: Any = option("auto", check=_workers,
                          doc="concurrent runs: CPU cores, or GPUs × runs_per_gpu")
    devices: Any = option("auto", check=_devices, doc="auto, cpu or CUDA indices")
    runs_per_gpu: int = option(1, minimum=1, expect="an integer >= 1")
    address: str | None = option(None, check=_address, doc="Ray address (executor ray)")
    max_attempts: int = option(3, minimum=1, expect="an integer >= 1")
    ray_max_retries: int = option(3, minimum=0)
    cpus_per_run: float = option(1, positive=True,
                                 doc="CPU cores a run takes (Ray resource; torch threads)")
    gpus_per_run: float | None = option(None, check=_gpus_per_run,
                                        doc="GPUs a run takes on Ray (default 1 / runs_per_gpu "
                                            "on a cluster with GPUs, else 0)")
    seed: int = option(0, minimum=0, doc="seed of random search")
    store: str | None = option(None, check=_path, doc="default reports/<name>/runs.db")
    report: str | None = option(None, check=_report_path,
                                doc="default: report.pdf beside the store")
    wandb: dict = option({}, check=_mapping_of(WandbSettings, "scalelab.wandb."))
    targets: Any = option([], check=_targets, doc="predictions the report headlines (parsed "
                                                  "by from_section: a list of dicts)")
    stack: str = option("auto", choices=("auto", "off"),
                        doc="auto: runs that differ only in seed, lr, weight_decay, loss "
                            "weights or schedule train together as one stacked model "
                            "(scalelab.train.stacked); off: one run per worker at a time")
    stack_max: int = option(16, minimum=1, expect="an integer >= 1",
                            doc="most runs in one stack (fewer where memory is short)")
    cuda_graphs: bool = option(False, check=_boolean, doc="capture the stacked step in a CUDA graph (CUDA "
                                          "only; ignored on a CPU)")
    result: str = option("final", check=_result,
                         doc="each run's value the laws fit: final (its last value) or best "
                             "(its lowest over the curve, as early stopping keeps)")

    @classmethod
    def keys(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    @classmethod
    def from_section(cls, section, source: str, labels: dict[str, str] | None = None
                     ) -> "SweepSettings":
        """Validate a spec's ``scalelab`` mapping; ``labels`` name keys set on the command
        line (``{"workers": "--workers"}``) so their sentences say where the value came from."""
        if section is None:
            section = {}
        if not isinstance(section, dict):
            raise SpecError(f"{source}: the 'scalelab' section must be a mapping.")
        check_keys(section, cls.keys(), source, "key in the 'scalelab' section")
        check_fields(cls, {**section, "__labels__": {
            k: f"{v} (scalelab.{k})" for k, v in (labels or {}).items()}}, source,
            prefix="scalelab.")
        # targets parsed once, here: [{"params": 1e8}, {"compute": 1e18}, ...]
        settings = cls(**{**section, "targets": _parse_targets(section.get("targets", []),
                                                               source)})
        if settings.address is not None and settings.executor != "ray":
            raise SpecError(f"{source}: scalelab.address is only used by the ray executor; "
                            f"set executor: ray or remove address.")
        return settings


GOALS = ("minimize", "maximize")


@dataclass(frozen=True)
class Metric:
    """A spec's ``metric`` (W&B's sweep key): the curve column a sweep optimises and its goal."""

    name: str = "val_loss"
    goal: str = "minimize"

    @classmethod
    def from_spec(cls, value, source: str = "the spec") -> "Metric":
        """The metric of a spec's ``metric`` mapping (None: ``val_loss``, minimised)."""
        if value is None:
            return cls()
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            raise SpecError(f"{source}: metric must be a mapping with a 'name' (e.g. "
                            f"{{name: val_loss, goal: minimize}}).")
        goal = value.get("goal", "minimize")
        if goal not in GOALS:
            raise SpecError(f"{source}: metric.goal must be minimize or maximize, got {goal!r}.")
        return cls(value["name"], goal)

    @property
    def sign(self) -> float:
        """+1 when lower is better, −1 when higher is: sign × value is minimised."""
        return -1.0 if self.goal == "maximize" else 1.0


def check_keys(mapping: dict, allowed: set[str], source: str, what: str) -> None:
    """Refuse the first key of ``mapping`` not in ``allowed``, naming the valid ones."""
    for key in mapping:
        if key not in allowed:
            raise SpecError(f"{source}: unknown {what} {key!r}; expected one of "
                            f"{', '.join(sorted(allowed))}.")
