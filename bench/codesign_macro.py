#!/usr/bin/env python
"""Codesign over the macro (MobileNetV2-like) space: the macro-space variant of
``codesign_nb201.py``, same methods, same flags, same printout.

Why a second space: an NB201 network is one cell repeated on fixed channel counts, so every cell
asks the hardware for much the same thing (3x3 and 1x1 convolutions on 16-64 channels). Macro
networks choose width, depth, kernel (3/5/7) and expansion (1/3/6) per stage, and their depthwise
and pointwise layers map very differently onto an array: a depthwise layer has one input channel per
filter, so a weight-stationary array uses one row of its PEs for it. Whether the network and the
hardware then pull on each other is what this bench measures.

**Accuracy source: the synflow zero-cost proxy** (Tanaka et al. 2020, as in Abdelfattah et al.
2021; :class:`hwnas.evaluate.zero_cost.ZeroCostEvaluator`), log10 of the score, on the untrained
network at 32x32 px (digits, 10 classes). No accuracy table exists for this space, and training
thousands of ImageNet-size networks is out of reach here, so the comparison is at **equal proxy
score**, not at equal accuracy. What it is worth: synflow ranks NB201 cells at Spearman ~0.7-0.8
against trained accuracy (``bench/zero_cost_nb201.py``) and is known to favour wider, deeper
networks (it grows with the number of parameters); it is a ranking signal, not an accuracy.
Synflow does not see the input resolution (an all-ones input through a global pool), so the bench
pins every network at 224 px (:class:`Macro224`): otherwise every method would pick 128 px for free.

The target (``--target``, in log10 synflow) defaults to the 75th percentile of 100 random networks
(seed 12345), printed. Layers come from real ONNX exports (``hwnas.codesign.HardwareCost``), cached
in ``.hwnas/bench-cache/macro224-layers.json``; scores in ``.hwnas/bench-cache/macro224-synflow.json``
(first run: about 1-2 s per new network).

    python bench/codesign_macro.py --fixed-budget eyeriss [--budget 60] [--seeds 0 1 2 3 4 5 6 7 8 9]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from codesign_nb201 import DiskCache, NB201Layers, compare, parser  # noqa: E402  (bench scripts share their code)

from hwnas.codesign import HardwareCost  # noqa: E402
from hwnas.space import MacroSpace  # noqa: E402
from hwnas.space.base import Arch  # noqa: E402
from hwnas.space.macro import RESOLUTIONS  # noqa: E402

CACHE = Path(".hwnas/bench-cache")
RESOLUTION = 224


class Macro224(MacroSpace):
    """The macro space with every network at 224 px: sampling, mutation and decoding pin the
    resolution (the accuracy proxy cannot see it, see the module docstring)."""

    def _pin(self, arch: Arch) -> Arch:
        vec = MacroSpace.encode(self, arch)
        vec[0] = RESOLUTIONS.index(RESOLUTION)
        return MacroSpace.decode(self, vec)

    def sample(self, rng: np.random.Generator) -> Arch:
        return self._pin(super().sample(rng))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        for _ in range(8):  # a mutation of the (pinned) resolution changes nothing: draw again
            child = self._pin(super().mutate(arch, rng))
            if child != arch:
                return child
        return child

    def decode(self, vector: Sequence[int] | np.ndarray) -> Arch:
        return self._pin(super().decode(vector))


class SynflowScores:
    """log10 synflow per network, cached on disk across runs."""

    def __init__(self, space: MacroSpace, path: Path = CACHE / "macro224-synflow.json") -> None:
        from hwnas.evaluate.zero_cost import ZeroCostEvaluator

        evaluator = ZeroCostEvaluator(space, proxy="synflow", batch_size=8, resolution=32, all_proxies=False)
        self.cache = DiskCache(path, lambda a: float(np.log10(max(float(evaluator.evaluate(a).accuracy), 1e-300))), 25)

    def __call__(self, arch: Arch) -> float:
        return float(self.cache.get(arch))

    def save(self) -> None:
        self.cache.save()


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0], None)
    p.set_defaults(budget=60)
    args = p.parse_args(argv)
    net = Macro224(num_classes=1000)
    table = NB201Layers(net, HardwareCost(net), CACHE / "macro224-layers.json")  # a generic layer cache
    score = SynflowScores(Macro224(num_classes=10))
    if args.target is None:
        rng = np.random.default_rng(12345)
        sample = [score(net.sample(rng)) for _ in range(100)]
        args.target = float(np.percentile(sample, 75))
        print(f"target: log10 synflow >= {args.target:.2f} (75th percentile of 100 random networks at 224 px; "
              f"their range {min(sample):.1f}-{max(sample):.1f})")
    try:
        return compare(args, net, table, score, {}, "macro (224 px, synflow proxy)", "log10-synflow {:.2f}")
    finally:
        score.save()
        table.save()


if __name__ == "__main__":
    raise SystemExit(main())
