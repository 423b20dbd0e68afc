"""Names a RunConfig may use, without importing torch.

Each part (models, losses, data) declares its kinds in a torch-free ``names`` module,
one record each with everything about it: families (``scalelab.models.names.FAMILIES``),
loss terms (``scalelab.losses.names.TERMS``, with the loss-expression parser), fields
and degradations (``scalelab.data.names.SOURCES``/``DEGRADATION_RECORDS``). Importing
those packages runs no torch (their torch code loads on first use, see
:mod:`scalelab._lazy`; a record names its implementation by import path). The names a
spec may use are read from the records' registries when the spec is checked; the
choices of the training loop itself, and its options with their ranges, are listed
here. Adding a kind is described in ``CONTRIBUTING.md``.
"""

from __future__ import annotations

from scalelab._declare import count, number, positive
from scalelab.data import names as data_names
from scalelab.data.names import DEGRADATIONS, FIELDS  # noqa: F401 - the built-in names
from scalelab.losses import names as losses_names
from scalelab.losses.names import NAMES as LOSSES  # noqa: F401
from scalelab.models import names as models_names
from scalelab.models.names import NAMES as MODEL_FAMILIES  # noqa: F401

OPTIMIZERS = ("adamw", "adam", "sgd")
DEVICES = ("auto", "cpu", "cuda", "mps")
AMP = ("none", "bf16")
# how a network's learning rates and output scale follow its width (scalelab.models.mup):
# standard (one learning rate for every weight), or mup (Yang et al. 2022, Table 3 for Adam)
PARAMETRIZATIONS = ("standard", "mup")
# the learning-rate schedules (scalelab.train.loop.lr_at) and the keys of a run's
# ``options`` each reads, with their valid ranges
SCHEDULE_OPTIONS = {
    "constant": {},
    "cosine": {},
    "wsd": {"decay_fraction": number(0.2, 0, 1, low_open=True,
                                     doc="the decay's share of the steps after warmup")},
}
SCHEDULES = tuple(SCHEDULE_OPTIONS)
# keys of a run's ``options`` the training loop reads whatever the schedule, with their
# valid ranges: the exceedance threshold of ensemble metrics
TRAIN_OPTIONS_DECLARED = {
    "threshold": number(None, none=True,
                        doc="exceedance threshold of the ensemble metrics (default: the "
                            "validation truth's 90th percentile)"),
    **{key: opt for options in SCHEDULE_OPTIONS.values() for key, opt in options.items()},
}
# adversarial training (a run with adversarial_weight > 0; scalelab.train.adversarial) and
# the VAE perturbation (a loss with a kl term; scalelab.models.stochastic.LatentPerturbed)
ADVERSARIAL_OPTIONS = {
    "feature_matching": number(0.0, 0, doc="weight of the discriminator's feature matching "
                                           "in the generator's loss"),
    "discriminator_width": positive(1.0, doc="the discriminator's width / the generator's"),
    "discriminator_lr": positive(None, none=True, doc="the discriminator's peak learning rate "
                                                      "(default: lr)"),
}
LATENT_OPTIONS = {"latent_channels": count(4, high=256, doc="channels of the VAE latent")}
TRAIN_OPTIONS_DECLARED.update({**ADVERSARIAL_OPTIONS, **LATENT_OPTIONS})
TRAIN_OPTIONS = ("threshold", *ADVERSARIAL_OPTIONS, *LATENT_OPTIONS)


# the names of each kind, read from its records when a spec is checked
def model_families() -> tuple[str, ...]:
    return tuple(models_names.REGISTRY)


def loss_variants() -> tuple[str, ...]:
    return tuple(losses_names.REGISTRY)


def fields() -> tuple[str, ...]:
    return tuple(data_names.REGISTRY)


def degradations() -> tuple[str, ...]:
    return DEGRADATIONS
