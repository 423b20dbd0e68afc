"""Resume after a real kill: a subprocess training with checkpoints is SIGKILLed mid-run,
restarted, and must end with the curve of an uninterrupted run — a plain run, and an
adversarial one (its discriminator and second optimiser come back from the checkpoint)."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from scalelab.config import RunConfig
from scalelab.train import train
from scalelab.train.checkpoint import checkpoint_path

CHILD = """
import json, sys, time
import torch
torch.set_num_threads(1)
from scalelab.config import RunConfig
from scalelab.train import train
cfg = RunConfig.from_dict(json.loads(sys.argv[1]))
pause = float(sys.argv[3])  # seconds to sleep after each curve row, to give the kill a window
result = train(cfg, on_row=lambda row: time.sleep(pause), checkpoint_dir=sys.argv[2])
with open(sys.argv[4], "w") as out:
    json.dump({"status": result.status, "rows": result.rows,
               "resumed_from_step": result.info["resumed_from_step"]}, out)
"""

CFG = RunConfig(family="edsr", width=4, depth=1, scale=4, field="grf", field_size=16,
                samples=64, val_samples=16, batch_size=8, steps=24, eval_every=4,
                checkpoint_every=3, lr=3e-3, seed=7, device="cpu")
ADVERSARIAL = replace(CFG, adversarial_weight=0.05, options={"feature_matching": 0.1})


def run_child(tmp_path, pause: float, cfg: RunConfig = CFG) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, json.dumps(cfg.to_dict()), str(tmp_path / "ckpt"),
         str(pause), str(tmp_path / "result.json")],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def without_wall_time(rows):
    keys = [k for k in rows[0] if k != "wall_time_s"]
    return {k: np.array([row[k] for row in rows], dtype=float) for k in keys}


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
@pytest.mark.parametrize("cfg", [CFG, ADVERSARIAL], ids=["plain", "adversarial"])
def test_sigkilled_run_resumes_to_the_uninterrupted_curve(tmp_path, cfg):
    child = run_child(tmp_path, pause=0.5, cfg=cfg)
    ckpt = checkpoint_path(tmp_path / "ckpt")
    deadline = time.monotonic() + 120
    while not ckpt.exists():
        assert child.poll() is None, "the run ended before its first checkpoint"
        assert time.monotonic() < deadline, "no checkpoint written within 120 s"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=30) == -signal.SIGKILL
    killed_at = torch.load(ckpt, weights_only=True)
    assert killed_at["status"] == "running" and 0 < killed_at["step"] < cfg.steps
    assert ("adversary" in killed_at) == (cfg.adversarial_weight > 0)
    assert not (tmp_path / "result.json").exists()

    resumed = run_child(tmp_path, pause=0.0, cfg=cfg)
    assert resumed.wait(timeout=300) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "finished"
    assert result["resumed_from_step"] >= killed_at["step"]

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the child: the same reductions, bit for bit
    try:
        reference = train(replace(cfg, checkpoint_every=0))
    finally:
        torch.set_num_threads(threads)
    assert [row["step"] for row in result["rows"]] == [0, 4, 8, 12, 16, 20, 24]
    np.testing.assert_equal(without_wall_time(result["rows"]), without_wall_time(reference.rows))
