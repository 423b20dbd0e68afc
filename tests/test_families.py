"""The swinir and diffusion families: shapes, N and FLOPs counted by hand, the shifted-window
mask, EDM preconditioning and sampler against closed forms, determinism, learning."""

import math

import pytest
import torch
from torch import nn

from scalelab._errors import ScalelabError
from scalelab.models import build_model, count_params, forward_flops, training_flops
from scalelab.models.diffusion import Diffusion
from scalelab.models.swinir import relative_position_index, shifted_window_mask


# -- swinir -----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(8, 8), (7, 5), (3, 12)])
def test_swinir_takes_any_field_size(size):
    model = build_model("swinir", 8, 2, 3, window=4)
    lr = torch.randn(2, 1, *size)
    assert model(lr).shape == (2, 1, 3 * size[0], 3 * size[1])


def test_swinir_params_by_hand():
    c, h, w, r, b, d, s = 16, 2, 4, 2, 2, 3, 2  # width, heads, window, mlp ratio, blocks, depth
    layer = (2 * c + (2 * w - 1) ** 2 * h + 3 * c * c + 3 * c + c * c + c + 2 * c
             + r * c * c + r * c + r * c * c + c)
    rstb = b * layer + 9 * c * c + c
    n = (9 * c + c) + 2 * c + d * rstb + 2 * c + (9 * c * c + c) + (9 * c * s * s + s * s)
    model = build_model("swinir", c, d, s, heads=h, window=w, blocks=b, mlp_ratio=r)
    assert count_params(model) == n


def test_swinir_flops_match_hand_count_with_attention():
    c, h, w, b, d, s = 16, 4, 4, 2, 2, 2
    height, width = 6, 9  # padded to 8 × 12: L = 96 tokens in 6 windows of 16
    tokens = 8 * 12
    hidden = 2 * c
    macs_layer = (tokens * 3 * c * c  # QKV projection
                  + tokens * c * c  # output projection
                  + 2 * (tokens // (w * w)) * h * (w * w) * (w * w) * (c // h)  # QKᵀ and AV
                  + 2 * tokens * c * hidden)  # MLP
    conv = 9 * tokens
    macs = conv * c + d * (b * macs_layer + conv * c * c) + conv * c * c + conv * c * s * s
    model = build_model("swinir", c, d, s, heads=h, window=w, blocks=b)
    assert forward_flops(model, (1, height, width)) == 2 * macs


def test_shifted_window_mask_separates_the_rolled_regions():
    mask = shifted_window_mask(8, 8, window=4, shift=2)  # 4 windows of 16 tokens
    assert mask.shape == (4, 16, 16)
    zeros = (mask == 0).sum(-1)  # tokens each token may attend to
    assert (zeros[0] == 16).all()  # top-left window: one region
    assert (zeros[1] == 8).all() and (zeros[2] == 8).all()  # split in two by the seam
    assert (zeros[3] == 4).all()  # bottom-right: four 2 × 2 regions
    assert set(mask.unique().tolist()) == {0.0, -100.0}
    # in the top-right window, columns 0–1 and 2–3 of the window are the two regions
    col = torch.arange(16) % 4
    assert torch.equal(mask[1] == 0, (col[:, None] < 2) == (col[None, :] < 2))


def test_relative_position_index_depends_only_on_the_offset():
    w = 3
    index = relative_position_index(w)
    coords = [(i, j) for i in range(w) for j in range(w)]
    for a, (ya, xa) in enumerate(coords):
        for b, (yb, xb) in enumerate(coords):
            assert index[a, b] == (ya - yb + w - 1) * (2 * w - 1) + (xa - xb + w - 1)


def test_swinir_shifted_layers_mix_across_windows():
    """With one layer per block (no shift) a change in one window stays in it; the shifted
    layer of a two-layer block carries it into the neighbouring window."""
    torch.manual_seed(0)
    for blocks, crosses in ((1, False), (2, True)):
        model = build_model("swinir", 8, 1, 1, window=4, blocks=blocks).eval()
        for conv in (model.conv_first, model.groups[0].conv, model.conv_after_body,
                     model.upsample[0]):  # 1×1 reach: keep only the attention's mixing
            conv.weight.data[..., [0, 2], :] = 0
            conv.weight.data[..., :, [0, 2]] = 0
        lr = torch.randn(1, 1, 8, 8)
        bumped = lr.clone()
        bumped[..., 1, 1] += 1.0  # in the top-left window
        diff = (model(bumped) - model(lr)).abs()[0, 0]
        assert (diff[:4, 4:].max() > 1e-6) == crosses


def test_swinir_bad_options():
    with pytest.raises(ScalelabError, match="divisible by heads=3"):
        build_model("swinir", 16, 1, 2, heads=3)
    with pytest.raises(ScalelabError, match="swinir family has no option 'sampler'"):
        build_model("swinir", 16, 1, 2, sampler="heun")


# -- diffusion --------------------------------------------------------------------------------
def test_diffusion_params_by_hand():
    w, c = 8, 1
    unet = ((9 * 2 * c * w + w) + (9 * w * w + w) + (9 * w * 2 * w + 2 * w)
            + (9 * 4 * w * w + 2 * w) + (4 * 2 * w * w + w) + (9 * 2 * w * w + w)
            + (9 * w * w + w) + (w * c + c))
    embedding = (w * w + w) + (w * w + w) + (w * 2 * w + 2 * w) + (w * w + w)
    assert count_params(build_model("diffusion", w, 1, 2, residual="none")) == unet + embedding
    mean_net = count_params(build_model("unet", w, 1, 2))
    assert count_params(build_model("diffusion", w, 1, 2, residual="regression")) == \
        unet + embedding + mean_net


def test_diffusion_flops_count_every_sampler_step():
    w, s, h = 8, 2, 8  # HR 16 × 16
    hr = (s * h) ** 2
    macs = (hr * 9 * (2 * w + w * w)  # down block: 2 → w, w → w
            + hr // 4 * 9 * (w * 2 * w + 4 * w * w)  # bottleneck at half the grid
            + hr // 4 * 4 * 2 * w * w  # 2 × 2 transposed conv, stride 2
            + hr * 9 * (2 * w * w + w * w)  # decoder
            + hr * w  # 1 × 1 output
            + w * w + w * w + w * 2 * w + w * w)  # noise embedding and its projections
    for steps in (1, 4, 18):
        model = build_model("diffusion", w, 1, s, sampler_steps=steps)
        assert training_flops(model, (1, h, h)) == 2 * macs
        assert model.evaluations_per_sample == 2 * steps - 1
        assert forward_flops(model, (1, h, h)) == (2 * steps - 1) * 2 * macs
    regression = build_model("diffusion", w, 1, s, residual="regression")
    mean_flops = forward_flops(build_model("unet", w, 1, s), (1, h, h))
    assert training_flops(regression, (1, h, h)) == 2 * macs + mean_flops
    assert forward_flops(regression, (1, h, h)) == 35 * 2 * macs + mean_flops


def test_edm_preconditioning_matches_table_1():
    model = build_model("diffusion", 8, 1, 2, sigma_data=0.5)
    sigma = torch.tensor([0.01, 0.5, 3.0, 80.0])
    x = torch.randn(4, 1, 16, 16)
    cond = torch.zeros_like(x)
    sd = 0.5
    for value in (0.0, 1.0):  # F_θ ≡ value: D = c_skip x + c_out · value
        model.denoiser.net.features = lambda h, emb, v=value: torch.full_like(h[:, :1], v)
        out = model.denoiser(x, sigma, cond)
        s = sigma.view(-1, 1, 1, 1)
        expected = sd**2 / (s**2 + sd**2) * x + value * s * sd / (s**2 + sd**2).sqrt()
        torch.testing.assert_close(out, expected)


def test_sigma_steps_are_eq_5():
    model = build_model("diffusion", 4, 1, 2, sampler_steps=5)
    steps = model.sigma_steps()
    assert steps[0] == pytest.approx(80.0) and steps[4] == pytest.approx(0.002)
    assert steps[5] == 0
    i = 2
    expected = (80 ** (1 / 7) + i / 4 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert float(steps[i]) == pytest.approx(expected)


class ExactGaussianDenoiser(nn.Module):
    """The ideal denoiser of data y ~ N(0, s²): E[y | y + n] = x s² / (s² + σ²)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x, sigma, cond):
        sigma = sigma.view(-1, 1, 1, 1).to(x)
        return x * self.std**2 / (self.std**2 + sigma**2)


def test_heun_sampler_solves_the_probability_flow_ode():
    """For Gaussian data the ODE's solution is x(0) = x(σ_max) · s / √(s² + σ_max²)
    (Karras et al. 2022, eq. 1 with the ideal denoiser). Heun's method is second order:
    its error falls as 1/N² with the number of steps N (≈ 5 %, 0.9 %, 0.13 % at 18, 40,
    100 steps of eq. 5)."""
    std = 0.7
    lr = torch.zeros(64, 1, 4, 4)
    z = torch.randn((128, 1, 8, 8), generator=torch.Generator().manual_seed(3))
    exact = z * 80.0 * std / math.sqrt(std**2 + 80.0**2)
    errors = {}
    for steps in (18, 40, 100):
        model = build_model("diffusion", 4, 1, 2, residual="none", sampler_steps=steps)
        model.denoiser = ExactGaussianDenoiser(std)
        samples = model.sample(lr, 2, generator=torch.Generator().manual_seed(3))
        errors[steps] = float(((samples.reshape(exact.shape) - exact).norm() / exact.norm()))
    assert errors[100] < 2e-3
    assert errors[40] < errors[18] / 4 and errors[100] < errors[40] / 4  # ≈ (N'/N)²
    # the stochastic sampler (Algorithm 2) keeps the distribution: std within 3 %
    model = build_model("diffusion", 4, 1, 2, residual="none", sampler="stochastic",
                        sampler_steps=100)
    model.denoiser = ExactGaussianDenoiser(std)
    draws = model.sample(lr, 8, generator=torch.Generator().manual_seed(4))
    assert float(draws.std()) == pytest.approx(std, rel=0.03)


@pytest.mark.parametrize("sampler", ["heun", "stochastic"])
def test_sampler_is_deterministic_under_a_seed(sampler):
    torch.manual_seed(0)
    model = build_model("diffusion", 4, 1, 2, sampler=sampler, sampler_steps=3)
    lr = torch.randn(2, 1, 8, 8)
    first = model.sample(lr, 3, generator=torch.Generator().manual_seed(7))
    second = model.sample(lr, 3, generator=torch.Generator().manual_seed(7))
    other = model.sample(lr, 3, generator=torch.Generator().manual_seed(8))
    assert first.shape == (2, 3, 1, 16, 16)
    assert torch.equal(first, second)
    assert (first - other).abs().max() > 0
    assert (first[:, 0] - first[:, 1]).abs().max() > 0  # members are independent draws


def test_diffusion_bad_options():
    with pytest.raises(ScalelabError, match="unknown sampler 'euler'; valid choices are heun"):
        build_model("diffusion", 4, 1, 2, sampler="euler")
    with pytest.raises(ScalelabError, match="sampler_steps must be a positive integer"):
        build_model("diffusion", 4, 1, 2, sampler_steps=0)


# -- learning ---------------------------------------------------------------------------------
def _fixed_batch_loss(model, objective, steps=10, lr=1e-2):
    torch.manual_seed(0)
    lr_b = torch.randn(8, 1, 8, 8)
    hr_b = torch.nn.functional.interpolate(lr_b, scale_factor=2, mode="nearest") + \
        0.3 * torch.randn(8, 1, 16, 16)

    @torch.no_grad()
    def loss():
        torch.manual_seed(1)  # the same σ and noise draws before and after training
        return objective(model, lr_b, hr_b)

    before = float(loss())
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        opt.zero_grad()
        objective(model, lr_b, hr_b).backward()
        opt.step()
    return before, float(loss())


def test_swinir_training_lowers_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model("swinir", 8, 1, 2, window=4)
    before, after = _fixed_batch_loss(
        model, lambda m, x, y: torch.nn.functional.mse_loss(m(x), y))
    assert after < 0.5 * before


@pytest.mark.parametrize("residual", ["bilinear", "regression"])
def test_diffusion_training_lowers_the_loss_on_a_fixed_batch(residual):
    torch.manual_seed(0)
    model = build_model("diffusion", 8, 1, 2, residual=residual)
    before, after = _fixed_batch_loss(model, lambda m, x, y: m.training_loss(x, y))
    assert after < 0.95 * before  # the same σ and noise draws: ≈ 8 % lower after 10 steps


# -- in the training loop ---------------------------------------------------------------------
def _tiny(family, **changes):
    from scalelab.config import RunConfig

    base = dict(family=family, width=8, depth=1, scale=2, field="precip", field_size=16,
                samples=32, val_samples=8, batch_size=8, steps=4, eval_every=2, lr=3e-3,
                seed=1, device="cpu")
    return RunConfig(**{**base, **changes})


def test_diffusion_run_reports_skill_and_calibration():
    from scalelab.train import train

    cfg = _tiny("diffusion", ensemble_members=3, options={"sampler_steps": 3})
    result = train(cfg)
    assert result.status == "finished"
    info, last = result.info, result.rows[-1]
    # the training forward is one denoiser evaluation; a sample costs 2N − 1 of them
    assert info["sample_flops"] == 5 * info["flops_per_sample"]
    assert last["flops"] == 3 * info["flops_per_sample"] * last["samples_seen"]
    for key in ("val_crps", "val_spread_skill", "val_rank_delta", "val_exceed_ece", "val_mse"):
        assert math.isfinite(last[key])
    assert sum(last["val_rank_hist"]) == 8 * 16 * 16 and len(last["val_rank_hist"]) == 4
    assert train(cfg).rows[-1]["val_crps"] == last["val_crps"]  # seeded: the same curve


@pytest.mark.parametrize("family,options", [("swinir", {"window": 4}),
                                            ("diffusion", {"sampler_steps": 2})])
def test_bf16_and_channels_last_switches_run_on_cpu(family, options):
    from dataclasses import replace

    from scalelab.train import train

    cfg = _tiny(family, options=options)
    plain = train(cfg)
    for switch in ({"channels_last": True}, {"amp": "bf16"}):
        other = train(replace(cfg, **switch))
        assert other.status == "finished"
        assert other.rows[-1]["val_mse"] == pytest.approx(plain.rows[-1]["val_mse"], rel=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("family,options", [("swinir", {"window": 4}),
                                            ("diffusion", {"sampler_steps": 2})])
def test_compiled_new_families_give_the_eager_curve(family, options):
    from dataclasses import replace

    from scalelab.train import train

    cfg = _tiny(family, options=options)
    eager, compiled = train(cfg), train(replace(cfg, compile=True))
    assert compiled.status == "finished"
    assert compiled.rows[-1]["val_mse"] == pytest.approx(eager.rows[-1]["val_mse"], rel=1e-3)


def test_family_options_are_checked_with_the_spec():
    from scalelab._errors import SpecError

    with pytest.raises(SpecError, match="unknown diffusion option sampler='ddim'"):
        _tiny("diffusion", options={"sampler": "ddim"}).validate()
    with pytest.raises(SpecError, match="swinir width 8 is not divisible by heads=3"):
        _tiny("swinir", options={"heads": 3}).validate()
    _tiny("edsr", options={"heads": 3}).validate()  # another family's option: not read


@pytest.mark.parametrize("family", ["swinir", "diffusion"])
def test_new_families_take_predictor_channels(family):
    """Real gridded data brings predictors and static fields as extra input channels: the
    target's LR first, then the rest; the output keeps the target's channels."""
    from scalelab.models import build_model

    torch.manual_seed(0)
    options = {"sampler_steps": 2} if family == "diffusion" else {}
    model = build_model(family, 8, 1, 4, channels=1, in_channels=3, **options)
    lr, hr = torch.randn(2, 3, 8, 8), torch.randn(2, 1, 32, 32)
    assert model(lr).shape == (2, 1, 32, 32)
    if family == "diffusion":
        assert torch.isfinite(model.training_loss(lr, hr))
        assert model.sample(lr, 3).shape == (2, 3, 1, 32, 32)
        # the predictors reach the denoiser: changing them changes the sample
        a = model.sample(lr, 1, torch.Generator().manual_seed(1))
        lr2 = lr.clone()
        lr2[:, 1:] += 1.0
        b = model.sample(lr2, 1, torch.Generator().manual_seed(1))
        assert not torch.allclose(a, b)
