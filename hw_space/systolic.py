"""Compute cycles and utilisation of a rows x cols systolic array, as SCALE-Sim v2 computes them.

Vectorised with numpy over arrays of layers (and over array shapes: ``rows``/``cols`` broadcast).

Derivation (all references are to github.com/scalesim-project/scale-sim-v2):

* conv -> GEMM (``scalesim/topology_utils.py`` ``topo_calc_hyperparams`` and
  ``scalesim/compute/operand_matrix.py`` ``set_params``): ofmap ``E = ceil((H - R + s) / s)``
  per side (no padding), IFMAP operand ``px x K`` with ``px = E_h * E_w`` and window
  ``K = R * S * C``, filter operand ``K x N`` (``N`` = filters), OFMAP ``px x N``.
* spatial/temporal dims (``systolic_compute_{os,ws,is}.py`` ``set_params``; same as
  ``topology_utils.calc_spatio_temporal_params``):
  OS ``Sr = px, Sc = N, T = K``; WS ``Sr = K, Sc = N, T = px``; IS ``Sr = K, Sc = px, T = N``.
  Folds: ``ceil(Sr / rows) * ceil(Sc / cols)`` (row folds x col folds).
* cycles per fold = rows of the per-fold demand matrices (``create_*_demand_mat``):
  OS: ifmap ``T`` rows + ``cols - 1`` drain gap, skewed over ``rows`` columns (+ ``rows - 1``)
  => ``T + rows + cols - 2``; WS: ``rows`` weight-load prefix + ``T`` + ``cols - 1`` drain,
  skewed (+ ``rows - 1``) => ``2 rows + cols + T - 2``; IS: ifmap ``rows`` + suffix
  ``rows + cols + T - 2`` (no skew) => ``2 rows + cols + T - 2``. The three operands' demand
  matrices have equal length (SCALE-Sim asserts it).
* total: the memory system (``scalesim/memory/double_buffered_scratchpad_mem.py``
  ``service_memory_requests``) reports ``total_cycles`` = the cycle stamp of the last OFMAP demand
  row, ``(rows_of_demand - 1) + stalls`` (``write_buffer.service_writes`` returns the incoming
  cycle). So COMPUTE_REPORT's ``Total Cycles - Stall Cycles = folds * per_fold - 1``; this module
  returns that stall-free number. Checked against SCALE-Sim's golden reports
  ``test/general/golden_trace_user_{os,ws,is}/COMPUTE_REPORT.csv`` (GEMM 256x128x256, 32x32):
  52447-42272 = 10175 (OS), 52447-41248 = 11199 (WS), 19984-5777 = 14207 (IS).
* mapping efficiency (``create_filter_demand_mat`` WS / ``create_ofmap_demand_mat`` OS /
  ``create_ifmap_demand_mat`` IS): mean over folds of ``used_rows * used_cols / (rows * cols)``,
  which is ``Sr * Sc / (row_folds * col_folds * rows * cols)``.
* compute utilisation (same places): mean over folds of ``used * T / (rows * cols * c)`` with
  ``c`` = per-fold matrix length + width - 1: OS ``T + rows + cols - 2`` (ofmap matrix, ``T - 1``
  prefix + ``rows``, width ``cols``), WS/IS ``2 rows + 2 cols + T - 3`` (``rows`` + suffix
  ``rows + cols + T - 2``, width ``cols``). Hence ``mapping_efficiency * T / c``. Golden reports:
  80.503 % (OS), 67.192 % (WS), 50.593 % (IS).

Grouped layers (``groups > 1``: depthwise convs, batched GEMMs) are ``groups`` separate SCALE-Sim
layers, as SCALE-Sim's ``load_arrays_conv`` expands ``DP`` layers: cycles add up, efficiencies are
those of one group. The row-stationary (``rs``) dataflow is not a SCALE-Sim dataflow and is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Union

import numpy as np
from numpy.typing import ArrayLike

from hw_space.workload import Layer

SYSTOLIC_DATAFLOWS = ("os", "ws", "is")
LAYER_FIELDS = ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filter", "stride",
                "groups")
LayersLike = Union[Sequence[Layer], Mapping[str, ArrayLike]]


def layer_arrays(layers: LayersLike) -> dict[str, np.ndarray]:
    """Columns of ``layers`` as int64 arrays (``groups`` defaults to 1 for a mapping without it).

    Pass the result back to the functions below to avoid re-converting ``Layer`` objects.
    """
    if isinstance(layers, Mapping):
        out = {f: np.asarray(layers[f], dtype=np.int64) for f in LAYER_FIELDS if f in layers}
        missing = [f for f in LAYER_FIELDS[:-1] if f not in out]
        if missing:
            raise ValueError(f"layer arrays miss {', '.join(missing)}")
        out.setdefault("groups", np.ones_like(out["ifmap_h"]))
        return out
    return {f: np.array([getattr(layer, f) for layer in layers], dtype=np.int64) for f in LAYER_FIELDS}


def gemm_dims(layers: LayersLike) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-group GEMM dims ``(px, K, N, groups)``: ofmap pixels, window, filters, group count."""
    a = layer_arrays(layers)
    s = a["stride"]
    e_h = -(-(a["ifmap_h"] - a["filter_h"] + s) // s)  # ceil, as topology_utils.topo_calc_hyperparams
    e_w = -(-(a["ifmap_w"] - a["filter_w"] + s) // s)
    g = a["groups"]
    return e_h * e_w, a["filter_h"] * a["filter_w"] * (a["channels"] // g), a["num_filter"] // g, g


def _terms(layers: LayersLike, rows: ArrayLike, cols: ArrayLike, dataflow: str):
    if dataflow not in SYSTOLIC_DATAFLOWS:
        raise ValueError(f"dataflow must be one of {', '.join(SYSTOLIC_DATAFLOWS)} for the systolic "
                         f"model, got {dataflow!r}")
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    if np.any(r <= 0) or np.any(c <= 0):
        raise ValueError(f"rows and cols must be positive, got rows={rows!r} cols={cols!r}")
    px, k, n, g = gemm_dims(layers)
    if dataflow == "os":
        sr, sc, t = px, n, k
        per_fold = t + r + c - 2
        util_den = per_fold
    elif dataflow == "ws":
        sr, sc, t = k, n, px
        per_fold = 2 * r + c + t - 2
        util_den = 2 * r + 2 * c + t - 3
    else:  # "is"
        sr, sc, t = k, px, n
        per_fold = 2 * r + c + t - 2
        util_den = 2 * r + 2 * c + t - 3
    row_folds = -(-sr // r)
    col_folds = -(-sc // c)
    return sr, sc, t, r, c, row_folds, col_folds, per_fold, util_den, g


def compute_cycles(layers: LayersLike, rows: ArrayLike, cols: ArrayLike,
                   dataflow: str) -> np.ndarray:
    """Stall-free cycles per layer, equal to SCALE-Sim's ``Total Cycles - Stall Cycles``.

    ``groups * (row_folds * col_folds * per_fold - 1)``, with ``per_fold`` = ``T + rows + cols - 2``
    (OS) or ``2 rows + cols + T - 2`` (WS, IS); see the module docstring for the derivation.

    Args:
        layers: ``Layer`` objects or :func:`layer_arrays` columns.
        rows, cols: array shape; scalars or arrays broadcasting against the layers.
        dataflow: ``os``, ``ws`` or ``is``.
    Returns:
        int64 array of cycles, broadcast shape of layers and rows/cols.

    Example:
        >>> int(compute_cycles([Layer.gemm("g", 256, 128, 256)], 32, 32, "os")[0])
        10175
    """
    _, _, _, _, _, rf, cf, per_fold, _, g = _terms(layers, rows, cols, dataflow)
    return (g * (rf * cf * per_fold - 1)).astype(np.int64)


def mapping_efficiency(layers: LayersLike, rows: ArrayLike, cols: ArrayLike,
                       dataflow: str) -> np.ndarray:
    """SCALE-Sim's Mapping Efficiency as a fraction (it prints percent): mean over folds of the
    fraction of PEs mapped, ``Sr * Sc / (row_folds * col_folds * rows * cols)``."""
    sr, sc, _, r, c, rf, cf, _, _, _ = _terms(layers, rows, cols, dataflow)
    return (sr * sc) / (rf * cf * r * c)


def compute_utilization(layers: LayersLike, rows: ArrayLike, cols: ArrayLike,
                        dataflow: str) -> np.ndarray:
    """SCALE-Sim's Compute Util as a fraction: ``mapping_efficiency * T / c`` with ``c`` =
    ``T + rows + cols - 2`` (OS) or ``2 rows + 2 cols + T - 3`` (WS, IS)."""
    sr, sc, t, r, c, rf, cf, _, den, _ = _terms(layers, rows, cols, dataflow)
    return (sr * sc) / (rf * cf * r * c) * t / den


def overall_utilization(layers: LayersLike, rows: ArrayLike, cols: ArrayLike,
                        dataflow: str) -> np.ndarray:
    """MACs / (cycles * rows * cols) with stall-free cycles. SCALE-Sim's ``Overall Util`` uses its
    ``Total Cycles`` (with stalls), so the two agree only when SCALE-Sim reports no stalls."""
    px, k, n, g = gemm_dims(layers)
    cyc = compute_cycles(layers, rows, cols, dataflow)
    return (g * px * k * n) / (cyc * np.asarray(rows) * np.asarray(cols))


__all__ = ["SYSTOLIC_DATAFLOWS", "compute_cycles", "compute_utilization", "gemm_dims", "layer_arrays",
           "mapping_efficiency", "overall_utilization"]
