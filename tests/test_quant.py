"""Fake quantization (scalelab.models.quant) and the precision/QAT axes of a run.

The forward is checked against the round-to-grid closed form computed here with numpy,
the backward against the identity (straight-through), and the loop's QAT phases against
the steps the config names.
"""

import dataclasses

import numpy as np
import pytest
import torch

from scalelab._errors import SpecError
from scalelab.config import RunConfig
from scalelab.models.quant import attach_quantizers, fake_quantize, is_quantized, set_quantized


def _grid(x: np.ndarray, bits: int, axis=None) -> np.ndarray:
    """Symmetric round-to-grid in numpy: s·clip(rint(x/s), −q, q), s = max|x|/q."""
    q = 2 ** (bits - 1) - 1
    if axis is None:
        top = np.abs(x).max()
    else:
        top = np.abs(x).reshape(x.shape[0], -1).max(1).reshape(-1, *[1] * (x.ndim - 1))
    s = top / q
    return s * np.clip(np.rint(x / s), -q, q)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_forward_is_the_closed_form_grid_and_gradient_passes_straight(bits):
    rng = np.random.default_rng(bits)
    w = rng.normal(size=(5, 3, 3, 3))
    x = torch.tensor(w, requires_grad=True)
    out = fake_quantize(x, bits, dims=(0,))
    np.testing.assert_allclose(out.detach().numpy(), _grid(w, bits, axis=0), rtol=0, atol=1e-12)
    # a k-bit per-channel grid: at most 2q + 1 distinct values per output channel
    for c in range(5):
        assert np.unique(out[c].detach().numpy()).size <= 2 ** bits - 1
    upstream = torch.tensor(rng.normal(size=w.shape))
    out.backward(upstream)
    np.testing.assert_array_equal(x.grad.numpy(), upstream.numpy())  # identity: STE
    # per tensor
    t = torch.tensor(w)
    np.testing.assert_allclose(fake_quantize(t, bits).numpy(), _grid(w, bits), atol=1e-12)


def test_attached_to_any_family_without_editing_it():
    from scalelab.models import build_model

    torch.manual_seed(0)
    for family in ("srcnn", "edsr", "swinir"):
        options = {"window": 4} if family == "swinir" else {}
        model = build_model(family, 8, 1, 2, **options)
        x = torch.randn(2, 1, 8, 8)
        full = model(x)
        convs = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        weights = [m.weight.detach().clone() for m in convs]
        attach_quantizers(model, weight_bits=4, act_bits=8)
        assert is_quantized(model)
        for layer, w in zip(convs, weights):  # the layer now sees the 4-bit grid of its weight
            np.testing.assert_allclose(layer.weight.detach().numpy(),
                                       _grid(w.numpy().astype(np.float64), 4, axis=0),
                                       rtol=1e-5, atol=1e-6)
        quant = model(x)
        assert not torch.allclose(quant, full)
        set_quantized(model, False)
        torch.testing.assert_close(model(x), full)
        set_quantized(model, True)
        quant.sum().backward()  # gradients reach the full-precision weights
        assert all(m.parametrizations.weight.original.grad is not None for m in convs)


def test_config_checks_and_qat_phases():
    cfg = RunConfig(weight_bits=4, qat_fraction=0.25, steps=40).validate()
    assert cfg.qat_start() == 30
    assert cfg.run_id != RunConfig(steps=40).run_id
    assert RunConfig().run_id == RunConfig(amp="none").run_id  # old ids unchanged
    with pytest.raises(SpecError, match="weight_bits must be 0"):
        RunConfig(weight_bits=1).validate()
    with pytest.raises(SpecError, match="qat_fraction must be in"):
        RunConfig(weight_bits=4, qat_fraction=0).validate()
    # a full-precision point of a grid over weight_bits and qat_fraction: the one FP run
    assert RunConfig(qat_fraction=0.5).validate().run_id == RunConfig().run_id
    assert RunConfig(qat_fraction=0.5).qat_fraction == 1.0
    with pytest.raises(SpecError, match="must equal options.decay_fraction"):
        RunConfig(weight_bits=4, qat_fraction=0.5, qat_schedule="fused",
                  schedule="wsd").validate()
    fused = RunConfig(weight_bits=4, qat_fraction=0.2, qat_schedule="fused", schedule="wsd",
                      steps=50, warmup_steps=5).validate()
    from scalelab.train.loop import lr_at

    start = fused.qat_start()
    rates = [lr_at(s, fused) for s in range(50)]
    assert rates[start - 1] == fused.lr and rates[start] < fused.lr  # QAT = the decay
    # split: each phase its own cosine, from the peak to 0
    split = RunConfig(weight_bits=4, qat_fraction=0.5, steps=40).validate()
    rates = [lr_at(s, split) for s in range(40)]
    plain = RunConfig(steps=20)
    np.testing.assert_allclose(rates[:20], [lr_at(s, plain) for s in range(20)])
    np.testing.assert_allclose(rates[20:], [lr_at(s, plain) for s in range(20)])


def test_qat_run_trains_fp_then_quantized_and_evaluates_quantized(monkeypatch):
    from scalelab.models import quant
    from scalelab.train import loop

    seen = []
    real = quant.set_quantized
    monkeypatch.setattr(loop, "set_quantized",
                        lambda model, on: (seen.append(bool(on)), real(model, on))[1])
    cfg = RunConfig(width=4, depth=1, samples=16, val_samples=8, field_size=16, batch_size=4,
                    steps=8, eval_every=4, weight_bits=3, act_bits=8, qat_fraction=0.5,
                    device="cpu", amp="bf16").validate()
    result = loop.train(cfg)
    assert result.status == "finished"
    # calls: record(0), then per step set + record at 4 and 8
    assert seen == [False, False, False, False, False, False, True, True, True, True, True]
    # its FP phase is, bit for bit, the full-precision run of (1 − f)·steps
    fp = loop.train(dataclasses.replace(cfg, weight_bits=0, act_bits=0, qat_fraction=1.0,
                                        steps=4))
    assert result.rows[1]["val_loss"] == fp.rows[-1]["val_loss"]
    assert result.rows[1]["step"] == fp.rows[-1]["step"] == 4


def test_mup_learning_rate_multipliers_survive_the_quantizers():
    from scalelab.train.loop import make_model, make_optimizer

    def groups(**quant):
        cfg = RunConfig(width=8, parametrization="mup", base_width=4, **quant).validate()
        opt = make_optimizer(cfg, make_model(cfg))
        return sorted((g["lr_multiplier"], len(g["params"])) for g in opt.param_groups)

    plain = groups()
    assert len(plain) == 2 and plain == groups(weight_bits=4, act_bits=8)
