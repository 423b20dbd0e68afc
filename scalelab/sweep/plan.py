"""``scalelab sweep plan``: what a sweep will run, without running it.

For every expanded run: its id, the swept values, the model's exact parameter count
N and the training compute C = 3 × forward FLOPs per sample × samples seen
(forward + backward ≈ 3 × forward, Kaplan et al. 2020 §2.1), samples seen being
steps × batch_size — counted by :func:`scalelab.train.loop.run_size`, the function the
training loop counts with, so the plan gives what the runs will record (a stochastic
ensemble's noise input in N, its members' forwards under an ensemble loss in C).
Models are built once per distinct architecture on the CPU (no training).

Data budgets from one trunk (:mod:`scalelab.sweep.branches`): each row says its
``role`` (``run``, ``trunk`` or ``branch``), a branch its ``parent`` and
``branch_step``; ``flops`` is the run's compute from step 0 (a branch's budget, trunk
part included, as its final curve row counts it) and ``flops_spent`` what running it
costs (a branch: its decay only). :func:`scalelab.sweep.branches.budget_compute` sums
them against independent runs of the same budgets.
"""

from __future__ import annotations

import json

import pandas as pd


def plan_sweep(spec) -> pd.DataFrame:
    """One row per run of ``spec``: run_id, role, config fields, params, flops_per_sample,
    flops (from step 0) and flops_spent (a branch: from its branch step).

    ``flops_per_sample`` is the training forward of one sample (one per member under an
    ensemble loss; for a generative family, one evaluation of its training objective,
    :func:`scalelab.models.training_flops`), so ``flops`` = 3 × it × samples seen, as the
    training loop counts (both through :func:`scalelab.train.loop.run_size`).
    """
    from scalelab.data.options import channels_of
    from scalelab.models.names import family_options
    from scalelab.train.loop import run_size

    sizes: dict = {}
    rows = []
    for cfg in spec.runs:
        # what decides N and the FLOPs: the network (with its stochastic variant's noise
        # input), its input channels, the ensemble a loss runs it for, and an adversarial
        # run's discriminator (sized by the options; so is a VAE latent)
        arch = (cfg.family, cfg.width, cfg.depth, cfg.scale, cfg.field_size,
                channels_of(cfg.field, cfg.options), cfg.ensemble_members, cfg.loss_variant,
                cfg.adversarial_weight > 0,
                json.dumps(cfg.options if cfg.adversarial_weight > 0 or cfg.loss.needs_latent
                           else family_options(cfg.family, cfg.options), sort_keys=True,
                           default=str))
        if arch not in sizes:
            size = run_size(cfg)  # as the training loop counts
            sizes[arch] = (size["params"], size["flops_per_sample"])
        params, flops_per_sample = sizes[arch]
        own_steps = cfg.steps - (cfg.branch_step if cfg.role == "branch" else 0)
        rows.append({"run_id": cfg.run_id, "role": cfg.role, **cfg.to_dict(), "params": params,
                     "flops_per_sample": flops_per_sample,
                     "flops": 3.0 * flops_per_sample * cfg.steps * cfg.batch_size,
                     "flops_spent": 3.0 * flops_per_sample * own_steps * cfg.batch_size})
    return pd.DataFrame.from_records(rows)


def varying_columns(table: pd.DataFrame, spec) -> list[str]:
    """The config fields that take more than one value in the sweep."""
    names = [c for c in table.columns if c not in ("run_id", "params", "flops_per_sample",
                                                   "flops", "flops_spent", "options",
                                                   "cooldowns", "parent")]
    return [c for c in names if table[c].astype(str).nunique() > 1]
