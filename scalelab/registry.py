"""Names a RunConfig may use, without importing torch.

Each part (models, losses, data) declares its names in a torch-free ``names`` module
(``scalelab.models.names.NAMES``, ``scalelab.losses.names`` with the loss-expression
parser, ``scalelab.data.names.FIELDS``/``DEGRADATIONS``); importing those packages
runs no torch (their torch code loads on first use, see :mod:`scalelab._lazy`). The
choices of the training loop itself are listed here. A spec is validated against
these before anything heavy is imported.
"""

from __future__ import annotations

from scalelab._declare import number
from scalelab.data.names import DEGRADATIONS, FIELDS
from scalelab.losses.names import NAMES as LOSSES
from scalelab.models.names import NAMES as MODEL_FAMILIES

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "cosine", "wsd")
DEVICES = ("auto", "cpu", "cuda", "mps")
AMP = ("none", "bf16")
# keys of a run's ``options`` the training loop reads, with their valid ranges: the wsd
# schedule's decay fraction, the exceedance threshold of ensemble metrics
TRAIN_OPTIONS_DECLARED = {
    "decay_fraction": number(0.2, 0, 1, low_open=True,
                             doc="wsd: the decay's share of the steps after warmup"),
    "threshold": number(None, none=True,
                        doc="exceedance threshold of the ensemble metrics (default: the "
                            "validation truth's 90th percentile)"),
}
TRAIN_OPTIONS = tuple(TRAIN_OPTIONS_DECLARED)


def model_families() -> tuple[str, ...]:
    return MODEL_FAMILIES


def loss_variants() -> tuple[str, ...]:
    return LOSSES


def fields() -> tuple[str, ...]:
    return FIELDS


def degradations() -> tuple[str, ...]:
    return DEGRADATIONS
