"""Backtests of scaling-law predictions (Choshen et al. 2024, "A Hitchhiker's Guide to
Scaling Law Estimation", §3–5).

The protocol: fit a law on the smaller runs, predict the final value of the largest
run(s), and report the absolute relative error ARE = |prediction − truth| / truth and
whether the prediction interval covered the truth. It is repeated with less of the
scale range (only runs up to a fraction of the target's size) and, as the paper
recommends, with the intermediate checkpoints of the smaller runs added to the fit
(dropping the early ones — the paper drops those before 10% of training).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd

from scalelab._errors import InputTypeError, ScalelabError, ScalelabWarning, TableError
from scalelab.runs.table import require_columns


def backtest(law, data: pd.DataFrame, y: str = "val_loss", size: str = "params",
             run: str | None = None, step: str | None = None,
             size_fractions=(1.0,), drop_early=None, level: float = 0.9,
             kind: str = "observation", **columns) -> pd.DataFrame:
    """Fit ``law`` on the smaller runs and predict the largest; one row per setting.

    Parameters
    ----------
    law : a law (fitted or not); a fresh clone with its hyper-parameters is fitted for
        every setting.
    data : runs table (one row per run, or per run × checkpoint with ``run``/``step``).
    y : column of the value predicted (e.g. ``"val_loss"``).
    size : column whose largest value marks the held-out target runs (e.g. ``"params"``
        or ``"flops"``).
    run, step : columns naming runs and their checkpoints; with them each run's final row
        is its result, and ``drop_early`` may add checkpoints.
    size_fractions : fit only on runs with ``size <= fraction × target size`` (strictly
        smaller than the target always).
    drop_early : None to fit on final rows only; a fraction f (e.g. 0.1) to fit on every
        checkpoint of the training runs from f of their last step on (Choshen et al.).
    level, kind : the prediction interval (``Law.predict_interval``).
    **columns : the law's column keywords for ``fit`` (``x="params"``; ``params=...,
        samples=...``).

    Returns a DataFrame with ``size_fraction``, ``checkpoints``, ``n_runs``,
    ``n_points``, ``target``, ``truth``, ``prediction``, ``lower``, ``upper``, ``are``,
    ``covered``, one row per setting and target run.
    """
    from scalelab.laws.base import Law

    if not isinstance(law, Law):
        raise InputTypeError(f"backtest: law must be a scaling law such as PowerLaw(), got "
                            f"{type(law).__name__} {str(law)[:40]!r}.")
    require_columns(data, y, size, *[c for c in columns.values() if isinstance(c, str)],
                    *([run, step] if run and step else []), what="backtest")
    if data.empty:
        raise TableError("backtest: the table has no rows; pass the runs table with their "
                         "results.")
    if drop_early is not None and not (run and step):
        raise ScalelabError("backtest: drop_early needs run= and step= columns to find each "
                            "run's checkpoints; pass them or set drop_early=None.")
    if drop_early is not None and not 0 <= drop_early < 1:
        raise ScalelabError(f"backtest: drop_early must be in [0, 1), got {drop_early}.")
    Law._check_level(level)  # before any fit
    if isinstance(size_fractions, numbers.Real):
        size_fractions = (size_fractions,)  # one fraction
    try:
        if isinstance(size_fractions, str):
            raise TypeError
        size_fractions = tuple(size_fractions)
    except TypeError:
        raise InputTypeError(f"backtest: size_fractions must be fractions in (0, 1], e.g. "
                             f"(0.5, 1.0), got {size_fractions!r}.") from None
    if not size_fractions:
        raise ScalelabError("backtest: size_fractions is empty, so there is nothing to "
                            "backtest; give at least one fraction in (0, 1], e.g. (1.0,).")
    for fraction in size_fractions:
        if (not isinstance(fraction, numbers.Real) or isinstance(fraction, bool)
                or not 0 < fraction <= 1):
            raise ScalelabError(f"backtest: size fractions must be in (0, 1], got "
                                f"{fraction!r}.")
    table = data.dropna(subset=[y, size]).copy()
    if run and step:
        table["_last"] = table.groupby(run)[step].transform("max")
        finals = table[table[step] == table["_last"]]
    else:
        finals = table
    top = finals[size].max()
    targets = finals[finals[size] == top]
    rows = []
    for fraction in size_fractions:
        limit = fraction * top
        if drop_early is None:
            train = finals[(finals[size] < top) & (finals[size] <= limit)]
            label = "final"
        else:
            train = table[(table[size] < top) & (table[size] <= limit)
                          & (table[step] >= drop_early * table["_last"])]
            label = f"from {drop_early:.0%} of training"
        if train.empty:
            raise TableError(f"backtest: no run is smaller than {fraction:g} × the largest "
                             f"{size} ({top:g}); use larger size_fractions.")
        with warnings.catch_warnings():  # the refits on fewer runs repeat the fit's word
            warnings.filterwarnings("ignore", message=r".* rises with .*",
                                    category=ScalelabWarning)
            fitted = law.clone().fit(train, y=y, **columns)
        n_runs = train[run].nunique() if run and run in train else len(train)
        for _, target in targets.iterrows():
            inputs = {symbol: target[col] for symbol, col in fitted.column_names_.items()}
            band = fitted.predict_interval(level=level, kind=kind, **inputs)
            pred, lower, upper = band.iloc[0]
            truth = float(target[y])
            rows.append({"size_fraction": fraction, "checkpoints": label, "n_runs": n_runs,
                         "n_points": fitted.n_points_, "target": float(target[size]),
                         "truth": truth, "prediction": pred, "lower": lower, "upper": upper,
                         "are": abs(pred - truth) / abs(truth),
                         "covered": bool(lower <= truth <= upper)})
    return pd.DataFrame(rows)
