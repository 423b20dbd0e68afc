"""The Ray executor on a real local Ray cluster: a small sweep runs as Ray tasks and its
results flow back to the driver, which alone writes the store."""

from collections import deque

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import scalelab  # noqa: E402
from scalelab.sweep import parse_spec, run_sweep  # noqa: E402
from scalelab.sweep.executors import RayExecutor, execute_run  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_small_sweep_runs_on_a_real_ray_cluster(tmp_path, cluster):
    store = tmp_path / "runs.db"
    spec = parse_spec({
        "name": "on-ray", "method": "grid",
        "parameters": {"width": {"values": [4, 6, 8]}, "depth": {"value": 1},
                       "field_size": {"value": 16}, "samples": {"value": 64},
                       "val_samples": {"value": 16}, "batch_size": {"value": 16},
                       "steps": {"value": 10}, "eval_every": {"value": 5}},
        "scalelab": {"executor": "ray", "store": str(store)},
    })
    outcome = run_sweep(spec, progress=False, tracking=False)
    assert outcome.counts == {"finished": 3}
    assert cluster.is_initialized()  # a cluster it did not start is left running

    table = scalelab.load_runs(store)
    assert sorted(table["width"].unique()) == [4, 6, 8]
    assert table.groupby("run_id")["step"].apply(list).tolist() == [[0, 5, 10]] * 3
    runs = table.drop_duplicates("run_id")
    assert (runs["attempts"] == 1).all()
    assert set(runs["device"]) == {"cpu"}  # as the worker reported it

    # the curve that came back through Ray is the curve the same run gives in-process
    # (training is seeded and deterministic on the CPU)
    first = spec.runs[0]
    local = execute_run(first.to_dict(), threads=1, device="cpu")
    got = table[table["run_id"] == first.run_id].sort_values("step")
    np.testing.assert_allclose(got["val_loss"], [r["val_loss"] for r in local.rows], rtol=1e-5)

    # started again: nothing runs twice
    again = run_sweep(spec, progress=False, tracking=False)
    assert again.skipped == 3 and again.counts == {}

    # while a run trains, its rows come back one by one over the Ray queue, before its result
    events = []
    executor = RayExecutor()
    done = [(cfg.run_id, result.status, len(events)) for cfg, result in executor.run(
        deque(spec.runs[:1]), on_event=lambda cfg, kind, row: events.append(
            (cfg.run_id, kind, row["step"])))]
    assert events == [(first.run_id, "row", step) for step in (0, 5, 10)]
    assert done == [(first.run_id, "finished", 3)]
