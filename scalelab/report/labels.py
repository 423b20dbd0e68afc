"""The words and symbols the report writes for the runs table's columns (no matplotlib).

The scaling axes take their words and symbols from the one table of
:mod:`scalelab.runs.columns` (``AXES``: params N, samples U, samples_seen D, epochs, flops
C), so the labels, headers and legends of every page use the same symbol for the same
axis; metrics get their words and units here.
"""

from __future__ import annotations

from scalelab.runs.columns import AXES, axis_label, axis_symbol

LABELS = {
    **{column: axis_label(column) for column in AXES},
    "samples_seen": f"{axis_label('samples_seen')} (steps × batch)",
    "epochs": f"epochs {axis_symbol('samples_seen')}/{axis_symbol('samples')}",
    "flops": f"training compute {axis_symbol('flops')} (FLOP)",
    "val_loss": "validation loss",
    "train_loss": "training loss",
    "val_mse": "validation MSE (field units²)",
    "val_rmse": "validation RMSE (field units)",
    "val_mae": "validation MAE (field units)",
    "val_psnr": "validation PSNR (dB)",
    "val_ssim": "validation SSIM",
    "val_crps": "validation CRPS (field units)",
    "val_spread_skill": "spread-skill ratio",
    "val_rank_delta": "rank-histogram flatness δ (grows with the pixels counted)",
    "val_rank_departure": "rank-histogram departure from flat (RMS)",
    "val_exceed_ece": "exceedance ECE",
    "val_exceed_brier": "exceedance Brier score",
}


def label(column: str) -> str:
    """The axis label of a runs-table column, with units where they are known; a shifted
    region's metric (``val_rmse@tropics``) is its metric's label and ``@ tropics``."""
    from scalelab.runs.columns import split_region

    base, region = split_region(column)
    if region is not None:
        return f"{label(base)} @ {region}"
    return LABELS.get(column, column.replace("_", " "))


def symbol_value(column: str, value) -> str:
    """``U = 4,096``: a scaling axis's symbol and a value (the column's name for others)."""
    return f"{axis_symbol(column)} = {format_value(value)}"


def format_value(value) -> str:
    """Numbers as people write them: 4,096; 1.2e+08; names unchanged."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)) or (isinstance(value, (float, np.floating))
                                                 and float(value).is_integer()
                                                 and abs(value) < 1e7):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{value:.3g}"
    return str(value)


def format_param(value: float, fmt: str = ".4g", scale: float | None = None) -> str:
    """A fitted parameter: 0 where it is zero to within 1e-12 of ``scale`` (or of 1), as a
    floor E bounded at 0 ends (not "3.21e-217")."""
    reference = abs(scale) if scale else 1.0
    if abs(value) < 1e-12 * reference:
        return "0"
    return f"{value:{fmt}}"
