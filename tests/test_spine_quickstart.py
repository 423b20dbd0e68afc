"""The README's first command, end to end: the whole quickstart sweep → store, W&B, PDF."""

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import scalelab

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path):
    store = tmp_path / "quickstart" / "runs.db"
    result = subprocess.run(
        [sys.executable, "-m", "scalelab.cli", "run", str(ROOT / "sweeps" / "quickstart.yaml"),
         "--store", str(store)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # it says where the outputs went and showed a progress bar over runs
    assert f"run store: {store}" in result.stdout
    assert "report: " in result.stdout
    assert "12/12" in result.stderr

    # the store: 12 finished runs, each with its curve, in a real SQLite file
    db = sqlite3.connect(store)
    assert db.execute("SELECT count(*) FROM runs WHERE status='finished'").fetchone()[0] == 12
    steps = db.execute("SELECT run_id, count(*) FROM curve GROUP BY run_id").fetchall()
    assert len(steps) == 12 and all(n >= 2 for _, n in steps)
    db.close()

    runs = scalelab.load_runs(store)
    for column in ("run_id", "params", "samples", "loss_variant", "step", "val_loss", "flops",
                   "width", "samples_seen", "train_loss"):
        assert column in runs.columns
    final = runs.sort_values("step").groupby("run_id").tail(1)
    assert sorted(final["samples"].unique()) == [4096]
    assert final["width"].nunique() == 6
    assert sorted(final["loss_variant"].unique()) == ["crps_fair", "mse"]
    # the training did something: every run beats its own step-0 loss
    first = runs.sort_values("step").groupby("run_id").head(1).set_index("run_id")["val_loss"]
    last = final.set_index("run_id")["val_loss"]
    assert (last < first.loc[last.index]).all()
    # a bigger model helps, in both variants (a property of the task, not of the code)
    for _, rows in final.groupby("loss_variant"):
        by_width = rows.set_index("width")["val_loss"]
        assert by_width[16] < by_width[3]
    # the ensembles record their calibration, so the calibration page has laws to draw
    crps = final[final["loss_variant"] == "crps_fair"]
    assert np.isfinite(crps[["val_crps", "val_spread_skill"]].to_numpy(float)).all()

    # W&B offline runs, one per training run, each with its binary log
    wandb_dirs = sorted((store.parent / "wandb").glob("offline-run-*"))
    assert len(wandb_dirs) == 12
    assert all(list(d.glob("run-*.wandb")) for d in wandb_dirs)

    # the PDF: opened and rendered; its first page is not blank
    pdf = store.parent / "report.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")],
                   check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 1
    import matplotlib.image

    image = matplotlib.image.imread(pages[0])
    assert image[..., :3].std() > 0.02  # a blank page is one colour

    # running it again runs nothing twice
    again = subprocess.run(
        [sys.executable, "-m", "scalelab.cli", "run", str(ROOT / "sweeps" / "quickstart.yaml"),
         "--store", str(store), "--no-report", "--quiet"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "12 already in the store" in again.stdout
    assert len(list((store.parent / "wandb").glob("offline-run-*"))) == 12
