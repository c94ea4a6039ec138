"""What each predictor kind needs beyond numpy, and the one-line error when it is not installed (a
leaf module: the kind lookup of the package and the command line use it)."""

from __future__ import annotations

import importlib.util

from hwnas.predictors.records import PredictorError

#: Packages (import names) a kind needs to be fitted, beyond numpy; all come with ``hwnas[host]``.
REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "gnn": ("torch", "torch_geometric"),
    "gbdt": ("sklearn",),
    "lut": ("scipy",),
}
INSTALL_HINT = "pip install 'hwnas[host]'"


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def missing_packages(kind: str) -> list[str]:
    """The packages of :data:`REQUIREMENTS` that ``kind`` needs and this environment lacks."""
    return [name for name in REQUIREMENTS.get(kind, ()) if not _installed(name)]


def check_available(kind: str) -> None:
    """Nothing when ``kind`` can be fitted here; else :class:`PredictorError` naming the missing
    packages and how to install them (never "unknown kind" for a kind this hwnas has)."""
    missing = missing_packages(kind)
    if missing:
        raise PredictorError(f"predictor kind {kind!r} needs {' and '.join(missing)}, not installed here: {INSTALL_HINT}")


__all__ = ["INSTALL_HINT", "REQUIREMENTS", "check_available", "missing_packages"]
