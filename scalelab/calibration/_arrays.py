"""Array handling shared by the calibration metrics, without importing torch.

Inputs may be numpy arrays, lists, or torch tensors on any device. A tensor is
recognised by duck-typing (its class lives in the ``torch`` package, which must then
already be imported), so ``import scalelab.calibration`` never pulls torch in.
Metrics that have a torch path keep tensors on their device; the others convert
to numpy (``.detach().cpu()``), which is correct everywhere and fast enough for the
O(n) metrics.
"""

from __future__ import annotations

import numbers
import sys

import numpy as np

from scalelab._errors import InputTypeError, ScalelabError, check_choice  # noqa: F401 - check_choice: for the metrics


def is_torch(values) -> bool:
    """True when ``values`` is a torch tensor (checked without importing torch)."""
    return "torch" in sys.modules and type(values).__module__.split(".")[0] == "torch"


def as_numpy(values, dtype=None, name: str = "the input", func: str = "scalelab"
             ) -> np.ndarray:
    """A numpy array from a numpy array, list or torch tensor (any device); a bfloat16
    tensor, which numpy cannot hold, becomes float32. A ragged list (rows of different
    lengths) is refused in one sentence naming ``name``."""
    if is_torch(values):
        values = values.detach().cpu()
        if str(values.dtype) == "torch.bfloat16":
            values = values.float()
        values = values.numpy()
    try:
        return np.asarray(values, dtype=dtype)
    except ValueError as err:
        if "inhomogeneous" not in str(err) and "sequence" not in str(err):
            raise
        raise ScalelabError(f"{func}: {name} is a ragged list (rows of different lengths); "
                            f"pass a rectangular array, one row per point.") from None


def is_real(value) -> bool:
    """A real number (python or numpy, np.float32 included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_seed(seed, func: str):
    """``seed`` for ``np.random.default_rng``: None, a whole number >= 0 or a Generator;
    one sentence otherwise (numpy's own errors name no argument)."""
    if seed is None or isinstance(seed, np.random.Generator) or (is_integer(seed)
                                                                  and seed >= 0):
        return seed
    raise ScalelabError(f"{func}: seed must be None or a whole number >= 0, got {seed!r}.")


def is_integer(value) -> bool:
    """A whole number (python or numpy), not a bool (which python counts as 0 or 1)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def float_eps(values) -> float:
    """Machine epsilon of ``values``' floating dtype (numpy or torch; float64's otherwise):
    the resolution its probabilities were stored with (float16: 9.8e-4, bfloat16: 7.8e-3)."""
    if is_torch(values) and values.is_floating_point():
        import torch  # already imported: the caller passed a tensor

        return float(torch.finfo(values.dtype).eps)
    dtype = getattr(values, "dtype", None)
    if dtype is not None and np.dtype(dtype).kind == "f":
        return float(np.finfo(dtype).eps)
    return float(np.finfo(np.float64).eps)


def as_float(values, name: str, func: str) -> np.ndarray:
    """Floating numpy array (float32 kept, everything else float64), no copy if possible."""
    array = as_numpy(values, name=name, func=func)
    if array.dtype.kind == "f" and array.dtype.itemsize >= 4:
        return array
    if array.dtype.kind not in "biuf":
        raise InputTypeError(f"{func}: {name} must be numeric, got dtype {array.dtype}.")
    return array.astype(np.float64)


def normalise_axes(reduce_axes, ndim: int, func: str) -> tuple[int, ...] | None:
    """``None`` (no reduction), ``"all"``, an int or a tuple of ints → sorted positive axes."""
    if reduce_axes is None:
        return None
    if isinstance(reduce_axes, str):
        if reduce_axes != "all":
            raise ScalelabError(f"{func}: reduce_axes must be None, 'all', an int or a tuple of "
                                f"ints, got {reduce_axes!r}.")
        return tuple(range(ndim))
    if is_integer(reduce_axes):
        axes = (reduce_axes,)
    elif (isinstance(reduce_axes, (tuple, list, range, np.ndarray))
          and all(map(is_integer, reduce_axes))):
        axes = tuple(reduce_axes)
    else:
        raise InputTypeError(f"{func}: reduce_axes must be None, 'all', an int or a tuple of "
                             f"ints naming axes of the score, got {reduce_axes!r}.")
    out = []
    for ax in axes:
        if not -ndim <= int(ax) < ndim:
            raise ScalelabError(f"{func}: reduce axis {ax} is out of range for a score with "
                                f"{ndim} dimensions; name axes of the observation array.")
        out.append(int(ax) % ndim)
    if len(set(out)) != len(out):
        raise ScalelabError(f"{func}: reduce_axes {reduce_axes!r} names an axis twice.")
    return tuple(sorted(out))


def check_weights(weights, shape: tuple, func: str, torch_like=None):
    """Validate weights broadcastable to ``shape`` (e.g. cos(latitude)[:, None])."""
    if weights is None:
        return None
    if torch_like is not None and is_torch(weights):
        w_np = weights.detach().cpu().numpy()
    else:
        w_np = as_numpy(weights, dtype=np.float64, name="weights", func=func)
    try:
        np.broadcast_shapes(w_np.shape, shape)
    except ValueError:
        raise ScalelabError(f"{func}: weights of shape {w_np.shape} do not broadcast to the "
                            f"score's shape {shape}; give one weight per point (e.g. "
                            f"cos(lat)[:, None] for (lat, lon)).") from None
    if np.broadcast_shapes(w_np.shape, shape) != tuple(shape):
        raise ScalelabError(f"{func}: weights of shape {w_np.shape} would enlarge the score's "
                            f"shape {shape}; give at most one weight per point.")
    if not np.isfinite(w_np).all() or (w_np < 0).any() or w_np.sum() <= 0:
        raise ScalelabError(f"{func}: weights must be finite, non-negative and not all zero.")
    if torch_like is not None:
        import torch  # already imported: the caller passed a tensor

        return torch.as_tensor(w_np, dtype=torch_like.dtype, device=torch_like.device)
    return w_np


def weighted_mean(score, axes, weights, func: str = "weighted mean"):
    """Mean of ``score`` over ``axes`` (None: no reduction), weighted when ``weights`` given.

    Works on numpy arrays and torch tensors alike (only ``*``, ``sum`` used). Weights that
    are all zero over one of the averaged slices are refused (its mean would be 0/0, NaN).
    """
    if axes is None:
        return score
    if weights is None:
        if is_torch(score):
            return score.mean(dim=axes) if axes else score
        return score.mean(axis=axes)
    host = weights.detach().cpu().numpy() if is_torch(weights) else np.asarray(weights)
    shape = tuple(score.shape)
    total = np.broadcast_to(host, shape).sum(axis=axes)
    if (np.asarray(total) <= 0).any():
        where = np.argwhere(np.atleast_1d(total) <= 0)[0]
        raise ScalelabError(f"{func}: the weights are all zero over an averaged slice (at "
                            f"index {tuple(int(i) for i in where)} of the result), so its mean "
                            f"is undefined; give every slice a positive weight or leave it out "
                            f"of the score.")
    full = weights * (score * 0 + 1)  # weights broadcast to the score's shape
    if is_torch(score):
        return (score * full).sum(dim=axes) / full.sum(dim=axes)
    return (score * full).sum(axis=axes) / full.sum(axis=axes)


def scalar_or_array(value):
    """A python float for 0-d numpy results, the array otherwise (tensors unchanged)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return float(value)
    if isinstance(value, np.generic):
        return float(value)
    return value
