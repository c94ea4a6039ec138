"""Size an accelerator for one network: the inner loop of nested codesign.

:func:`size_accelerator` searches a :class:`~hw_space.spec.DesignSpace` for the design that minimises
one hardware metric (EDP by default) of a fixed list of layers, under a :class:`HardwareBudget`,
through the analytical cost model alone (no accuracy evaluation: a design costs well under a
millisecond). The search is a multi-start coordinate descent: from each start (the first is the
middle choice of every field, the others random), sweep the fields in a random order, try every
choice of the field with the others fixed and keep the best; stop when a sweep improves nothing or
the evaluation budget is spent. Infeasible designs are ranked by their total relative budget
violation, so the descent walks towards feasibility first.

Identical layers are costed once and weighted by their count (an NB201 network has about 120
layers but about 25 distinct ones); :func:`network_metrics` gives the same totals as
``CostModel(spec).network(layers)`` (tested).

Example:
    >>> from hw_space import DesignSpace, resnet18
    >>> from hwnas.codesign.hw_eval import HardwareBudget
    >>> r = size_accelerator(resnet18(), DesignSpace(), HardwareBudget(area_mm2=5.0), seed=0)
    >>> r.metrics["area_mm2"] <= 5.0 and r.evaluations > 0
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hw_space import Layer
from hw_space.budget import FixedBudgetSpace
from hw_space.mapper import BufferMapper
from hw_space.spec import AcceleratorSpec, DesignSpace
from hwnas.codesign.hw_eval import HW_METRICS, HardwareBudget, network_metrics, unique_layers

#: Metrics a design can be sized for.
SIZING_METRICS = tuple(m for m in HW_METRICS if m != "energy_mj")


@dataclass(frozen=True)
class SizingResult:
    """Outcome of :func:`size_accelerator`.

    ``spec``/``metrics``: the best design found and its metrics (the least infeasible one when
    ``feasible`` is False, with ``violations`` saying why); ``evaluations``: designs costed.
    """

    spec: AcceleratorSpec
    metrics: dict[str, float]
    feasible: bool
    violations: tuple[str, ...]
    evaluations: int


def size_accelerator(layers: Sequence[Layer], hw: DesignSpace | FixedBudgetSpace, budget: HardwareBudget | None = None,
                     objective: str = "edp_uj_ms", batch: int = 1, starts: int = 3, max_evals: int = 600,
                     seed: int = 0, mapper: BufferMapper | None = None) -> SizingResult:
    """The design of ``hw`` minimising ``objective`` for ``layers`` within ``budget``; ``mapper``
    (a :class:`hw_space.mapper.BufferMapper`, shared across calls to share its cache) searches each
    layer's buffer-level loop order and tiling, None keeps the cost model's fixed tiling.

    Deterministic for a given ``seed``. A design whose global buffer cannot hold a tile of some
    layer is skipped (never returned). Raises ``ValueError`` (one line) for an unknown objective,
    no layers, a non-positive ``starts``/``max_evals``, or a space where no design can run the layers.
    """
    if objective not in SIZING_METRICS:
        raise ValueError(f"sizing objective must be one of {', '.join(SIZING_METRICS)}, got {objective!r}")
    if not layers:
        raise ValueError("size_accelerator needs at least one layer")
    if int(starts) < 1 or int(max_evals) < 1:
        raise ValueError(f"starts and max_evals must be positive, got {starts} and {max_evals}")
    budget = budget if budget is not None else HardwareBudget()
    uniq, counts = unique_layers(layers)
    rng = np.random.default_rng(seed)
    cards = hw.cardinalities
    cache: dict[tuple[int, ...], tuple[tuple[float, float], dict[str, float] | None, tuple[str, ...]]] = {}

    def cost(vec: tuple[int, ...]) -> tuple[float, float]:
        if vec not in cache:
            if len(cache) >= max_evals:
                return (math.inf, math.inf)
            spec = hw.decode(vec)
            try:
                m = network_metrics(spec, uniq, counts, batch, mapper=mapper)
            except ValueError:  # the buffer cannot hold a tile of some layer
                cache[vec] = ((math.inf, math.inf), None, ())
                return cache[vec][0]
            over = 0.0
            for name, bound in budget.as_dict().items():
                if bound is not None and m[name] > bound:
                    over += m[name] / bound - 1.0
            cache[vec] = ((over, m[objective]), m, tuple(budget.violations(m)))
        return cache[vec][0]

    for s in range(int(starts)):
        if len(cache) >= max_evals:
            break
        vec = [c // 2 for c in cards] if s == 0 else [int(rng.integers(c)) for c in cards]
        best = cost(tuple(vec))
        improved = True
        while improved and len(cache) < max_evals:
            improved = False
            for pos in rng.permutation(len(cards)):
                if cards[pos] < 2:
                    continue
                for choice in range(cards[pos]):
                    trial = list(vec)
                    trial[pos] = choice
                    c = cost(tuple(trial))
                    if c < best:
                        best, vec, improved = c, trial, True
    scored = [(v[0], k) for k, v in cache.items() if v[1] is not None]
    if not scored:
        raise ValueError("no design of the hardware space can run these layers (global buffers too small)")
    key = min(scored)[1]
    (over, _), metrics, why = cache[key]
    assert metrics is not None
    return SizingResult(hw.decode(key), dict(metrics), over == 0.0, why, len(cache))


__all__ = ["SIZING_METRICS", "SizingResult", "network_metrics", "size_accelerator", "unique_layers"]
