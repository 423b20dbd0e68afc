"""W&B tracking: with a key set but the server unreachable, a sweep falls back to offline
with one warning and loses nothing; `scalelab sync` gives up after its timeout."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import yaml

import scalelab


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


def unreachable_env():
    # WANDB_SERVICE: the address of this test process's own W&B service, if an earlier
    # test started one; the sweep under test must not share it
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_MODE", "WANDB_SERVICE")}
    env.update(WANDB_API_KEY="0" * 40, WANDB_BASE_URL=f"http://127.0.0.1:{closed_port()}",
               WANDB_SILENT="true")
    return env


@pytest.mark.slow
def test_unreachable_server_falls_back_to_offline_and_loses_nothing(tmp_path):
    store = tmp_path / "out" / "runs.db"
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "fallback", "method": "grid",
        "parameters": {"width": {"values": [4, 6]}, "depth": {"value": 1},
                       "field_size": {"value": 16}, "samples": {"value": 32},
                       "val_samples": {"value": 16}, "batch_size": {"value": 16},
                       "steps": {"value": 4}, "eval_every": {"value": 2}},
        "scalelab": {"workers": 2, "store": str(store),
                     "wandb": {"project": "p", "mode": "auto", "init_timeout": 3}},
    }))
    result = subprocess.run([sys.executable, "-m", "scalelab.cli", "sweep", "run", str(spec),
                             "--quiet"], capture_output=True, text=True, timeout=300,
                            env=unreachable_env())
    assert result.returncode == 0, result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if "W&B server unreachable" in ln]
    assert len(warnings) == 1, result.stderr  # one warning for the whole sweep
    assert "scalelab sync" in warnings[0]

    from_store = scalelab.load_runs(store)
    assert from_store["run_id"].nunique() == 2
    # both runs were tracked offline, and W&B's log holds the store's numbers
    offline = sorted((store.parent / "wandb").glob("offline-run-*"))
    assert len(offline) == 2
    from_wandb = scalelab.load_runs(store.parent / "wandb")
    merged = from_store.merge(from_wandb, on=["run_id", "step"], suffixes=("", "_wandb"))
    assert len(merged) == len(from_store) == 6
    np.testing.assert_allclose(merged["val_loss_wandb"], merged["val_loss"], rtol=1e-12)
    for column in ("samples", "samples_seen", "epochs"):  # the data axis travels too
        np.testing.assert_allclose(merged[f"{column}_wandb"], merged[column], rtol=1e-12)
    np.testing.assert_allclose(merged["epochs"], merged["step"] * 16 / 32)

    # pushing them later: with the server still down, sync gives up after its timeout
    sync = subprocess.run([sys.executable, "-m", "scalelab.cli", "sync", str(store),
                           "--timeout", "5"], capture_output=True, text=True, timeout=120,
                          env=unreachable_env())
    assert sync.returncode == 2
    assert "within 5 s" in sync.stderr or "wandb sync failed" in sync.stderr
    assert len(sync.stderr.strip().splitlines()) == 1
    assert len(sorted((store.parent / "wandb").glob("offline-run-*"))) == 2  # kept


def test_sync_without_key_or_runs_is_one_sentence(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    result = subprocess.run([sys.executable, "-m", "scalelab.cli", "sync", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and "no offline W&B runs" in result.stderr
    (tmp_path / "wandb" / "offline-run-1-x").mkdir(parents=True)
    result = subprocess.run([sys.executable, "-m", "scalelab.cli", "sync", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2 and "needs WANDB_API_KEY" in result.stderr
