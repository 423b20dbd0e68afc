"""One training run from a RunConfig (``train``); knows nothing of executors or stores."""

from scalelab.train.loop import RunResult, evaluate, lr_at, resolve_device, train

__all__ = ["RunResult", "train", "evaluate", "lr_at", "resolve_device"]
