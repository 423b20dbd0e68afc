"""Checkpoints of a run: written atomically, loadable with ``weights_only=True``.

A checkpoint is one file, ``<checkpoint_dir>/last.pt``, holding everything a killed
run needs to end with the same curve it would have had: the step, the model and
optimiser state, the random-number-generator states (as uint8 tensors), the train
loss accumulated since the last curve row, and the curve rows so far (plain dicts of
numbers). It is written to a temporary file in the same folder, flushed to disk,
and renamed over the old one (``os.replace`` is atomic on POSIX and Windows), so a
kill at any moment leaves either the old or the new checkpoint, never half of one.

A trunk of data budgets (a config with ``cooldowns``; Hägele et al. 2024) also writes
``<checkpoint_dir>/branch-<step>.pt`` at each cooldown point: the same full state at
that step, which its branches start from and the trunk itself may resume from.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from scalelab._errors import ScalelabError

FILENAME = "last.pt"


def checkpoint_path(checkpoint_dir: str | os.PathLike, name: str = FILENAME) -> Path:
    return Path(checkpoint_dir) / name


def branch_filename(step: int) -> str:
    """The file a trunk writes at the cooldown point ``step`` for the branch starting there."""
    return f"branch-{int(step)}.pt"


def save_checkpoint(checkpoint_dir: str | os.PathLike, state: dict, name: str = FILENAME) -> Path:
    """Write ``state`` to ``<checkpoint_dir>/<name>`` atomically (temporary file, then rename)."""
    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    fd, tmp = tempfile.mkstemp(prefix=".last.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


# what a checkpoint of a running run holds; one without them cannot be resumed from
KEYS = ("run_id", "status", "step", "model", "optimizer", "rng", "running_sum",
        "running_count", "rows", "elapsed_s")


def load_checkpoint(checkpoint_dir: str | os.PathLike, run_id: str, name: str = FILENAME,
                    warnings: list | None = None) -> dict | None:
    """The checkpoint ``name`` in ``checkpoint_dir``, or None if there is none.

    Loaded with ``weights_only=True`` (no arbitrary code runs). A checkpoint written
    by another run (a different ``run_id``) is refused with one sentence. One that
    cannot be read (truncated, overwritten, from an incompatible torch) is moved aside
    to ``<name>.unreadable`` and None is returned, so the run starts over instead of
    failing on every attempt; the sentence saying so is appended to ``warnings`` (the
    run's info, hence the store, records it) and issued as a ``RuntimeWarning``.
    """
    path = checkpoint_path(checkpoint_dir, name)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise TypeError(f"it holds a {type(state).__name__}, not a checkpoint")
        if state.get("run_id") == run_id and state.get("status") == "running":
            missing = [k for k in KEYS if k not in state]
            if missing:
                raise KeyError(f"it lacks {', '.join(missing)}")
        elif state.get("run_id") == run_id and not {"rows", "info"} <= set(state):
            raise KeyError("it lacks rows or info")
    except Exception as err:  # noqa: BLE001 - any unreadable file: start over, say why
        aside = path.with_name(path.name + ".unreadable")
        os.replace(path, aside)
        reason = (str(err).strip().splitlines() or ["no message"])[0].split(". ")[0][:160]
        message = (f"checkpoint {path} could not be read ({type(err).__name__}: {reason}); it "
                   f"was moved to {aside.name} and the run started over without it (from an "
                   f"earlier checkpoint if there is one, else from step 0).")
        import warnings as _warnings

        _warnings.warn(message, RuntimeWarning, stacklevel=2)
        if warnings is not None:
            warnings.append(message)
        return None
    if state.get("run_id") != run_id:
        raise ScalelabError(
            f"checkpoint {path} belongs to run {state.get('run_id')!r}, not {run_id!r}; "
            "give each run its own checkpoint folder."
        )
    return state


def rng_state(device: torch.device) -> dict:
    """Global RNG states as tensors (CPU, and CUDA when the run is on a GPU)."""
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)
