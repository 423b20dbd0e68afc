"""Targets: the sizes or compute a user wants predicted (``params=1e8``, ``compute=1e18``).

They are written in a spec's ``scalelab.targets`` or on the command line
(``scalelab report --target``), checked when the spec is loaded, and headlined by the
report. Torch-free, and knows nothing of sweeps or reports.
"""

from __future__ import annotations

import numpy as np

from scalelab._errors import ScalelabError

TARGET_KEYS = ("params", "samples", "samples_seen", "epochs", "compute")


def parse_target(text) -> dict[str, float]:
    """``"params=1e8"`` or ``"params=1e8,samples=1e6"`` → ``{"params": 1e8, ...}``; a mapping
    (``{params: 1e8}``, as a spec may write it) is read as it is, not through text."""
    if isinstance(text, dict):
        pairs = [(str(key).strip(), value, True) for key, value in text.items()]
    elif isinstance(text, str):
        pairs = [(key.strip(), value, bool(sep)) for key, sep, value in
                 (part.partition("=") for part in text.split(","))]
    else:
        raise ScalelabError(f"target {text!r} is not understood; write KEY=VALUE with KEY one "
                            f"of {', '.join(TARGET_KEYS)} (e.g. params=1e8).")
    target: dict[str, float] = {}
    for key, value, given in pairs:
        if not given or key not in TARGET_KEYS:
            raise ScalelabError(f"target {text!r} is not understood; write KEY=VALUE with KEY "
                                f"one of {', '.join(TARGET_KEYS)} (e.g. params=1e8).")
        try:
            number = float(value) if not isinstance(value, bool) else None
        except (TypeError, ValueError):
            number = None
        if number is None:
            raise ScalelabError(f"target {text!r}: {str(value).strip()!r} is not a number.")
        if not np.isfinite(number) or number <= 0:
            raise ScalelabError(f"target {text!r}: {key} must be a positive number.")
        if key in target:  # params=1e5,params=2e5 would keep the last without a word
            raise ScalelabError(f"target {text!r} gives {key} twice; give each of "
                                f"{', '.join(TARGET_KEYS)} once in a point (or --target again "
                                f"for another point).")
        target[key] = number
    return target


def targets_from_spec(spec: dict | None) -> list[dict[str, float]]:
    """Targets listed in a spec's ``scalelab.targets`` (a list, or a mapping of lists), each
    parsed once."""
    raw = ((spec or {}).get("scalelab") or {}).get("targets") or []
    if isinstance(raw, dict):
        raw = [{k: v} for k, values in raw.items()
               for v in (values if isinstance(values, list) else [values])]
    if not isinstance(raw, list):
        raise ScalelabError(f"targets must be a list such as [params=1e8, compute=1e18], got "
                            f"{raw!r}.")
    for item in raw:
        if not isinstance(item, (str, dict)) or not item:
            raise ScalelabError(f"target {item!r} is not a target; write each as KEY=VALUE "
                                f"with KEY one of {', '.join(TARGET_KEYS)} (e.g. params=1e8).")
    return [parse_target(t) for t in raw]
