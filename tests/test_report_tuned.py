"""The report's laws read each size at its best learning rate when a sweep varies it."""

import numpy as np
import pandas as pd

from scalelab.report.context import ReportContext, best_tuned


def _lr_sweep(seeds=(0,)):
    rows = []
    for n in (1e3, 1e4, 1e5):
        best = 0.01 * (n / 1e3) ** -0.5
        for lr in (1e-3, 3e-3, 1e-2, 3e-2):
            for seed in seeds:
                loss = 0.1 + n ** -0.3 + 0.05 * np.log(lr / best) ** 2 + 1e-3 * seed
                rows.append({"run_id": f"{n}-{lr}-{seed}", "params": n, "width": int(n ** 0.5),
                             "family": "edsr", "lr": lr, "seed": seed, "samples": 512,
                             "status": "finished", "step": 100, "val_loss": loss})
    return pd.DataFrame(rows)


def test_best_learning_rate_per_size_is_kept_with_its_seeds():
    table = _lr_sweep(seeds=(0, 1))
    kept, said = best_tuned(table, "val_loss")
    assert len(kept) == 6  # one rate per size, both seeds
    for n, rows in kept.groupby("params"):
        assert rows["lr"].nunique() == 1 and rows["seed"].nunique() == 2
        everyone = table[table["params"] == n].groupby("lr")["val_loss"].mean()
        assert rows["lr"].iloc[0] == everyone.idxmin()
    assert len(said) == 1 and "18 of 24" in said[0] and "learning-rate page" in said[0]


def test_no_tuned_axis_leaves_the_table_alone():
    table = _lr_sweep()
    one_rate = table[table["lr"] == 1e-2]
    kept, said = best_tuned(one_rate, "val_loss")
    assert kept is one_rate and said == []
    # a rate that varies only across sizes (each size its own rate) is no sweep either
    diagonal = table.loc[table.groupby("params")["val_loss"].idxmax()]
    kept, said = best_tuned(diagonal, "val_loss")
    assert len(kept) == 3 and said == []


def test_report_context_fits_the_best_rate():
    ctx = ReportContext.build(_lr_sweep(), y="val_loss")
    assert len(ctx.final) == 3
    assert any("best lr" in line for line in ctx.dropped)
    assert len(ctx.runs) == 12  # the curve rows stay whole for the learning-rate page


def test_predict_reads_each_size_at_its_best_rate():
    from scalelab.laws import predict

    table = _lr_sweep()
    best = table.loc[table.groupby("params")["val_loss"].idxmin()]
    swept = predict(table, "params=1e5", n_bootstrap=20)
    tuned = predict(best, "params=1e5", n_bootstrap=20)
    assert swept.prediction == tuned.prediction
