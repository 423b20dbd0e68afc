"""Which runs may train together as one stacked model (torch-free: the sweep's driver
groups runs with it, :mod:`scalelab.train.stacked` trains the groups).

Runs *share a shape* when they differ only in :data:`FREE` — seed, learning rate, weight
decay, loss variant (terms and weights, between losses that score the same output: single
predictions, or ensembles of the same size), schedule, warmup and checkpoint interval —
and so in nothing the network's shape, the data, the batch or the evaluation steps depend
on: :func:`stack_key` is equal for them. :func:`stack_reason` names what keeps a run
out of any stack; such a run trains alone.
"""

from __future__ import annotations

import json

#: the settings members of one stack may differ in (each member has its own value)
FREE = ("seed", "lr", "weight_decay", "loss_variant", "schedule", "warmup_steps",
        "checkpoint_every")


def stack_reason(cfg) -> str | None:
    """Why ``cfg`` cannot be a member of a stack (a sentence), or None when it can."""
    from scalelab.models.names import REGISTRY

    if REGISTRY[cfg.family].generative:
        return (f"the {cfg.family} family trains by its own objective and draws samples "
                f"with its own sampler")
    if cfg.role != "run":
        return f"a {cfg.role} of data budgets shares checkpoints along its trunk"
    if cfg.compile:
        return "compile: true (the stacked step is not compiled; cuda_graphs is its switch)"
    if cfg.adversarial_weight > 0:
        return "adversarial training (its discriminator trains beside it)"
    if cfg.quantized:
        return "quantization-aware training (weight_bits/act_bits)"
    if cfg.loss.needs_latent:
        return "its loss reads the network's latent (kl)"
    if cfg.parametrization != "standard":
        return f"parametrization {cfg.parametrization} (per-layer learning rates)"
    return None


def stack_key(cfg) -> str:
    """Configs with equal keys share a shape: every setting but :data:`FREE`, and whether
    the loss scores an ensemble."""
    cached = cfg.__dict__.get("_stack_key")
    if cached is None:  # a config is frozen: its key is computed once
        values = {k: v for k, v in cfg.to_dict().items() if k not in FREE}
        values["needs_ensemble"] = bool(cfg.loss.needs_ensemble)
        cached = json.dumps(values, sort_keys=True, default=str)
        object.__setattr__(cfg, "_stack_key", cached)
    return cached
