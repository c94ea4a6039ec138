"""What the per-layer buffer mapper (hw_space.mapper) gains over the fixed tiling, and what it costs.

For ResNet-18 and MobileNet (hw_space's SCALE-Sim topologies, batch 1) and AlexNet CONV1-5 (batch 4,
as bench/hw_cost_eyeriss.py), on (a) the Eyeriss chip and (b) every design of the Eyeriss fixed-
budget space (hw_space.budget: 168 PEs, 193 KB of RF + global buffer, 24 B/cycle NoC), prints the
network's DRAM words, energy and EDP with the fixed tiling divided by those with the mapper (> 1:
the mapper is better; never < 1 by construction), the largest per-layer DRAM gain, and the mapping
time per network: cold (empty cache) and warm (the cache a codesign search builds).

Run: ``.venv/bin/python bench/mapper_gain.py``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hw_space import CostModel, Layer, mobilenet, resnet18  # noqa: E402
from hw_space.budget import EYERISS_BUDGET, FixedBudgetSpace  # noqa: E402
from hw_space.mapper import BufferMapper  # noqa: E402

ALEXNET = [
    Layer("CONV1", 227, 227, 11, 11, 3, 96, stride=4), Layer("CONV2", 31, 31, 5, 5, 96, 256, groups=2),
    Layer("CONV3", 15, 15, 3, 3, 256, 384), Layer("CONV4", 15, 15, 3, 3, 384, 384, groups=2),
    Layer("CONV5", 15, 15, 3, 3, 384, 256, groups=2),
]


def main() -> int:
    nets = {"ResNet-18": (resnet18(), 1), "MobileNet": (mobilenet(), 1), "AlexNet CONV1-5": (ALEXNET, 4)}
    space = FixedBudgetSpace(EYERISS_BUDGET)
    designs = [space.decode(np.unravel_index(i, space.cardinalities)) for i in range(space.size)]
    print(f"fixed tiling / mapper (> 1: the mapper is better); Eyeriss chip, then all {len(designs)} designs of the "
          "Eyeriss fixed-budget space (median [min, max])")
    print(f"{'network':<16} {'DRAM words':>11} {'energy':>8} {'EDP':>8} {'best layer DRAM':>16}   "
          f"{'space: EDP ratio':>28} {'map cold ms':>12} {'warm ms':>8}")
    for name, (layers, batch) in nets.items():
        base = EYERISS_BUDGET.baseline
        mapper = BufferMapper()
        t = time.perf_counter()
        mapped = CostModel(base, mapper=mapper).layers(layers, batch)
        cold = (time.perf_counter() - t) * 1e3
        t = time.perf_counter()
        CostModel(base, mapper=mapper).layers(layers, batch)
        warm = (time.perf_counter() - t) * 1e3
        fixed = CostModel(base).layers(layers, batch)
        r = lambda k: float(np.sum(fixed[k]) / np.sum(mapped[k]))  # noqa: E731
        edp = r("energy_uj") * r("latency_ms")
        per_layer = float(np.max(fixed["dram_bytes"] / mapped["dram_bytes"]))
        ratios = []
        for spec in designs:
            f = CostModel(spec).network(layers, batch)
            m = CostModel(spec, mapper=mapper).network(layers, batch)
            ratios.append(f["edp_uj_ms"] / m["edp_uj_ms"])
        q = np.percentile(ratios, [50, 0, 100])
        print(f"{name:<16} {r('dram_bytes'):>11.3f} {r('energy_uj'):>8.3f} {edp:>8.3f} {per_layer:>16.3f}   "
              f"{q[0]:>10.3f} [{q[1]:.3f}, {q[2]:.3f}]{'':>4} {cold:>12.1f} {warm:>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
