"""Data budgets from one trunk: a sweep point with cooldowns becomes a trunk and branches.

Warmup-stable-decay training (Hu et al. 2024, "MiniCPM" §4) lets one long run at a
constant learning rate serve many training lengths: from a checkpoint of that *trunk*
at step s, a short linear *cooldown* to zero gives a model as good as a run trained
for that length from the start (Hägele et al. 2024, "Scaling Laws and Compute-Optimal
Training Beyond Fixed Training Durations", §3–4, where a cooldown of 10–20% of the
run matches cosine; Subramanian et al. 2026, "On Neural Scaling Laws for Weather
Emulation through Continual Training", who scale weather emulators this way).

A config with ``schedule: wsd`` and ``cooldowns`` (steps, or fractions of ``steps``)
and ``cooldown_fraction`` f expands into

- one **trunk** per (everything but the cooldown settings and steps): cooldowns
  resolved to steps (the union over the sweep points that share it), ``steps`` the
  last of them, the rate constant after warmup; it writes a checkpoint at each point;
- one **branch** per point s and fraction f: ``parent`` the trunk's run id,
  ``branch_step`` s, ``steps`` s + max(1, round(f·s)), decaying linearly to zero.

A branch of budget s(1 + f) costs its decay alone, f·s steps, where an independent run
costs s(1 + f); with budgets s_1 < … < s_K one trunk and K branches cost
s_K + f·Σ s_k steps against (1 + f)·Σ s_k (:func:`budget_compute`).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from scalelab.config import RunConfig

#: the fields that make two sweep points share a trunk when all else is equal
_TRUNK_FREE = ("cooldowns", "cooldown_fraction", "steps")


def expand_budgets(configs: list[RunConfig]) -> list[RunConfig]:
    """Replace each config with cooldowns by its trunk and branches, in order.

    Configs that differ only in ``cooldowns``, ``cooldown_fraction`` or ``steps``
    share one trunk whose cooldown points are the union of theirs. Other configs pass
    through. Every trunk comes before its branches.
    """
    default = RunConfig()
    groups: dict = {}  # trunk key -> (first config, points, [(config, points)])
    order: list = []  # ("run", cfg) | ("trunk", key)
    for cfg in configs:
        if cfg.role != "trunk":
            order.append(("run", cfg))
            continue
        key = replace(cfg, **{name: getattr(default, name) for name in _TRUNK_FREE}).run_id
        if key not in groups:
            groups[key] = (cfg, set(), [])
            order.append(("trunk", key))
        points = cfg.cooldown_steps()
        groups[key][1].update(points)
        groups[key][2].append((cfg, points))
    out: list[RunConfig] = []
    for kind, item in order:
        if kind == "run":
            out.append(item)
            continue
        first, points, members = groups[item]
        trunk = replace(first, cooldowns=sorted(points), steps=max(points),
                        cooldown_fraction=default.cooldown_fraction)
        out.append(trunk)
        for cfg, cfg_points in members:
            for point in cfg_points:
                out.append(branch_of(trunk, point, cfg.cooldown_fraction))
    return out


def branch_of(trunk: RunConfig, step: int, cooldown_fraction: float) -> RunConfig:
    """The branch of ``trunk`` that starts at ``step`` and decays over max(1, round(f·step))."""
    decay = max(1, round(cooldown_fraction * step))
    return replace(trunk, cooldowns=[], cooldown_fraction=cooldown_fraction,
                   parent=trunk.run_id, branch_step=int(step), steps=int(step) + decay)


def budget_compute(plan: pd.DataFrame) -> dict | None:
    """Compute of the branched runs against independent runs of the same budgets.

    ``plan``: one row per run with ``role``, ``flops`` (the run's training compute from
    step 0, as its final curve row counts it) and ``flops_spent`` (what running it
    costs: a branch, its decay only). Returns ``None`` without branches, else
    ``{"trunks", "branches", "spent", "independent", "saved", "saved_fraction"}``:
    ``spent`` is the trunks' compute plus the branches' decays, ``independent`` the sum
    of the branches' budgets each trained from scratch.
    """
    if plan.empty or "role" not in plan.columns or not (plan["role"] == "branch").any():
        return None
    trunks = plan[plan["role"] == "trunk"]
    branches = plan[plan["role"] == "branch"]
    spent = float(trunks["flops_spent"].sum() + branches["flops_spent"].sum())
    independent = float(branches["flops"].sum())
    return {"trunks": len(trunks), "branches": len(branches), "spent": spent,
            "independent": independent, "saved": independent - spent,
            "saved_fraction": 1.0 - spent / independent if independent > 0 else 0.0}
