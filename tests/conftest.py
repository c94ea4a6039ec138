"""Shared fixtures: paths to the reference data, tiny exported candidate folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NB201_DATA = Path(os.environ.get("HWNAS_NB201_DATA", ROOT.parent / "shared" / "datasets" / "nb201"))


@pytest.fixture(scope="session")
def nb201_accuracy_csv() -> Path:
    path = NB201_DATA / "accuracy.csv"
    if not path.exists():
        pytest.skip(f"NAS-Bench-201 reference table not found at {path}")
    return path


@pytest.fixture(scope="session")
def nb201_candidates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four exported NB201 candidates (real torch -> ONNX export), shared by the session."""
    from hwnas.export import export_archs
    from hwnas.space import NB201Space

    space = NB201Space()
    out = tmp_path_factory.mktemp("nb201_candidates")
    export_archs(space, [space.from_index(i) for i in (0, 1, 2, 3)], out)
    return out
