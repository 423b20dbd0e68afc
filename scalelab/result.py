"""RunResult: what one training run hands back, to its caller or to a sweep's driver.

``scalelab.train.train`` returns it; the sweep's executors carry it from a worker
process (or a Ray task) back to the driver, which writes it to the run store, and
build one themselves for a run that failed. It lives apart from both, and imports
neither torch nor the training code, so either side (and a driver without torch)
can import it.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

#: which value of a run's curve is its result for the laws: its last (``final``) or its
#: lowest (``best``, as early stopping keeps); the one list of these words
RESULTS = ("final", "best")


@dataclass
class RunResult:
    """One run's status, its curve rows and its facts.

    ``status``: ``"finished"``, ``"diverged"`` (a non-finite loss ended it; still a
    result) or ``"failed"`` (it raised; ``error`` holds the traceback). ``rows``:
    the curve rows, the last one the run's result. ``info``: facts of the run
    (params, flops_per_sample, device, versions, ...). ``host``: the machine that
    made the result.
    """

    run_id: str
    status: str
    rows: list[dict] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    error: str | None = None
    host: str = field(default_factory=platform.node)
