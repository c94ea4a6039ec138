"""Predictor files shipped inside the package, and turning a ``--base``/``--model`` argument into a path.

The package carries pre-trained predictors in ``hwnas/predictors/data/<name>.json`` (the ordinary
:func:`hwnas.predictors.base.save_predictor` format: JSON with base64 arrays, never pickle), each
described, with its provenance, in ``hwnas/predictors/data/README.md``. A command that reads a
predictor file accepts either a path or the bare name of a shipped one, so a fresh install can
adapt to a new device without any pre-training step::

    hwnas predictor adapt --base nb201-public --db lat.db --device pi5 --samples 10 --out pi5.json

Resolution is pure (nothing is read at import, no registry): an existing file always wins, so a
local ``nb201-public`` file shadows the shipped one, and paths keep working as before.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

#: The shipped base predictor that ``predictor suggest``/``adapt`` use in the README's flow.
DEFAULT_BASE = "nb201-public"

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def data_dir() -> Path:
    """The folder of the shipped predictor files (inside the installed package)."""
    return Path(str(resources.files("hwnas.predictors") / "data"))


def shipped_names() -> list[str]:
    """Names of the shipped predictors (file stems of ``data/*.json``), sorted."""
    d = data_dir()
    return sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []


def resolve_predictor_path(name_or_path: str) -> Path:
    """The predictor file that ``name_or_path`` stands for.

    An existing file is returned as given. Otherwise a bare name (lower-case letters, digits, ``-``
    and ``_``; no folder, no suffix) of a shipped predictor becomes its path in the package. Any
    other string is returned unchanged, so the loader reports it as missing (see
    :func:`missing_hint`).
    """
    p = Path(name_or_path)
    if p.is_file() or not _NAME.fullmatch(name_or_path):
        return p
    shipped = data_dir() / f"{name_or_path}.json"
    return shipped if shipped.is_file() else p


def missing_hint() -> str:
    """A sentence naming the shipped predictors, for a "no such predictor file" error."""
    names = shipped_names()
    return f"shipped predictors, usable by name: {', '.join(names)}" if names else "no predictors are shipped with this install"
