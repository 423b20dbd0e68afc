"""Shared test settings: W&B never talks to a server, matplotlib draws off-screen."""

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.pop("WANDB_API_KEY", None)


import pytest  # noqa: E402


def _cuda_available() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - no torch: no CUDA
        return False


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` are skipped on a machine without CUDA."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_tests and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (run benchmarks/gpu_check.sh on one)")
        for item in gpu_tests:
            item.add_marker(skip)

# A real small sweep shared by the report and notebook tests: 5 widths × 4 data sizes ×
# 2 loss variants of a stochastic EDSR (4-member ensembles) on 16×16 precipitation fields.
TINY_SPEC = {
    "name": "tiny",
    "method": "grid",
    "metric": {"name": "val_mse", "goal": "minimize"},
    "parameters": {
        "family": {"value": "edsr"},
        "width": {"values": [4, 6, 8, 12, 16]},
        "samples": {"values": [64, 128, 256, 512]},
        "loss_variant": {"values": ["mse", "crps_fair"]},
        "ensemble_members": {"value": 4},
        "field": {"value": "precip"},
        "field_size": {"value": 16},
        "val_samples": {"value": 64},
        "steps": {"value": 60},
        "eval_every": {"value": 20},
        "lr": {"value": 3e-3},
    },
    "scalelab": {"workers": 2, "targets": ["params=2e4", "compute=1e11"]},
}


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory):
    """The store of the tiny sweep, run once per test session."""
    from scalelab.sweep import parse_spec, run_sweep

    store = tmp_path_factory.mktemp("tiny") / "runs.db"
    spec = parse_spec({**TINY_SPEC, "scalelab": {**TINY_SPEC["scalelab"], "store": str(store)}})
    outcome = run_sweep(spec, progress=False, tracking=False)
    assert outcome.counts.get("finished") == 40, outcome.counts
    return store


@pytest.fixture
def example_data_cwd(tmp_path, monkeypatch):
    """A working folder holding data/era5_like.nc (what `scalelab example-data era5-like
    data` writes, coarser), so that sweeps/gridded.yaml's relative path resolves."""
    from scalelab.data.era5like import write_era5_like

    write_era5_like(tmp_path / "data", resolution=5.0)
    monkeypatch.chdir(tmp_path)
    return tmp_path
