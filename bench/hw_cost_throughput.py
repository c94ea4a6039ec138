"""Throughput of the analytical cost model: layer evaluations per second.

1,000 designs drawn from the default :class:`hw_space.DesignSpace` (all four dataflows) x the 21
ResNet-18 layers of SCALE-Sim's topology; one :class:`hw_space.CostModel` per design, numpy-vectorised
over the layers (layer columns converted once with ``layer_arrays``). Prints layers/s of each of 5
runs and their median. Issue 5 asks for >= 10,000 layer evaluations per second.

Run: ``.venv/bin/python bench/hw_cost_throughput.py [--designs N] [--runs R]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hw_space import CostModel, DesignSpace, layer_arrays, resnet18  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--designs", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    space = DesignSpace()
    specs = [space.sample(rng) for _ in range(args.designs)]
    layers = resnet18()
    cols = {**layer_arrays(layers), "name": [layer.name for layer in layers]}
    n_layers = len(layers)
    rates = []
    for run in range(args.runs):
        t0 = time.perf_counter()
        total = 0.0
        for spec in specs:
            total += CostModel(spec).network(cols)["energy_uj"]
        dt = time.perf_counter() - t0
        rates.append(args.designs * n_layers / dt)
        print(f"run {run + 1}: {args.designs} designs x {n_layers} layers in {dt:.3f} s = "
              f"{rates[-1]:,.0f} layers/s")
    print(f"median: {statistics.median(rates):,.0f} layer evaluations/s (target >= 10,000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
