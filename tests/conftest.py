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


@pytest.fixture
def torch_one_thread():
    """Torch at one thread for the test, restored after: two threads on a shared 2-core machine
    spin-wait on each other (up to 100x slower). Evaluators never change the count themselves."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as :class:`hwnas.evaluate.datasets.ImageData` (seed 0 split)."""
    from hwnas.evaluate.datasets import load_dataset

    return load_dataset("digits")
