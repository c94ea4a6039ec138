"""Search spaces: the NB201 cell space (micro) and a MobileNetV2-like macro space.

Strings become space objects only at the CLI edge, through :func:`get_space`.
"""

from __future__ import annotations

from hwnas.space.base import Arch, SearchSpace, TorchBuildable
from hwnas.space.macro import MacroSpace
from hwnas.space.nb201 import NB201Space

SPACES = ("nb201", "macro")


def get_space(name: str) -> SearchSpace:
    """Return a new space object for ``name`` (``nb201`` or ``macro``), with default settings."""
    if name == "nb201":
        return NB201Space()
    if name == "macro":
        return MacroSpace()
    raise ValueError(f"unknown space {name!r}; choose one of: {', '.join(SPACES)}")


__all__ = ["Arch", "SearchSpace", "TorchBuildable", "NB201Space", "MacroSpace", "SPACES", "get_space"]
