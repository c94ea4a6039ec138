"""Hardware cost of a (network, accelerator) pair through the analytical model of :mod:`hw_space`.

:class:`HardwareCost` exports a network to ONNX once (:func:`hwnas.export.arch_to_onnx`), extracts its
conv/GEMM workloads (:func:`hw_space.layers_from_onnx`), caches them per network spec (NB201 nets
recur with many accelerators), and runs ``CostModel(spec).network(layers, batch)``.
:class:`HardwareBudget` holds the hard budgets (area, power, latency) that reject a pair before its
accuracy is evaluated; area depends on the accelerator alone, so it is checked before any export.

Units of the metrics dict: ``latency_ms`` (ms per batch), ``energy_uj`` (microjoules per batch) and
``energy_mj`` (the same in millijoules), ``area_mm2``, ``power_mw`` (= energy_uj / latency_ms, i.e.
average mW), ``edp_uj_ms`` (energy x latency, uJ*ms), ``utilization``, ``macs``.

Example:
    >>> from hwnas.space import NB201Space
    >>> from hw_space import DesignSpace
    >>> import numpy as np
    >>> space = NB201Space()
    >>> cost = HardwareCost(space)
    >>> m = cost.metrics(space.from_index(1), DesignSpace().sample(np.random.default_rng(0)))  # doctest: +SKIP
    >>> m["latency_ms"] > 0  # doctest: +SKIP
    True
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hw_space import CostModel, Layer, layers_from_onnx
from hw_space.mapper import BufferMapper
from hw_space.spec import AcceleratorSpec
from hwnas.space.base import Arch, SearchSpace

#: Budget field -> command-line flag.
BUDGET_FLAGS = {"area_mm2": "--area-budget-mm2", "power_mw": "--power-budget-mw", "latency_ms": "--latency-budget-ms"}
#: Metrics that budgets and objectives may name, with their direction.
HW_METRICS = ("latency_ms", "energy_uj", "energy_mj", "area_mm2", "power_mw", "edp_uj_ms")


class HardwareCost:
    """Analytical hardware metrics of network architectures on accelerator designs.

    The layer cache is per instance (no global state) and guarded by a lock, so one instance may
    be shared between threads. ``layers`` may also be seeded with precomputed workloads via
    :meth:`set_layers` (tests, benches).

    Args:
        space: the network search space the architectures belong to.
        batch: batch size the cost model runs at (1: per-image latency and energy).
        mapper: a :class:`hw_space.mapper.BufferMapper` to search each layer's buffer-level loop
            order and tiling (shared by every design costed); None: the cost model's fixed tiling.
    """

    def __init__(self, space: SearchSpace, batch: int = 1, mapper: BufferMapper | None = None) -> None:
        if int(batch) < 1:
            raise ValueError(f"batch must be a positive integer, got {batch}")
        self.space = space
        self.batch = int(batch)
        self.mapper = mapper
        self._layers: dict[str, list[Layer]] = {}
        self._lock = threading.Lock()

    def layers(self, arch: Arch) -> list[Layer]:
        """Conv/GEMM workloads of ``arch`` (exported and extracted once per network spec)."""
        with self._lock:
            hit = self._layers.get(arch.spec)
        if hit is not None:
            return hit
        import onnx

        from hwnas.export import arch_to_onnx

        layers = layers_from_onnx(onnx.load_from_string(arch_to_onnx(self.space, arch)))
        with self._lock:
            self._layers[arch.spec] = layers
        return layers

    def set_layers(self, arch: Arch, layers: list[Layer]) -> None:
        """Seed the cache with the workloads of ``arch``."""
        with self._lock:
            self._layers[arch.spec] = list(layers)

    @property
    def cached(self) -> int:
        """Number of networks whose layers are cached."""
        return len(self._layers)

    @staticmethod
    def area_mm2(spec: AcceleratorSpec) -> float:
        """Total area of the accelerator (PEs, register files, global buffer) in mm^2."""
        return float(CostModel(spec).area_mm2()["total"])

    def metrics(self, arch: Arch, spec: AcceleratorSpec) -> dict[str, Any]:
        """Latency, energy, area, power and EDP of ``arch`` on ``spec`` (units: module docstring);
        identical layers are costed once (:func:`unique_layers`)."""
        return network_metrics(spec, *unique_layers(self.layers(arch)), batch=self.batch, mapper=self.mapper)


def unique_layers(layers: Sequence[Layer]) -> tuple[list[Layer], np.ndarray]:
    """Distinct workloads of ``layers`` (first name kept) and how many times each occurs."""
    seen: dict[tuple[Any, ...], int] = {}
    out: list[Layer] = []
    counts: list[int] = []
    for layer in layers:
        key = dataclasses.astuple(dataclasses.replace(layer, name="_"))
        if key in seen:
            counts[seen[key]] += 1
        else:
            seen[key] = len(out)
            out.append(layer)
            counts.append(1)
    return out, np.asarray(counts, dtype=np.float64)


def network_metrics(spec: AcceleratorSpec, layers: Sequence[Layer], counts: np.ndarray,
                    batch: int = 1, mapper: BufferMapper | None = None) -> dict[str, float]:
    """The metrics of :meth:`HardwareCost.metrics` (units: module docstring) of ``counts[i]`` copies of ``layers[i]``
    run one after another on ``spec`` (``mapper``: see :class:`HardwareCost`)."""
    model = CostModel(spec, mapper=mapper)
    d = model.layers(layers, batch)
    lat = float(np.dot(counts, d["latency_ms"]))
    energy = float(np.dot(counts, d["energy_uj"]))
    macs = float(np.dot(counts, d["macs"]))
    cycles = float(np.dot(counts, d["total_cycles"]))
    return {
        "latency_ms": lat, "energy_uj": energy, "energy_mj": energy / 1000.0,
        "area_mm2": float(model.area_mm2()["total"]), "power_mw": energy / lat if lat > 0 else 0.0,
        "edp_uj_ms": energy * lat, "utilization": macs / (cycles * spec.num_pes) if cycles else 0.0,
        "macs": int(macs),
    }


def parse_hw_budget(flag: str, value: Any) -> float | None:
    """A budget flag's value as a positive finite float (None stays None); ``ValueError`` (one line)
    for a negative, zero, non-finite or non-numeric value."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{flag} must be a positive number, got {value!r}") from None
    if not (math.isfinite(out) and out > 0):
        raise ValueError(f"{flag} must be a positive number, got {value!r}")
    return out


@dataclass(frozen=True)
class HardwareBudget:
    """Hard upper bounds on a design (None: unbounded). Immutable.

    ``area_violation(spec)`` needs the accelerator only; ``violations(metrics)`` checks all three.
    Each violation is a short string such as ``"area 3.2 mm2 > 1 mm2"``.
    """

    area_mm2: float | None = None
    power_mw: float | None = None
    latency_ms: float | None = None

    def __post_init__(self) -> None:
        for name, flag in BUDGET_FLAGS.items():
            parse_hw_budget(flag, getattr(self, name))

    def as_dict(self) -> dict[str, float | None]:
        """``{"area_mm2", "power_mw", "latency_ms"}`` bounds."""
        return {"area_mm2": self.area_mm2, "power_mw": self.power_mw, "latency_ms": self.latency_ms}

    def area_violation(self, spec: AcceleratorSpec) -> str | None:
        """Why ``spec`` is over the area budget, or None."""
        if self.area_mm2 is None:
            return None
        area = HardwareCost.area_mm2(spec)
        return f"area {area:.4g} mm2 > {self.area_mm2:g} mm2" if area > self.area_mm2 else None

    def violations(self, metrics: dict[str, Any]) -> list[str]:
        """Every budget ``metrics`` exceeds (empty: feasible)."""
        out = []
        for name, unit in (("area_mm2", "mm2"), ("power_mw", "mW"), ("latency_ms", "ms")):
            bound = getattr(self, name)
            if bound is not None and float(metrics[name]) > bound:
                out.append(f"{name.split('_')[0]} {float(metrics[name]):.4g} {unit} > {bound:g} {unit}")
        return out
