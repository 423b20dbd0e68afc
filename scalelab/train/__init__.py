"""One training run from a RunConfig (``train``); knows nothing of executors or stores.

``train(cfg, on_row=None, checkpoint_dir=None)`` runs it (resuming from a checkpoint
when ``checkpoint_dir`` holds one); ``scalelab.train.metrics`` holds the validation
metrics; ``scalelab.train.checkpoint`` the atomic checkpoint files.
"""

from scalelab.result import RunResult
from scalelab.train.loop import evaluate, lr_at, resolve_device, train

__all__ = ["RunResult", "train", "evaluate", "lr_at", "resolve_device"]
