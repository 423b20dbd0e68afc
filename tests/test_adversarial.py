"""Adversarial training (SRGAN): the discriminator's size and cost, its losses against their
formulas, resume bit for bit, the speed switches, the spec's sentences and the report's
variants and gain page."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from scalelab._errors import SpecError
from scalelab.train import train
from scalelab.train.checkpoint import checkpoint_path
from test_train_loop import TINY, _stopped_after_step_8, curve

ADV = replace(TINY, adversarial_weight=0.05, options={"feature_matching": 0.1})


def discriminator_params(channels: int, width: int, stages: int) -> int:
    """Two 3×3 convolutions (with biases) a stage, widths width·2^i, and a linear head."""
    total, c_in = 0, channels
    for stage in range(stages):
        c = width * 2 ** stage
        total += 9 * c_in * c + c + 9 * c * c + c
        c_in = c
    return total + c_in + 1


def discriminator_flops(channels: int, width: int, stages: int, size: int) -> int:
    """2·k²·c_in·c_out per output pixel of each convolution (stride 2 halves the grid), and
    2·c of the head: the counter's convention."""
    total, c_in = 0, channels
    for stage in range(stages):
        c = width * 2 ** stage
        total += 2 * 9 * c_in * c * size * size
        size //= 2
        total += 2 * 9 * c * c * size * size
        c_in = c
    return total + 2 * c_in


def test_discriminator_is_sized_from_the_generator():
    from scalelab.models import count_params, forward_flops
    from scalelab.models.discriminator import discriminator_for

    # depth + 1 stages, at most SRGAN's 4 (a deep generator's does not grow 2^depth wide)
    for width, depth, ratio, stages in ((4, 1, 1.0, 2), (8, 2, 1.0, 3), (8, 2, 0.5, 3),
                                        (4, 8, 1.0, 4)):
        d = discriminator_for(1, width, depth, ratio)
        w = round(ratio * width)
        assert count_params(d) == discriminator_params(1, w, stages)
        assert forward_flops(d, (1, 16, 16)) == discriminator_flops(1, w, stages, 16)
        assert d(torch.zeros(3, 1, 16, 16)).shape == (3,)


def test_the_losses_are_the_non_saturating_gan_losses():
    from scalelab.train.adversarial import Adversary

    torch.manual_seed(0)
    adversary = Adversary(ADV, channels=1, device="cpu")
    d = adversary.discriminator
    fake = torch.randn(4, 2, 1, 16, 16, requires_grad=True)  # an ensemble of 2 members
    real = torch.randn(4, 1, 16, 16)
    loss = adversary.generator_loss(fake, real)
    with torch.no_grad():
        logits, fake_feats = d.features(fake.reshape(8, 1, 16, 16))
        _, real_feats = d.features(real)
        ones = torch.ones(8)
        expected = 0.05 * F.binary_cross_entropy_with_logits(logits, ones) + 0.1 * sum(
            (f - r.repeat_interleave(2, 0)).abs().mean() for f, r in zip(fake_feats, real_feats))
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert fake.grad.abs().sum() > 0  # the term reaches the generator
    assert all(p.grad is None for p in d.parameters())  # and trains no discriminator weight
    before = [p.detach().clone() for p in d.parameters()]
    with torch.no_grad():
        d_expected = (F.binary_cross_entropy_with_logits(d(real), torch.ones(4))
                      + F.binary_cross_entropy_with_logits(d(fake.reshape(8, 1, 16, 16)),
                                                           torch.zeros(8)))
    torch.testing.assert_close(adversary.step(lr=1e-3), d_expected)
    assert any((p - b).abs().sum() > 0 for p, b in zip(d.parameters(), before))


def test_n_stays_the_generators_and_flops_count_the_discriminator():
    from scalelab.train.adversarial import evaluations

    plain, adversarial = train(TINY), train(ADV)
    assert adversarial.status == "finished"
    assert adversarial.info["params"] == plain.info["params"]
    assert adversarial.info["discriminator_params"] == discriminator_params(1, 4, 2)
    # a fake, the real field and the fake again in the discriminator's step, plus feature matching
    assert evaluations(1, True) == 4
    assert adversarial.info["flops_per_sample"] == plain.info["flops_per_sample"] \
        + 4 * discriminator_flops(1, 4, 2, 16)
    for row in adversarial.rows:
        assert row["flops"] == 3 * adversarial.info["flops_per_sample"] * row["samples_seen"]
    assert curve(adversarial)["val_mse"][-1] != curve(plain)["val_mse"][-1]  # the term acts


def test_weight_zero_is_the_plain_run():
    assert replace(TINY, adversarial_weight=0.0).run_id == TINY.run_id
    assert ADV.run_id != TINY.run_id


def test_a_stopped_adversarial_run_resumes_bit_equal(tmp_path):
    cfg = replace(ADV, steps=8, checkpoint_every=5)
    _stopped_after_step_8(cfg, tmp_path)
    saved = torch.load(checkpoint_path(tmp_path), weights_only=True)
    assert saved["step"] == 5 and set(saved["adversary"]) == {"discriminator", "optimizer"}
    resumed = train(cfg, checkpoint_dir=tmp_path)
    assert resumed.info["resumed_from_step"] == 5
    np.testing.assert_equal(curve(resumed), curve(train(replace(cfg, checkpoint_every=0))))


def test_channels_last_and_bf16_reach_the_discriminator_on_cpu(monkeypatch):
    import scalelab.train.adversarial as adversarial

    formats = []
    real_init = adversarial.Adversary.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        weight = self.discriminator.blocks[0][2].weight  # 4 → 4 channels: NHWC is distinct
        formats.append(weight.is_contiguous(memory_format=torch.channels_last)
                       and not weight.is_contiguous())

    monkeypatch.setattr(adversarial.Adversary, "__init__", spy)
    short = replace(ADV, steps=8)
    plain = train(short)
    nhwc = train(replace(short, channels_last=True))
    assert formats == [False, True]
    np.testing.assert_allclose(curve(nhwc)["val_mse"], curve(plain)["val_mse"], rtol=1e-4)
    bf16 = train(replace(short, amp="bf16"))
    assert bf16.status == "finished"
    np.testing.assert_allclose(curve(bf16)["val_mse"], curve(plain)["val_mse"], rtol=0.1)


@pytest.mark.slow
def test_compiled_discriminator_gives_the_eager_curve():
    eager, compiled = train(ADV), train(replace(ADV, compile=True))
    assert compiled.status == "finished"
    np.testing.assert_allclose(curve(compiled)["val_mse"], curve(eager)["val_mse"], rtol=1e-4)


@pytest.mark.parametrize("change, words", [
    ({"adversarial_weight": -0.1}, "adversarial_weight must be >= 0"),
    ({"adversarial_weight": 0.1, "family": "diffusion"},
     "the diffusion family trains by its own objective"),
    ({"adversarial_weight": 0.1, "options": {"feature_matching": -1}},
     "options.feature_matching must be"),
    ({"adversarial_weight": 0.1, "options": {"discriminator_width": 0}},
     "options.discriminator_width must be"),
])
def test_bad_adversarial_settings_are_one_sentence(change, words):
    with pytest.raises(SpecError, match=words) as err:
        replace(TINY, **change).validate()
    assert str(err.value).count(". ") <= 1 and "\n" not in str(err.value)


# -- the report --------------------------------------------------------------------------
def gain_table(slope: float) -> pd.DataFrame:
    """Final rows of a sweep: 4 sizes × weights {0, 0.01}; the adversarial run's spectrum
    error is (1 − gain) times the plain one's, gain = 0.1 + slope·log10(N / 1e3)."""
    rows = []
    for i, n in enumerate((1e3, 3e3, 1e4, 3e4)):
        base = 0.5 * n ** -0.2
        gain = 0.1 + slope * np.log10(n / 1e3)
        for weight in (0.0, 0.01):
            rows.append({"run_id": f"r{i}{weight}", "family": "edsr", "width": 4 + i,
                         "depth": 2, "samples": 2048, "samples_seen": 4800, "seed": 0,
                         "step": 300, "status": "finished", "params": n,
                         "loss_variant": "mse", "adversarial_weight": weight,
                         "options": {"feature_matching": 0.1} if weight else {},
                         "val_loss": base, "val_mse": base * (1.05 if weight else 1.0),
                         "val_spectrum_error": base * (1 - gain if weight else 1.0)})
    return pd.DataFrame(rows)


def test_each_adversarial_weight_is_its_own_variant():
    from scalelab.report.context import ReportContext
    from scalelab.runs.table import objective_variants

    table = gain_table(0.05)
    assert sorted(set(objective_variants(table))) == [
        "mse", "mse + 0.01*adversarial(feature_matching=0.1)"]
    ctx = ReportContext.build(table, y="val_mse")
    assert ctx.variants == ["mse", "mse + 0.01*adversarial(feature_matching=0.1)"]
    assert len(ctx.variant_rows("mse")) == 4


@pytest.mark.parametrize("slope, trend", [(0.05, "grows"), (-0.03, "shrinks"),
                                          (0.0, "no clear trend")])
def test_the_gain_page_says_whether_the_gain_grows_with_n(slope, trend):
    from scalelab.report.adversarial import adversarial_gains, gain_trends, page_adversarial
    from scalelab.report.context import ReportContext

    table = gain_table(slope)
    if slope == 0.0:  # noise around a flat gain: the interval holds 0
        table.loc[table.adversarial_weight > 0, "val_spectrum_error"] *= [1.02, 0.97, 1.03, 0.99]
    ctx = ReportContext.build(table, y="val_mse")
    gains = adversarial_gains(ctx.final)
    spectrum = gains[gains.metric == "val_spectrum_error"].sort_values("params")
    if slope:
        np.testing.assert_allclose(spectrum["gain"], 0.1 + slope * np.log10(
            spectrum["params"] / 1e3))
        np.testing.assert_allclose(gains[gains.metric == "val_mse"]["gain"], -0.05)
    row = gain_trends(gains).set_index("metric").loc["val_spectrum_error"]
    assert row["trend"] == trend
    if slope:
        assert row["slope"] == pytest.approx(slope)
    figures = page_adversarial(ctx, None)
    assert [name for name, _ in figures] == ["adversarial"]
    plain = ReportContext.build(table[table.adversarial_weight == 0], y="val_mse")
    assert page_adversarial(plain, None) == []  # no axis: no page


def test_predict_refuses_to_mix_adversarial_weights():
    from scalelab._errors import ScalelabError
    from scalelab.laws import predict

    with pytest.raises(ScalelabError, match="several adversarial weights"):
        predict(gain_table(0.05), target="params=1e5", y="val_mse")


@pytest.mark.gpu
def test_adversarial_speed_switches_train_on_cuda():
    """bf16, channels_last and compile on CUDA reach the discriminator too; the curve stays
    near fp32's (benchmarks/gpu_check.sh runs the gpu tests)."""
    cfg = replace(ADV, device="cuda", ensemble_members=2, loss_variant="crps_fair + 0.1*kl")
    plain = train(cfg)
    fast = train(replace(cfg, amp="bf16", channels_last=True, compile=True))
    assert plain.status == fast.status == "finished"
    np.testing.assert_allclose(curve(fast)["val_mse"], curve(plain)["val_mse"], rtol=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--adversarial", "0.1"],
                                  ["--members", "2", "--loss", "crps_fair + 0.1*kl"]],
                         ids=["adversarial", "crps_kl"])
def test_bench_train_times_adversarial_and_crps_kl_training(args):
    import subprocess
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_train.py"
    result = subprocess.run([sys.executable, str(bench), "--families", "edsr", "--steps", "1",
                             "--rounds", "1", "--warmup", "1", "--field-size", "16", *args],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "samples/s" in result.stdout and args[-1] in result.stdout
