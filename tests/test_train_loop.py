"""The training loop: determinism, divergence, schedules, checkpoints, switches, errors."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from scalelab._errors import ScalelabError
from scalelab.config import RunConfig
from scalelab.train import lr_at, train
from scalelab.train.checkpoint import checkpoint_path

TINY = RunConfig(family="edsr", width=4, depth=1, scale=4, field="precip", field_size=16,
                 samples=64, val_samples=16, batch_size=8, steps=12, eval_every=4,
                 lr=3e-3, seed=1, device="cpu")


def curve(result):
    """The rows without wall times, as arrays per key (NaN compares equal in assert_equal)."""
    keys = [k for k in result.rows[0] if k != "wall_time_s"]
    return {k: np.array([row[k] for row in result.rows]) for k in keys}


def test_same_curve_twice_on_cpu():
    first, second = train(TINY), train(TINY)
    assert first.status == second.status == "finished"
    assert [r["step"] for r in first.rows] == [0, 4, 8, 12]
    np.testing.assert_equal(curve(first), curve(second))
    other_seed = train(replace(TINY, seed=2))
    assert curve(other_seed)["train_loss"][-1] != curve(first)["train_loss"][-1]


def test_row_bookkeeping_samples_flops_lr():
    result = train(TINY)
    fps = result.info["flops_per_sample"]
    for row in result.rows:
        assert row["samples_seen"] == row["step"] * TINY.batch_size
        assert row["flops"] == 3 * fps * row["samples_seen"]
        assert row["lr"] == pytest.approx(lr_at(max(row["step"] - 1, 0), TINY))
    info = result.info
    assert info["config"] == TINY.to_dict() and info["peak_memory_bytes"] > 0
    assert info["versions"]["torch"] == torch.__version__


def test_huge_learning_rate_diverges_cleanly():
    cfg = replace(TINY, optimizer="sgd", lr=1e12, schedule="constant", steps=40, eval_every=10)
    result = train(cfg)
    assert result.status == "diverged"
    step = result.info["diverged_step"]
    assert isinstance(step, int) and 1 <= step <= cfg.steps
    # rows stop before the divergence and hold only finite losses
    assert all(row["step"] < step for row in result.rows)
    assert all(math.isfinite(row["val_loss"]) for row in result.rows)


def test_divergence_step_is_the_first_non_finite_loss(monkeypatch):
    """A loss that turns NaN at a known step is reported at exactly that step."""
    import scalelab.train.loop as loop

    real = loop.make_loss

    def loss_nan_at_step_7(cfg):
        inner, calls = real(cfg), {"train": 0}

        def loss(pred, target, lr):
            value = inner(pred, target, lr)
            if torch.is_grad_enabled():
                calls["train"] += 1
                if calls["train"] >= 7:
                    return value * float("nan")
            return value
        return loss

    monkeypatch.setattr(loop, "make_loss", loss_nan_at_step_7)
    result = train(TINY)
    assert result.status == "diverged" and result.info["diverged_step"] == 7
    assert [r["step"] for r in result.rows] == [0, 4]


def test_non_finite_validation_loss_ends_the_run_without_its_row(monkeypatch):
    import scalelab.train.loop as loop

    real = loop.make_loss

    def loss_nan_at_third_evaluation(cfg):
        inner, calls = real(cfg), {"eval": 0}

        def loss(pred, target, lr):
            value = inner(pred, target, lr)
            if not torch.is_grad_enabled():
                calls["eval"] += 1  # the first scores the bicubic reference, once per run
                if calls["eval"] == 4:
                    return value * float("inf")
            return value
        return loss

    monkeypatch.setattr(loop, "make_loss", loss_nan_at_third_evaluation)
    seen = []
    result = train(TINY, on_row=seen.append)
    assert result.status == "diverged" and result.info["diverged_step"] == 8
    assert [r["step"] for r in result.rows] == [r["step"] for r in seen] == [0, 4]


def test_schedules_at_known_steps():
    cfg = replace(TINY, lr=1.0, steps=110, warmup_steps=10)
    constant = replace(cfg, schedule="constant")
    assert [lr_at(s, constant) for s in (0, 4, 9, 10, 109)] == [0.1, 0.5, 1.0, 1.0, 1.0]
    cosine = replace(cfg, schedule="cosine")
    assert lr_at(4, cosine) == pytest.approx(0.5)  # warmup
    assert lr_at(10, cosine) == pytest.approx(1.0)
    assert lr_at(60, cosine) == pytest.approx(0.5)  # half way after warmup: cos(π/2)
    assert lr_at(35, cosine) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.25)))
    wsd = replace(cfg, schedule="wsd")  # stable until 80 % of the 100 post-warmup steps
    assert [lr_at(s, wsd) for s in (10, 50, 89)] == [1.0, 1.0, 1.0]
    assert lr_at(90, wsd) == pytest.approx(1.0)
    assert lr_at(100, wsd) == pytest.approx(0.5)
    assert lr_at(109, wsd) == pytest.approx(0.05)
    short_decay = replace(wsd, options={"decay_fraction": 0.5})
    assert lr_at(59, short_decay) == 1.0 and lr_at(85, short_decay) == pytest.approx(0.5)


def test_checkpoint_loads_weights_only_and_finished_run_returns_at_once(tmp_path):
    cfg = replace(TINY, checkpoint_every=5)
    result = train(cfg, checkpoint_dir=tmp_path)
    state = torch.load(checkpoint_path(tmp_path), weights_only=True)
    assert state["status"] == "finished" and state["step"] == cfg.steps
    assert state["run_id"] == cfg.run_id
    np.testing.assert_equal(curve(result), {k: np.array([r[k] for r in state["rows"]])
                                            for k in curve(result)})
    seen = []
    again = train(cfg, on_row=seen.append, checkpoint_dir=tmp_path)
    assert again.status == "finished" and seen == []
    np.testing.assert_equal(curve(again), curve(result))
    assert not [p for p in tmp_path.iterdir() if p.name != "last.pt"]  # no temporary files left


def _stopped_after_step_8(cfg, checkpoint_dir) -> None:
    """Train ``cfg`` until its step-8 row, stopped there by an exception in on_row (its last
    checkpoint is the one before)."""
    class Stop(Exception):
        pass

    def stop_after_step_8(row):
        if row["step"] == 8:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, on_row=stop_after_step_8, checkpoint_dir=checkpoint_dir)


def test_resume_from_an_intermediate_checkpoint_gives_the_same_curve(tmp_path):
    """Stop after the step-5 checkpoint (an exception in on_row), then resume."""
    cfg = replace(TINY, checkpoint_every=5)
    _stopped_after_step_8(cfg, tmp_path)
    assert torch.load(checkpoint_path(tmp_path), weights_only=True)["step"] == 5
    resumed = train(cfg, checkpoint_dir=tmp_path)
    assert resumed.info["resumed_from_step"] == 5
    np.testing.assert_equal(curve(resumed), curve(train(TINY)))


def test_checkpoint_of_another_run_is_refused(tmp_path):
    train(replace(TINY, checkpoint_every=6), checkpoint_dir=tmp_path)
    with pytest.raises(ScalelabError, match="belongs to run"):
        train(replace(TINY, seed=5, checkpoint_every=6), checkpoint_dir=tmp_path)


def test_channels_last_and_bf16_switches_run_on_cpu():
    plain = train(TINY)
    nhwc = train(replace(TINY, channels_last=True))
    np.testing.assert_allclose(curve(nhwc)["val_mse"], curve(plain)["val_mse"], rtol=1e-4)
    bf16 = train(replace(TINY, amp="bf16"))
    assert bf16.status == "finished"
    # bf16 autocast changes rounding, not the model: the curve stays close
    np.testing.assert_allclose(curve(bf16)["val_mse"], curve(plain)["val_mse"], rtol=0.1)


def test_ensemble_run_records_calibration():
    cfg = replace(TINY, ensemble_members=3, loss_variant="crps_fair")
    result = train(cfg)
    assert result.status == "finished"
    last = result.rows[-1]
    for key in ("val_crps", "val_spread_skill", "val_rank_delta", "val_exceed_ece",
                "val_exceed_brier", "val_ssim"):
        assert math.isfinite(last[key]), key
    assert last["val_loss"] == pytest.approx(last["val_crps"], rel=1e-4)  # the loss is fair CRPS
    assert result.info["flops_per_sample"] == 3 * train(
        replace(cfg, loss_variant="mse")).info["flops_per_sample"]


def test_bad_inputs_raise_one_sentence_before_work():
    with pytest.raises(ScalelabError, match="ensemble_members"):
        train(replace(TINY, loss_variant="crps_fair"))
    with pytest.raises(ScalelabError, match="lr must be positive"):
        train(replace(TINY, lr=0.0))


@pytest.mark.slow
def test_compiled_run_gives_the_eager_curve():
    """torch.compile (inductor, here on CPU) changes how the network runs, not what it computes."""
    eager, compiled = train(TINY), train(replace(TINY, compile=True))
    assert compiled.status == "finished"
    np.testing.assert_allclose(curve(compiled)["val_mse"], curve(eager)["val_mse"], rtol=1e-4)


def test_a_resumed_run_sends_its_curve_so_far_again_before_the_new_rows(tmp_path):
    """What a W&B run resumed in a new process needs to hold the whole history."""
    cfg = replace(TINY, checkpoint_every=5)
    _stopped_after_step_8(cfg, tmp_path)
    seen = []
    resumed = train(cfg, on_row=seen.append, checkpoint_dir=tmp_path)
    assert resumed.info["resumed_from_step"] == 5
    assert [r["step"] for r in seen] == [r["step"] for r in resumed.rows]  # each once, in order
    assert seen == resumed.rows
