"""Learned rescaling (irn): the inverse of the forward map is the identity, the Haar split
and the parameter count by hand, HCD's collaborative LR against its closed form, the
metrics a run records, the spec checks and the report page."""

import pytest
import torch

from scalelab._errors import SpecError
from scalelab.models import build_model, count_params
from scalelab.models.irn import haar_merge, haar_split


def _randomised(model, std=0.1, seed=0):
    """The model with every weight drawn (its couplings start as the identity otherwise)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * std)
    return model


@pytest.mark.parametrize("scale,width,depth", [(2, 4, 1), (4, 8, 2), (8, 6, 3), (4, 16, 1)])
def test_inverse_of_forward_is_identity(scale, width, depth):
    x64 = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(1),
                      dtype=torch.float64)
    model = _randomised(build_model("irn", width, depth, scale).double())
    lr, z = model.downscale(x64)
    assert lr.shape == (3, 1, 32 // scale, 32 // scale)
    assert z.shape == (3, scale ** 2 - 1, 32 // scale, 32 // scale)
    assert (model.upscale(lr, z) - x64).abs().max() < 1e-10
    assert (model.downscale(model.upscale(lr, z))[0] - lr).abs().max() < 1e-10
    model32 = model.float()
    lr32, z32 = model32.downscale(x64.float())
    assert (model32.upscale(lr32, z32) - x64.float()).abs().max() < 1e-5


def test_multichannel_inverse_and_haar_against_block_mean():
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    y = haar_split(x)
    # the low-pass channels are the 2×2 block means; the transform is H/4 with H·Hᵀ = 4I
    assert torch.allclose(y[:, :3], torch.nn.functional.avg_pool2d(x, 2), atol=1e-14)
    assert torch.allclose((x ** 2).sum(), 4 * (y ** 2).sum(), rtol=1e-12)
    # the horizontal detail of a field that varies along the width only, by hand
    ramp = torch.arange(16, dtype=torch.float64).repeat(16, 1)[None, None]
    assert torch.allclose(haar_split(ramp)[:, 1], torch.full((1, 8, 8), -0.5,
                                                             dtype=torch.float64))
    assert torch.equal(haar_merge(y), x) or (haar_merge(y) - x).abs().max() < 1e-14
    model = _randomised(build_model("irn", 4, 2, 4, channels=3).double())
    lr, z = model.downscale(x)
    assert z.shape == (2, 45, 4, 4) and (model.upscale(lr, z) - x).abs().max() < 1e-10


def test_untrained_lr_is_the_block_mean():
    x = torch.randn(4, 1, 32, 32)
    lr, _ = build_model("irn", 8, 2, 8).downscale(x)
    assert torch.allclose(lr, torch.nn.functional.avg_pool2d(x, 8), atol=1e-6)


def _subnet(c_in, c_out, w):  # 3×3 convs c_in→w→w→c_out, with biases
    return 9 * c_in * w + w + 9 * w * w + w + 9 * w * c_out + c_out


@pytest.mark.parametrize("scale,width,depth,channels", [(2, 8, 1, 1), (4, 8, 2, 1),
                                                        (4, 5, 3, 3), (8, 4, 1, 1)])
def test_param_count_by_hand(scale, width, depth, channels):
    total, c = 0, channels
    stage_channels = channels
    while stage_channels < channels * scale ** 2:
        stage_channels *= 4
        rest = stage_channels - c
        total += depth * (_subnet(rest, c, width) + 2 * _subnet(c, rest, width))
    assert count_params(build_model("irn", width, depth, scale, channels=channels)) == total
    from scalelab.models.names import params_lower_bound

    assert params_lower_bound("irn", width, depth) <= total


def test_collaborative_lr_follows_its_closed_form():
    """Untrained (identity couplings), upscale(y, z) spreads y over its block and adds Haar
    details of z, which sum to 0 over the block; so ½‖upscale(y, z) − x‖²/s² has gradient
    y − blockmean(x), and k steps of size η from y₀ give y* + (1 − η)^k (y₀ − y*)."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64, generator=gen)
    model = build_model("irn", 4, 1, 4, collaborative_lr=0.3).double()
    target = torch.nn.functional.avg_pool2d(x, 4)
    y0 = torch.zeros_like(target)
    z = torch.randn(2, 15, 4, 4, dtype=torch.float64, generator=gen)
    for k in (1, 3):
        y = model.collaborate(y0, z, x, steps=k)
        assert torch.allclose(y, target * (1 - 0.7 ** k), rtol=0, atol=1e-12)


def test_ensemble_members_and_temperature():
    lr = torch.randn(3, 1, 8, 8)
    model = _randomised(build_model("irn", 4, 1, 2), std=0.05)
    g1, g2 = (torch.Generator().manual_seed(3) for _ in range(2))
    ens = model.sample(lr, 4, generator=g1)
    assert ens.shape == (3, 4, 1, 16, 16) and (ens[:, 0] - ens[:, 1]).abs().max() > 0
    assert torch.equal(ens, model.sample(lr, 4, generator=g2))
    mode = build_model("irn", 4, 1, 2, temperature=0.0)
    mode.load_state_dict(model.state_dict())
    members = mode.sample(lr, 2)
    assert torch.equal(members[:, 0], members[:, 1])  # τ = 0: the prior's mode


@pytest.mark.slow
def test_run_records_rescaling_metrics_and_ensemble_scores():
    from scalelab.config import RunConfig
    from scalelab.train import train

    cfg = RunConfig(family="irn", width=4, depth=1, scale=4, field="precip", field_size=16,
                    samples=32, val_samples=8, batch_size=8, steps=6, eval_every=3,
                    ensemble_members=2, loss_variant="crps_fair", device="cpu",
                    options={"distribution": "moments", "collaborative_steps": 1})
    result = train(cfg)
    assert result.status == "finished"
    first, last = result.rows[0], result.rows[-1]
    for row in result.rows:
        assert row["val_lr_rmse"] >= 0 and row["val_recon_rmse"] > 0 and row["val_crps"] > 0
    assert first["val_lr_rmse"] < 1e-5  # untrained: its LR is the block mean, the run's LR
    assert last["val_lr_rmse"] > 0  # trained: the couplings have moved its LR


def test_spec_checks():
    from scalelab.config import RunConfig
    from scalelab.sweep.guards import check_metric

    with pytest.raises(SpecError, match="power of 2"):
        RunConfig(family="irn", scale=3, field_size=24).validate()
    with pytest.raises(SpecError, match="distribution"):
        RunConfig(family="irn", options={"distribution": "kl"}).validate()
    with pytest.raises(SpecError, match="collaborative_steps"):
        RunConfig(family="irn", options={"collaborative_steps": -1}).validate()
    irn = RunConfig(family="irn").validate()
    check_metric({"name": "val_recon_rmse"}, [irn], "spec")
    with pytest.raises(SpecError, match="recorded by no run"):
        check_metric({"name": "val_lr_rmse"}, [RunConfig().validate()], "spec")


def _table(with_rescaling: bool):
    import pandas as pd

    rows = []
    for i, params in enumerate([1e3, 3e3, 1e4, 3e4]):
        row = {"run_id": f"r{i}", "family": "irn", "width": 4 * (i + 1), "samples": 256,
               "params": params, "status": "finished", "step": 100, "samples_seen": 3200,
               "flops": 1e6 * params, "loss_variant": "mse", "options": "{}",
               "val_loss": 0.2 + params ** -0.3, "val_rmse": 0.3 + params ** -0.3,
               "val_bicubic_rmse": 0.4}
        if with_rescaling:
            row.update(val_lr_rmse=0.01 + 2 * params ** -0.5,
                       val_recon_rmse=0.05 + 3 * params ** -0.4)
        rows.append(row)
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_report_page_only_with_rescaling_columns(tmp_path):
    from scalelab.report import write_report
    from scalelab.report.rescaling import rescaling_scaling
    from scalelab.report.context import ReportContext

    fits = rescaling_scaling(ReportContext.build(_table(True)))
    law = fits["val_lr_rmse"].fits["U = 256"]
    assert law.params_["alpha"] == pytest.approx(0.5, rel=0.05)  # the law of the table's values
    write_report(_table(True), tmp_path / "a" / "r.pdf", n_bootstrap=20)
    assert (tmp_path / "a" / "r_rescaling.png").exists()
    write_report(_table(False), tmp_path / "b" / "r.pdf", n_bootstrap=20)
    assert not list((tmp_path / "b").glob("*rescaling*"))
