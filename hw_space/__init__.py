"""Accelerator design space and analytical cost model for hardware/model codesign (numpy only).

This package never imports torch or hwnas (a test enforces it); ``onnx`` is imported lazily by
:func:`layers_from_onnx` only. So far: :class:`AcceleratorSpec` and :class:`DesignSpace` (``spec``),
layer workloads with SCALE-Sim topology CSV and ONNX extraction (``workload``), and SCALE-Sim-exact
systolic compute cycles and utilisation for WS/OS/IS (``systolic``), a row-stationary model after
Eyeriss (``rowstationary``), an energy/area table with its sources (``energy``), and the cost model
(``cost``: cycles, traffic per memory level, latency, energy per level, area), vectorised,
and SCALE-Sim's memory system (``traffic``: SRAM/DRAM words per operand, USER-mode stall cycles).
"""

from __future__ import annotations

from hw_space.spec import DATAFLOWS, PRECISIONS, AcceleratorSpec, DesignSpace
from hw_space.systolic import (
    SYSTOLIC_DATAFLOWS,
    compute_cycles,
    compute_utilization,
    gemm_dims,
    layer_arrays,
    mapping_efficiency,
    overall_utilization,
)
from hw_space.workload import (
    CSV_HEADER,
    MEMORY_KINDS,
    Layer,
    layers_from_onnx,
    mobilenet,
    read_topology_csv,
    resnet18,
    write_topology_csv,
)

__all__ = [
    "CSV_HEADER", "DATAFLOWS", "MEMORY_KINDS", "PRECISIONS", "SYSTOLIC_DATAFLOWS", "AcceleratorSpec", "DesignSpace",
    "Layer", "compute_cycles", "compute_utilization", "gemm_dims", "layer_arrays",
    "layers_from_onnx", "mapping_efficiency", "mobilenet", "overall_utilization",
    "read_topology_csv", "resnet18", "write_topology_csv",
]

from hw_space.cost import ENERGY_PARTS, CostModel  # noqa: E402
from hw_space.energy import LEVELS, EnergyTable  # noqa: E402
from hw_space.rowstationary import rs_compute_cycles, rs_mapping, rs_utilization  # noqa: E402
from hw_space.traffic import TRAFFIC_KEYS, scalesim_traffic, spec_traffic, sram_traffic  # noqa: E402

__all__ += ["ENERGY_PARTS", "LEVELS", "CostModel", "EnergyTable", "rs_compute_cycles", "rs_mapping",
            "rs_utilization"]

# issue 19: the per-layer buffer mapper and fixed-budget (NAAS-style) design spaces
from hw_space.budget import BUDGETS, FixedBudgetSpace, ResourceBudget, budget_by_name  # noqa: E402
from hw_space.mapper import BufferMapper  # noqa: E402

__all__ += ["BUDGETS", "BufferMapper", "FixedBudgetSpace", "ResourceBudget", "budget_by_name"]
__all__ += ["TRAFFIC_KEYS", "scalesim_traffic", "spec_traffic", "sram_traffic"]  # issue 19
