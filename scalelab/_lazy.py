"""Lazy attributes of a package (PEP 562), so that importing it stays cheap and torch-free.

``scalelab.models``, ``scalelab.data`` and ``scalelab.losses`` each keep their names a
spec may use (``NAMES``, ``FIELDS``, ...) in a torch-free ``names`` module, imported
eagerly; everything that needs torch (``build_model``, ``make_pairs``, ``get_loss``,
...) is imported on first use. So ``import scalelab.models.names`` — what validating a
spec needs — never imports torch, while ``from scalelab.models import build_model``
works as before.
"""

from __future__ import annotations

import importlib
import sys
import types


def make_lazy(package: str, homes: dict[str, str]) -> None:
    """Make ``package`` load each name of ``homes`` (name → module) on first use.

    A submodule that shares a name with a function it defines (``scalelab.data.degrade``
    and ``degrade``) would replace the function on the package when first imported; the
    package keeps the function, as an eager ``from .degrade import degrade`` did.
    """

    class LazyPackage(types.ModuleType):
        def __getattr__(self, name: str):
            if name not in homes:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
            value = getattr(importlib.import_module(homes[name]), name)
            types.ModuleType.__setattr__(self, name, value)  # next time: a plain lookup
            return value

        def __setattr__(self, name: str, value) -> None:
            if name in homes and isinstance(value, types.ModuleType):
                return  # the import system announcing a submodule of the same name
            types.ModuleType.__setattr__(self, name, value)

        def __dir__(self):
            return sorted(set(vars(self)) | set(homes))

    sys.modules[package].__class__ = LazyPackage
