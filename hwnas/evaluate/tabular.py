"""Tabular NB201 evaluator: the benchmark's own accuracy, looked up instantly.

Exact and free, so search strategies can be compared over many seeds on real accuracies (the
shipped table: ``data/README.md``). Only for the NB201 space at its standard settings.

Example:
    >>> from hwnas.evaluate.tabular import NB201Tabular
    >>> from hwnas.space import NB201Space
    >>> space = NB201Space()
    >>> NB201Tabular().evaluate(space.from_index(1)).accuracy
    93.66
"""

from __future__ import annotations

import functools
import gzip
from importlib import resources

import numpy as np

from hwnas.evaluate.base import Evaluator, Metrics
from hwnas.space.base import Arch
from hwnas.space.nb201 import N_ARCHS, NB201Space

DATASETS = ("cifar10", "cifar100", "imagenet16_120")


class NB201Tabular(Evaluator):
    """Test accuracy of an NB201 cell from NAS-Bench-201's table.

    Args:
        dataset: ``cifar10`` (default), ``cifar100`` or ``imagenet16_120``.
    """

    name = "tabular"

    def __init__(self, dataset: str = "cifar10") -> None:
        if dataset not in DATASETS:
            raise ValueError(f"tabular: dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
        self.dataset = dataset
        self.space = NB201Space()

    @functools.cached_property
    def table(self) -> np.ndarray:
        """Accuracies, ``[15625, 3]`` float32, rows in NAS-Bench-201's ``arch_idx`` order."""
        raw = resources.files("hwnas.evaluate").joinpath("data/nb201_accuracy.f32.gz").read_bytes()
        acc = np.frombuffer(gzip.decompress(raw), dtype="<f4")
        if acc.size != N_ARCHS * len(DATASETS):
            raise RuntimeError("hwnas/evaluate/data/nb201_accuracy.f32.gz is damaged: reinstall hwnas")
        return acc.reshape(N_ARCHS, len(DATASETS))

    def evaluate(self, arch: Arch) -> Metrics:
        if arch.space != self.space.name:
            raise ValueError(f"tabular evaluator covers the nb201 space only, not {arch.space!r}")
        idx = self.space.index(arch)
        acc = float(self.table[idx, DATASETS.index(self.dataset)])
        return Metrics(accuracy=round(acc, 4), source=f"tabular:nb201/{self.dataset}", extra={"arch_idx": idx})
