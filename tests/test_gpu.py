"""On a CUDA GPU (marked ``gpu``; skipped without CUDA, run by benchmarks/gpu_check.sh): a run
trains on the GPU with each speed switch and gives the CPU's curve within float tolerance,
the local executor packs runs on the GPU and reports the device in the store, and the
ensemble CRPS's torch backend on CUDA agrees with its numpy path and with properscoring."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.gpu

SMALL = dict(width=8, depth=1, field_size=32, samples=256, val_samples=64, batch_size=32,
             steps=40, eval_every=20, lr=2e-3)


def test_a_run_on_cuda_matches_the_cpu_curve():
    from scalelab.config import RunConfig
    from scalelab.train import train

    cpu = train(RunConfig(**SMALL, device="cpu"))
    gpu = train(RunConfig(**SMALL, device="cuda"))
    assert gpu.status == "finished" and gpu.info["device"].startswith("cuda")
    assert gpu.info["peak_memory_bytes"] > 0
    # same seeds, same data; float32 convolutions differ in summation order only
    np.testing.assert_allclose([r["val_loss"] for r in gpu.rows],
                               [r["val_loss"] for r in cpu.rows], rtol=0.05)


@pytest.mark.parametrize("switches", [{"amp": "bf16"}, {"channels_last": True},
                                      {"amp": "bf16", "channels_last": True, "compile": True}])
def test_speed_switches_train_on_cuda(switches):
    from scalelab.config import RunConfig
    from scalelab.train import train

    result = train(RunConfig(**SMALL, device="cuda", **switches))
    assert result.status == "finished"
    losses = [r["val_loss"] for r in result.rows]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_local_executor_packs_runs_on_the_gpu(tmp_path):
    import scalelab
    from scalelab.sweep import parse_spec, run_sweep

    store = tmp_path / "runs.db"
    spec = parse_spec({
        "name": "gpu", "method": "grid",
        "parameters": {**{k: {"value": v} for k, v in SMALL.items()},
                       "seed": {"values": [0, 1, 2, 3]}},
        "scalelab": {"store": str(store), "devices": [0], "runs_per_gpu": 4},
    })
    outcome = run_sweep(spec, progress=False, tracking=False)
    assert outcome.counts == {"finished": 4}
    runs = scalelab.load_runs(store).drop_duplicates("run_id")
    assert set(runs["device"]) == {"cuda:0"}


def test_crps_torch_on_cuda_agrees_with_numpy_and_properscoring():
    properscoring = pytest.importorskip("properscoring")
    from scalelab.calibration import crps_ensemble

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(64, 32))
    ens = obs[None] + rng.normal(size=(16, 64, 32))
    on_gpu = crps_ensemble(torch.as_tensor(obs, device="cuda"),
                           torch.as_tensor(ens, device="cuda"), axis=0, estimator="nrg")
    assert on_gpu.device.type == "cuda"
    np.testing.assert_allclose(on_gpu.cpu().numpy(),
                               crps_ensemble(obs, ens, axis=0, estimator="nrg"), rtol=1e-10)
    np.testing.assert_allclose(on_gpu.cpu().numpy(),
                               properscoring.crps_ensemble(obs, np.moveaxis(ens, 0, -1)),
                               rtol=1e-10)

