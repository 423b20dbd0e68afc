"""Sweeps: specs and their expansion, executors, the run store's writer.

Knows nothing of how a run trains: it hands RunConfigs to an executor, which calls
``scalelab.train`` in a worker, writes what comes back to the store and tracks it in
W&B (:mod:`scalelab.runs.tracking`). Reading runs back is :mod:`scalelab.runs`'s job.
"""

from scalelab.sweep.spec import SweepSpec, load_spec, parse_spec
from scalelab.sweep.store import RunStore

__all__ = ["SweepSpec", "load_spec", "parse_spec", "RunStore", "run_sweep",
           "plan_sweep"]


def run_sweep(spec, progress: bool = True, tracking: bool = True, retry_failed: bool = False,
              executor=None, wandb_ids=None):
    from scalelab.sweep.runner import run_sweep as _run

    return _run(spec, progress=progress, tracking=tracking, retry_failed=retry_failed,
                executor=executor, wandb_ids=wandb_ids)


def plan_sweep(spec):
    from scalelab.sweep.plan import plan_sweep as _plan

    return _plan(spec)
