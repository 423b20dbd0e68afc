"""Names a RunConfig may use, without importing torch.

Each part (models, losses, data) declares its names in its own ``NAMES`` tuple in a
torch-free module, so a spec can be validated before anything heavy is imported.
"""

from __future__ import annotations

from scalelab._errors import SpecError

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "wsd")
DEVICES = ("auto", "cpu", "cuda", "mps")
AMP = ("none", "bf16")


def model_families() -> tuple[str, ...]:
    from scalelab.models.names import NAMES

    return NAMES


def loss_variants() -> tuple[str, ...]:
    from scalelab.losses.names import NAMES

    return NAMES


def fields() -> tuple[str, ...]:
    from scalelab.data.names import FIELDS

    return FIELDS


def degradations() -> tuple[str, ...]:
    from scalelab.data.names import DEGRADATIONS

    return DEGRADATIONS


def check_choice(key: str, value: str, valid, source: str = "the spec") -> None:
    if key == "loss_variant":  # a name or a weighted sum, e.g. "mse+0.1*spectral"
        from scalelab.losses.names import check_variant

        check_variant(value, source)
        return
    if value not in valid:
        raise SpecError(
            f"{source}: unknown {key} {value!r}; valid choices are {', '.join(valid)}."
        )
