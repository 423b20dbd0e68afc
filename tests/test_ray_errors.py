"""Ray, when it is not there: no cluster for `address: auto`, a wrong address, or no `ray`
package is one sentence, raised before the store is opened; a Ray worker's checkpoints go
under the store's folder by absolute path, or nowhere on a node that does not see it."""

import socket
import sys

import pytest

from scalelab._errors import SpecError
from scalelab.sweep import parse_spec, run_sweep


def ray_spec(tmp_path, **section):
    return parse_spec({
        "name": "r", "method": "grid",
        "parameters": {"width": {"value": 4}, "depth": {"value": 1}, "field_size": {"value": 16},
                       "samples": {"value": 16}, "val_samples": {"value": 16},
                       "batch_size": {"value": 16}, "steps": {"value": 2},
                       "eval_every": {"value": 1}},
        "scalelab": {"executor": "ray", "store": str(tmp_path / "out" / "runs.db"), **section},
    })


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_missing_ray_package_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(SpecError, match=r"Ray is not installed; install it with: "
                                        r"pip install 'scalelab\[ray\]'\."):
        run_sweep(ray_spec(tmp_path), progress=False, tracking=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_wrong_address_is_one_sentence_before_any_work(tmp_path, scheme):
    pytest.importorskip("ray")
    address = f"{scheme}127.0.0.1:{closed_port()}"
    with pytest.raises(SpecError) as err:
        run_sweep(ray_spec(tmp_path, address=address), progress=False, tracking=False)
    message = str(err.value)
    assert message.startswith(f"scalelab.address {address!r}: no Ray cluster answers there")
    assert "ray start --head" in message and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_not_an_address_is_one_sentence(tmp_path):
    pytest.importorskip("ray")
    with pytest.raises(SpecError, match="'head-node' is not a Ray address"):
        run_sweep(ray_spec(tmp_path, address="head-node"), progress=False, tracking=False)


def test_auto_without_a_cluster_is_one_sentence(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    from ray._private.services import find_gcs_addresses

    if ray.is_initialized() or find_gcs_addresses():
        pytest.skip("a Ray cluster is running on this machine")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(SpecError) as err:
        run_sweep(ray_spec(tmp_path, address="auto"), progress=False, tracking=False)
    message = str(err.value)
    assert message.startswith("scalelab.address is 'auto' but no Ray cluster is running")
    assert "ray start --head" in message and "\n" not in message
    assert not ray.is_initialized()
    assert not (tmp_path / "out").exists()


def test_ray_checkpoints_are_absolute_and_only_where_the_store_is_seen(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    from scalelab.sweep.executors import RayExecutor, execute_run

    monkeypatch.chdir(tmp_path)
    executor = RayExecutor(checkpoint_root="out/checkpoints", cpus_per_run=2, gpus_per_run=0)
    assert executor.checkpoint_root == str(tmp_path / "out" / "checkpoints")
    assert (executor.cpus_per_run, executor.gpus_per_run) == (2, 0)

    # a worker on a node without the store's folder trains without checkpoints; its
    # result travels back whole
    cfg = ray_spec(tmp_path).runs[0]
    missing = tmp_path / "elsewhere" / "checkpoints" / cfg.run_id
    done = execute_run({**cfg.to_dict(), "checkpoint_every": 1}, str(missing), threads=1)
    assert done.status == "finished" and [r["step"] for r in done.rows] == [0, 1, 2]
    assert done.info["device"] == "cpu"
    assert not (tmp_path / "elsewhere").exists()
    # where the store's folder is seen, the checkpoint goes under it
    (tmp_path / "out").mkdir()
    seen = tmp_path / "out" / "checkpoints" / cfg.run_id
    execute_run({**cfg.to_dict(), "checkpoint_every": 1}, str(seen), threads=1)
    assert (seen / "last.pt").is_file()


def test_cpus_and_gpus_per_run_come_from_the_spec(tmp_path):
    spec = ray_spec(tmp_path, cpus_per_run=2, gpus_per_run=0.25)
    assert (spec.settings.cpus_per_run, spec.settings.gpus_per_run) == (2, 0.25)
    with pytest.raises(SpecError, match="gpus_per_run must be a number of GPUs >= 0"):
        ray_spec(tmp_path, gpus_per_run=-1)
