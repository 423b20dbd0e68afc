"""Kernels files of the ``learned_kernel`` degradation, read without torch: where one is, and
its JSON record (settings, held-out fidelity), which a spec's check reads when it loads.

A kernels file is what ``torch.save`` writes (a zip archive) with ``scalelab_kernels.json``
added to the archive by :func:`scalelab.data.kernels.save_kernels`.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from scalelab._errors import ScalelabError

RECORD = "scalelab_kernels.json"  # the settings and scores, inside the file's zip archive


def read_record(path) -> dict:
    """The JSON record of a kernels file (torch-free); one ScalelabError sentence if the file
    is not one."""
    path = Path(path)
    if not path.is_file():
        raise ScalelabError(f"{path}: no such kernels file; write one with scalelab "
                            f"fit-kernels.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/" + RECORD)]
            if not names:
                raise ScalelabError(f"{path}: not a kernels file written by scalelab "
                                    f"fit-kernels (it holds no {RECORD}); fit them again.")
            return json.loads(archive.read(names[0]))
    except (zipfile.BadZipFile, ValueError, OSError):
        raise ScalelabError(f"{path}: not a kernels file written by scalelab fit-kernels "
                            f"(unreadable); fit them again.") from None


def resolve_kernel_path(path) -> Path:
    """A kernels file: the path as given, else a file shipped in ``scalelab/data/examples``."""
    from scalelab.data.options import EXAMPLES

    given = Path(path)
    if not given.exists() and (EXAMPLES / given.name).is_file() and given.name == str(path):
        return EXAMPLES / given.name
    return given
