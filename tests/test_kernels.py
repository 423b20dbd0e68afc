"""Learned adaptive kernels (ADK-Net) as a degradation: the kernel application against a
convolution, the untrained block mean, held-out fidelity against bicubic and the block mean,
the kernels file, the spec checks, and downscale_consistency coarsening by the run's
operator."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from scalelab._errors import ScalelabError, SpecError
from scalelab.data.degrade import block_mean, degrade, gaussian
from scalelab.data.kernels import KernelNet, fit_kernels, load_kernels, save_kernels


def test_untrained_kernels_are_the_block_mean():
    hr = torch.randn(3, 2, 16, 16, dtype=torch.float64)
    net = KernelNet(scale=4, kernel_size=8).double()
    assert torch.allclose(net(hr), block_mean(hr, 4), atol=1e-12)


def test_a_fixed_kernel_is_a_strided_convolution():
    """With the last layer's weights at 0 the network predicts one kernel everywhere: the
    block mean plus its bias less the bias's mean. The LR is then the reflect-padded
    convolution with it at stride s."""
    scale, k = 2, 4
    net = KernelNet(scale=scale, kernel_size=k).double()
    bias = 0.1 * torch.randn(k * k, dtype=torch.float64)
    with torch.no_grad():
        net.net[-1].bias.copy_(bias)
    box = torch.zeros(k, k, dtype=torch.float64)
    box[1:3, 1:3] = 0.25
    kernel = (box + (bias - bias.mean()).reshape(k, k)).reshape(1, 1, k, k)
    assert float(kernel.sum()) == pytest.approx(1.0)
    hr = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    flat = F.pad(hr.reshape(-1, 1, 12, 12), (1, 1, 1, 1), mode="reflect")
    expected = F.conv2d(flat, kernel, stride=scale).reshape(2, 3, 6, 6)
    assert torch.allclose(net(hr), expected, atol=1e-12)


def test_bad_kernel_size():
    with pytest.raises(ScalelabError, match="differ from it by an even number"):
        KernelNet(scale=4, kernel_size=5)


@pytest.fixture(scope="module")
def fitted_file(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network: threads only contend
    try:
        fitted = fit_kernels("precip", scale=2, target="gaussian", options={"blur_sigma": 1.2},
                             field_size=16, samples=128, test_samples=48, steps=150, width=6)
    finally:
        torch.set_num_threads(threads)
    path = save_kernels(fitted, tmp_path_factory.mktemp("kernels") / "k.pt")
    return fitted, path


@pytest.mark.slow
def test_learned_kernels_beat_bicubic_and_block_mean_on_held_out_fields(fitted_file):
    fitted, path = fitted_file
    f = fitted.fidelity
    assert f["learned_kernel"] < 0.5 * f["bicubic"] and f["learned_kernel"] < 0.5 * f["block_mean"]
    # the scores again, from the file, on test fields of another seed
    from scalelab.data.pairs import make_test_pairs

    lr, hr = make_test_pairs("precip", 32, 16, 2, "gaussian", data_seed=5,
                             options={"blur_sigma": 1.2})
    learned = degrade(hr, 2, "learned_kernel", kernel_path=str(path))

    def rmse(a):
        return float(((a - lr) ** 2).mean().sqrt())

    assert rmse(learned) < rmse(degrade(hr, 2, "bicubic")) and rmse(learned) < rmse(
        block_mean(hr, 2))


@pytest.mark.slow
def test_kernels_file_record_and_spec_checks(fitted_file, tmp_path):
    from scalelab.config import RunConfig
    from scalelab.data.kernel_files import read_record

    fitted, path = fitted_file
    record = read_record(path)  # without torch
    assert record["settings"]["scale"] == 2 and record["fidelity"] == fitted.fidelity
    state = torch.load(path, weights_only=True)["state_dict"]
    assert torch.equal(state["net.0.weight"], fitted.network.state_dict()["net.0.weight"])
    hr = torch.randn(2, 1, 16, 16)
    assert torch.allclose(load_kernels(path)(hr), fitted.network(hr), atol=1e-6)

    ok = dict(degradation="learned_kernel", scale=2, field_size=16,
              options={"kernel_path": str(path)})
    RunConfig(**ok).validate()
    with pytest.raises(SpecError, match="needs options.kernel_path"):
        RunConfig(degradation="learned_kernel", scale=2, field_size=16).validate()
    with pytest.raises(SpecError, match="fitted for scale 2, not the run's 4"):
        RunConfig(**{**ok, "scale": 4}).validate()
    with pytest.raises(SpecError, match="no such kernels file"):
        RunConfig(**{**ok, "options": {"kernel_path": str(tmp_path / "none.pt")}}).validate()
    other = tmp_path / "other.pt"
    torch.save({"w": torch.ones(2)}, other)
    with pytest.raises(SpecError, match="not a kernels file"):
        RunConfig(**{**ok, "options": {"kernel_path": str(other)}}).validate()


def test_downscale_consistency_coarsens_by_the_runs_operator(tmp_path):
    """The term is 0 exactly when the LR is the run's operator of the prediction: the
    gaussian of the run's σ (not the default scale/2), or the run's learned kernels."""
    from scalelab.config import RunConfig
    from scalelab.train.loop import make_loss

    pred = torch.randn(2, 1, 16, 16)
    target = pred + 0.1
    base = RunConfig(scale=2, field_size=16, degradation="gaussian",
                     loss_variant="downscale_consistency(weight=1)",  # mse + consistency
                     options={"blur_sigma": 0.6})
    loss = make_loss(base.validate())
    pixel = F.mse_loss(pred, target)
    assert float(loss(pred, target, gaussian(pred, 2, 0.6))) == pytest.approx(float(pixel),
                                                                             abs=1e-9)
    assert float(loss(pred, target, gaussian(pred, 2, None))) > float(pixel) + 1e-4

    net = KernelNet(scale=2, kernel_size=4)
    with torch.no_grad():
        net.net[-1].weight.normal_(0, 0.5)  # kernels that vary with the field
    fitted = _fitted(net)
    path = save_kernels(fitted, tmp_path / "k.pt")
    cfg = dataclasses.replace(base, degradation="learned_kernel",
                              options={"kernel_path": str(path)})
    loss = make_loss(cfg.validate())
    with torch.no_grad():
        lr = net(pred)
    assert float(loss(pred, target, lr)) == pytest.approx(float(pixel), abs=1e-9)
    assert float(loss(pred, target, block_mean(pred, 2))) > float(pixel) + 1e-6


def _fitted(net):
    from scalelab.data.kernels import FittedKernels

    settings = {"scale": net.scale, "kernel_size": net.kernel_size, "width": net.width,
                "depth": net.depth, "target": "gaussian"}
    return FittedKernels(net, settings, {})


@pytest.mark.slow
def test_kernels_page_only_for_learned_kernel_runs(fitted_file):
    import pandas as pd

    from scalelab.report.context import ReportContext
    from scalelab.report.kernels import kernel_files, page_kernels

    _, path = fitted_file
    rows = [{"run_id": f"r{w}", "family": "edsr", "width": w, "params": 100 * w * w,
             "samples": 256, "status": "finished", "step": 10, "loss_variant": "mse",
             "degradation": degradation, "options": {"kernel_path": str(path)},
             "val_loss": 1.0 / w, "val_rmse": 1.0 / w}
            for w in (4, 8, 16) for degradation in ("block_mean", "learned_kernel")]
    table = pd.DataFrame(rows)
    files = kernel_files(table)
    assert list(files) == [str(path)] and files[str(path)]["settings"]["scale"] == 2
    pages = page_kernels(ReportContext.build(table), None)
    assert [name for name, _ in pages] == ["kernels"]
    plain = table[table["degradation"] == "block_mean"]
    assert page_kernels(ReportContext.build(plain), None) == []
