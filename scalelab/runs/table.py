"""Checks and selections over the runs table (one row per run × evaluation step); torch-free.

The runs table is the contract between training and analysis. These helpers check
the columns an analysis needs, pick each run's result (its final row), derive the
data axis (``samples`` U, distinct training samples; ``samples_seen`` D, steps ×
batch; ``epochs`` D/U) and tell trunks and branches of data budgets apart.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize

import numpy as np
import pandas as pd

from scalelab._errors import TableError


def require_columns(table: pd.DataFrame, *columns: str, what: str = "this analysis") -> None:
    """Raise one TableError sentence naming the first missing column."""
    if not isinstance(table, pd.DataFrame):
        raise TableError(f"{what} needs a pandas DataFrame of runs, got {type(table).__name__}; "
                         f"load one with scalelab.load_runs(path) or pandas.read_csv.")
    for column in columns:
        if column not in table.columns:
            have = ", ".join(map(str, table.columns[:12])) or "none"
            raise TableError(f"{what} needs a column {column!r}, which the table lacks (it has: "
                             f"{have}); name the right column with a keyword argument.")
        copies = int((table.columns == column).sum())
        if copies > 1:
            raise TableError(f"{what}: the table has {copies} columns named {column!r}, so "
                             f"which one is meant is unclear; keep one, e.g. "
                             f"table.loc[:, ~table.columns.duplicated()].")


def finished_mask(table: pd.DataFrame) -> pd.Series:
    """Which rows belong to runs whose result counts in a fit (see :func:`finished_runs`)."""
    if "status" not in table.columns:
        return pd.Series(True, index=table.index)
    return table["status"].fillna("finished") == "finished"


def finished_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the runs whose result counts in a fit: the one rule of every fit (the
    report's laws and pages, the calibration laws, the families comparison).

    A run counts when its ``status`` is ``finished``; a table without a ``status`` column
    (someone's published results) or a row without a status counts whole. A ``diverged``
    run does not: a non-finite loss ended it, so its last value is not the result of its
    budget (its curve up to the divergence stays in the table, shown and counted in the
    status summary, as ``load_runs`` keeps it); nor do failed, pending or running runs.
    """
    return table[finished_mask(table)]


def require_numeric(table: pd.DataFrame, columns, source: str = "the table") -> None:
    """Raise one TableError sentence naming the first value of ``columns`` (those the table
    has) that is neither a number nor missing — words where sizes belong."""
    for column in columns:
        if column not in table.columns or pd.api.types.is_numeric_dtype(table[column]):
            continue
        values = table[column]
        numbers = pd.to_numeric(values, errors="coerce")
        bad = values.notna() & numbers.isna() & ~values.astype(str).str.strip().isin(
            ("", "nan", "NaN", "None"))
        if bad.any():
            position = int(np.argmax(bad.to_numpy()))
            where = values.index[position]
            row = (f"run {table.at[where, 'run_id']}" if "run_id" in table.columns
                   else f"data row {position + 1}")
            raise TableError(f"{source}: column {column!r} holds {values[where]!r} ({row}), "
                             f"which is not a number; correct or remove that row.")


_QUERY_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.BinOp, ast.Add, ast.Sub,
                ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.BitAnd, ast.BitOr,
                ast.BitXor, ast.UnaryOp, ast.Not, ast.Invert, ast.USub, ast.UAdd, ast.Compare,
                ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
                ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple)


def check_query(where: str, columns, option: str = "--where") -> None:
    """Refuse a pandas query that is more than comparisons of the table's columns with
    numbers or text: pandas evaluates ``@name`` (a local variable, with its methods) and
    attribute and method calls, so ``@runs.to_csv('f.csv') == 0`` would write a file;
    nothing is evaluated here (the text is parsed only)."""
    text = str(where)
    names = {}

    def placeholder(match):  # `a column` with spaces, as pandas quotes it
        names[f"__column_{len(names)}__"] = match.group(1)
        return f" __column_{len(names) - 1}__ "

    plain = re.sub(r"`([^`]*)`", placeholder, text)
    rule = (f"{option} {text!r} may only compare the table's columns with numbers or text "
            f"(no @variables, attributes or calls); write e.g. \"params < 1e5 and "
            f"samples == 4096\".")
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(plain).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        tokens = []
    if any(t.type == tokenize.OP and t.string == "@" for t in tokens) or (
            not tokens and "@" in plain):
        raise TableError(rule)
    try:
        tree = ast.parse(plain.strip(), mode="eval")
    except SyntaxError:
        raise TableError(f"{option} {text!r} is not a valid selection (a syntax error); write "
                         f"a pandas query over the table's columns, e.g. \"params < 1e5 and "
                         f"samples == 4096\".") from None
    for node in ast.walk(tree):
        if not isinstance(node, _QUERY_NODES):
            raise TableError(rule)
        if isinstance(node, ast.Name):
            name = names.get(node.id, node.id)
            if name not in set(map(str, columns)):
                shown = list(map(str, columns))
                raise TableError(f"{option} {text!r} names {name!r}, which is not a column of "
                                 f"the table; its columns are {', '.join(shown[:30])}"
                                 f"{f' and {len(shown) - 30} more' if len(shown) > 30 else ''}.")


def final_rows(table: pd.DataFrame, run: str = "run_id", step: str = "step") -> pd.DataFrame:
    """Each run's result: its row with the largest ``step`` (tables without runs pass through)."""
    if run not in table.columns or step not in table.columns or table.empty:
        return table.copy()
    last = table.dropna(subset=[step]).sort_values(step).groupby(run, sort=False).tail(1)
    return last.sort_index().reset_index(drop=True)


#: the precision (bits) of the weights in the forward pass of an unquantized run, by ``amp``
FULL_BITS = {"none": 32, "bf16": 16}


def param_bits(table: pd.DataFrame) -> pd.Series:
    """P of each row: ``weight_bits`` where a run fake-quantizes its weights, else 16 under
    bf16 autocast (``amp``), else 32 (Kumar et al. 2024's training precision of the
    weights). Rows of a table without those columns are fp32."""
    amp = table["amp"] if "amp" in table.columns else pd.Series("none", index=table.index)
    full = amp.map(lambda a: FULL_BITS.get(a, 32)).astype(float)
    if "weight_bits" not in table.columns:
        return full
    bits = pd.to_numeric(table["weight_bits"], errors="coerce").fillna(0.0)
    return bits.where(bits > 0, full)


def with_data_columns(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``epochs`` = samples_seen / samples where the table has both and lacks it
    (tables written before curve rows carried it), and ``param_bits`` (P, the bits of the
    weights in the forward pass: ``weight_bits``, else 16 under bf16, else 32;
    :func:`scalelab.laws.precision.param_bits`) where it has ``amp`` or ``weight_bits``;
    the table is changed in place."""
    if {"samples", "samples_seen"} <= set(table.columns):
        derived = pd.to_numeric(table["samples_seen"], errors="coerce") / pd.to_numeric(
            table["samples"], errors="coerce")
        table["epochs"] = table["epochs"].fillna(derived) if "epochs" in table else derived
    if "weight_bits" in table.columns or "amp" in table.columns:  # P of the precision laws
        table["param_bits"] = param_bits(table)
    return table


def run_roles(table: pd.DataFrame) -> pd.Series:
    """Each row's role: ``"branch"`` (a ``parent`` is set), ``"trunk"`` (``cooldowns``
    set, no parent) or ``"run"``; all ``"run"`` for tables without those columns."""
    roles = pd.Series("run", index=table.index, dtype=object)
    if "cooldowns" in table.columns:
        cooldowns = table["cooldowns"].map(_non_empty)
        roles[cooldowns] = "trunk"
    if "parent" in table.columns:
        roles[table["parent"].map(_non_empty)] = "branch"
    return roles


def compute_spent(table: pd.DataFrame, flops: str = "flops") -> float:
    """Training compute actually spent by the runs of a table: each run's final ``flops``,
    less, for a branch, the FLOPs of the trunk part it started from (its trunk paid
    them). Needs ``flops``; branches are counted whole without ``branch_step`` and
    ``samples_seen``."""
    require_columns(table, flops, what="compute_spent")
    return float(_flops_spent(final_rows(table), flops).sum())


def budget_savings(table: pd.DataFrame, flops: str = "flops") -> dict | None:
    """What branching from trunks saved: ``None`` without branches, else ``{"trunks",
    "branches", "spent", "independent", "saved", "saved_fraction"}`` — ``spent`` the
    trunks' and branches' compute (a branch's decay only), ``independent`` the
    branches' budgets each trained from scratch (Hägele et al. 2024 §4)."""
    if flops not in table.columns:
        return None
    final = final_rows(table)
    roles = run_roles(final)
    if not (roles == "branch").any():
        return None
    spent = _flops_spent(final, flops)
    independent = float(pd.to_numeric(final.loc[roles == "branch", flops]).sum())
    used = float(spent[(roles != "run").to_numpy()].sum())
    return {"trunks": int((roles == "trunk").sum()), "branches": int((roles == "branch").sum()),
            "spent": used, "independent": independent, "saved": independent - used,
            "saved_fraction": 1.0 - used / independent if independent > 0 else 0.0}


def _flops_spent(final: pd.DataFrame, flops: str) -> np.ndarray:
    total = pd.to_numeric(final[flops], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    if not {"branch_step", "batch_size", "samples_seen"} <= set(final.columns):
        return total
    branch = (run_roles(final) == "branch").to_numpy()
    seen = pd.to_numeric(final["samples_seen"], errors="coerce").to_numpy(dtype=float)
    start = (pd.to_numeric(final["branch_step"], errors="coerce").to_numpy(dtype=float)
             * pd.to_numeric(final["batch_size"], errors="coerce").to_numpy(dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        trunk_part = np.where(branch & (seen > 0), total * start / seen, 0.0)
    return total - np.nan_to_num(trunk_part)


def _non_empty(value) -> bool:
    if isinstance(value, str):
        return value not in ("", "[]")
    if isinstance(value, (list, tuple, np.ndarray)):
        return len(value) > 0
    return False


#: settings a scaling study tunes at each size: the laws read each configuration's best
TUNED = ("lr", "weight_decay", "warmup_steps")
#: settings that say nothing of the configuration a run measures (or name its trunk)
_NOT_CONFIGURATION = TUNED + ("seed", "eval_every", "checkpoint_every", "parent",
                              "branch_step", "cooldowns", "cooldown_fraction", "val_samples")


def best_tuned(final: pd.DataFrame, y: str) -> tuple[pd.DataFrame, list]:
    """Where runs of one configuration (every run setting but the tuned ones, :data:`TUNED`,
    and the seed) differ in a tuned setting — a learning-rate sweep — the runs at that
    configuration's best tuned values (lowest mean ``y`` over seeds), and one sentence
    saying so; else ``final`` unchanged. The scaling laws then read each size at its tuned
    optimum, as a scaling study means (Kaplan et al. 2020 §2.2; Wortsman et al. 2023), not
    every learning rate as a repeat of the same N; the learning-rate page shows them all."""
    import dataclasses

    from scalelab.config import RunConfig

    tuned = [c for c in TUNED if c in final.columns and final[c].nunique(dropna=False) > 1]
    if not tuned or final.empty:
        return final, []
    keys = [f.name for f in dataclasses.fields(RunConfig)
            if f.metadata.get("hashed") and f.name not in _NOT_CONFIGURATION
            and f.name in final.columns]
    key_frame = final[keys].astype(str) if keys else pd.DataFrame(index=final.index)
    config = key_frame.apply("|".join, axis=1) if keys else pd.Series("", index=final.index)
    setting = final[tuned].astype(str).apply("|".join, axis=1)
    if not (setting.groupby(config).nunique() > 1).any():
        return final, []
    mean = final[y].groupby([config, setting]).mean()
    best = mean.groupby(level=0).idxmin()  # (config, setting) of each configuration's best
    keep = pd.MultiIndex.from_arrays([config, setting]).isin(list(best))
    dropped = int((~keep).sum())
    words = " and ".join(tuned)
    return final[keep], [f"kept the best {words} of each configuration (lowest mean {y}): "
                         f"{dropped} of {len(final)} runs at other values are left out of "
                         f"the laws" + ("; the learning-rate page draws them all."
                                        if "lr" in tuned else ".")]

#: RunConfig fields that change a run's training objective beside its ``loss_variant``, each
#: with the term it adds to the objective's name: the report draws, and ``predict`` fits,
#: each objective apart, as they do each loss variant (an adversarial run's ``val_loss`` is
#: its content loss, but its network is another).
OBJECTIVE_TERMS = {"adversarial_weight": "adversarial"}


def _feature_matching(options) -> float:
    """``options.feature_matching`` of a row (a mapping, or its JSON text in a CSV)."""
    if isinstance(options, str):
        import json

        try:
            options = json.loads(options)
        except ValueError:
            return 0.0
    value = options.get("feature_matching", 0.0) if isinstance(options, dict) else 0.0
    return float(value) if isinstance(value, (int, float)) else 0.0


def objective_variants(table: pd.DataFrame) -> pd.Series:
    """Each row's training objective in the words of a loss expression: its ``loss_variant``,
    and ``+ w*adversarial`` where its ``adversarial_weight`` w is above 0 (with
    ``(feature_matching=f)`` where its options set it): ``mse + 0.01*adversarial``."""
    labels = (table["loss_variant"].astype(object).copy() if "loss_variant" in table.columns
              else pd.Series(None, index=table.index, dtype=object))
    for column, term in OBJECTIVE_TERMS.items():
        if column not in table.columns:
            continue
        weight = pd.to_numeric(table[column], errors="coerce")
        chosen = weight > 0
        if not chosen.any():
            continue
        matching = (table.loc[chosen, "options"].map(_feature_matching)
                    if "options" in table.columns else pd.Series(0.0, index=labels[chosen].index))
        labels[chosen] = [f"{base} + {w:g}*{term}" + (f"(feature_matching={f:g})" if f else "")
                          for base, w, f in zip(labels[chosen], weight[chosen], matching)]
    return labels


def with_objective_variants(table: pd.DataFrame) -> pd.DataFrame:
    """The table with ``loss_variant`` naming each row's whole objective
    (:func:`objective_variants`); the table itself where no run adds a term to it."""
    if "loss_variant" not in table.columns:
        return table
    labels = objective_variants(table)
    if labels.equals(table["loss_variant"].astype(object)):
        return table
    table = table.copy()
    table["loss_variant"] = labels
    return table
