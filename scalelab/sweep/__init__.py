"""Sweeps: specs and their expansion, executors, the run store, W&B tracking.

Knows nothing of how a run trains: it hands RunConfigs to an executor, which calls
``scalelab.train`` in a worker, and writes what comes back to the store.
"""

from scalelab.sweep.spec import SweepSpec, load_spec, parse_spec
from scalelab.sweep.store import RunStore, load_runs

__all__ = ["SweepSpec", "load_spec", "parse_spec", "RunStore", "load_runs", "run_sweep",
           "plan_sweep"]


def run_sweep(spec, progress: bool = True, tracking: bool = True, retry_failed: bool = False,
              executor=None):
    from scalelab.sweep.runner import run_sweep as _run

    return _run(spec, progress=progress, tracking=tracking, retry_failed=retry_failed,
                executor=executor)


def plan_sweep(spec):
    from scalelab.sweep.plan import plan_sweep as _plan

    return _plan(spec)
