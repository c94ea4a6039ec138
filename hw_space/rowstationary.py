"""Row-stationary (RS) compute cycles after Eyeriss, vectorised over layers (numpy only).

Reference: Y.-H. Chen, J. Emer, V. Sze, "Eyeriss: A Spatial Architecture for Energy-Efficient
Dataflow for Convolutional Neural Networks", ISCA 2016 (Sec. IV, "row stationary"), and
Y.-H. Chen, T. Krishna, J. Emer, V. Sze, "Eyeriss: An Energy-Efficient Reconfigurable Accelerator
for Deep Convolutional Neural Networks", IEEE JSSC 52(1), 2017 (Sec. III-B/C, PE sets and mapping).

Model (one group of a layer; a grouped layer is ``groups`` such problems run one after another):

* Each PE runs a 1-D convolution: one filter row (``S`` weights) over one ifmap row, producing one
  row of ``F`` partial sums: ``S * F`` MACs at one MAC per cycle.
* A *logical PE set* is ``R x E`` PEs (filter rows down, output rows across): filter rows are
  reused horizontally, ifmap rows diagonally, partial sums accumulate vertically. One set computes
  one 2-D convolution (one ifmap channel x one filter x one image) in ``S * F`` cycles.
* Folding onto the physical ``rows x cols`` array: if ``R > rows`` the filter rows are split into
  ``r_folds = ceil(R / rows)`` parts of ``h = ceil(R / r_folds)`` rows (psums of the parts are added
  through the global buffer); if ``E > cols`` the output rows are split into
  ``e_folds = ceil(E / cols)`` strips of ``e = ceil(E / e_folds)`` columns (JSSC 2017 Fig. 10 folds
  AlexNet CONV1's 11 x 55 set into strips the same way).
* Replication: ``(rows // h) * (cols // e)`` folded sets run side by side on different
  (channel, filter, image) triples (JSSC 2017 Fig. 10, e.g. four 3 x 13 sets for CONV3-5 on 12 x 14).
* Passes: ``ceil(r_folds * e_folds * C * M * N / sets_in_parallel)``, each ``S * F`` cycles.

Assumptions (stated, not tuned): no cycles for loading a pass (Eyeriss overlaps them), perfect
packing of sets across channel/filter/image boundaries, the same ofmap size as SCALE-Sim's
(``ceil((H - R + U) / U)``, no padding: pass the padded input). The model gives the cycles of the
PE array only; memory stalls are added by :mod:`hw_space.cost`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from hw_space.systolic import LayersLike, layer_arrays


def _ceil_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return -(-a // b)


def rs_mapping(layers: LayersLike, rows: ArrayLike, cols: ArrayLike,
               batch: int = 1) -> dict[str, np.ndarray]:
    """The folded/replicated PE-set mapping of each layer (int64 arrays, broadcast with rows/cols).

    Keys: ``R, S, E, F, C, M, groups`` (per-group dims), ``r_folds, h, e_folds, e`` (folded set
    height/width), ``sets_parallel``, ``passes`` (per group), ``cycles`` (whole layer).
    """
    a = layer_arrays(layers)
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    if np.any(r <= 0) or np.any(c <= 0):
        raise ValueError(f"rows and cols must be positive, got rows={rows!r} cols={cols!r}")
    if isinstance(batch, bool) or int(batch) != batch or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    s = a["stride"]
    g = a["groups"]
    big_r, big_s = a["filter_h"], a["filter_w"]
    e_rows = _ceil_div(a["ifmap_h"] - big_r + s, s)
    f_cols = _ceil_div(a["ifmap_w"] - big_s + s, s)
    ch, m = a["channels"] // g, a["num_filter"] // g
    r_folds = _ceil_div(big_r, r)
    h = _ceil_div(big_r, r_folds)
    e_folds = _ceil_div(e_rows, c)
    e = _ceil_div(e_rows, e_folds)
    par = (r // h) * (c // e)
    passes = _ceil_div(r_folds * e_folds * ch * m * int(batch), par)
    cycles = g * passes * big_s * f_cols
    return {"R": big_r, "S": big_s, "E": e_rows, "F": f_cols, "C": ch, "M": m, "groups": g,
            "r_folds": r_folds, "h": h, "e_folds": e_folds, "e": e, "sets_parallel": par,
            "passes": passes, "cycles": cycles.astype(np.int64)}


def rs_compute_cycles(layers: LayersLike, rows: ArrayLike, cols: ArrayLike,
                      batch: int = 1) -> np.ndarray:
    """PE-array cycles of each layer under row stationary: ``groups * passes * S * F``.

    Example (AlexNet CONV3 on Eyeriss's 12 x 14 array, one image: four 3 x 13 sets in parallel,
    ``ceil(256 * 384 / 4) = 24576`` passes of ``3 * 13`` cycles):

        >>> from hw_space.workload import Layer
        >>> int(rs_compute_cycles([Layer("conv3", 15, 15, 3, 3, 256, 384)], 12, 14)[0])
        958464
    """
    return rs_mapping(layers, rows, cols, batch)["cycles"]


def rs_utilization(layers: LayersLike, rows: ArrayLike, cols: ArrayLike,
                   batch: int = 1) -> np.ndarray:
    """MACs / (cycles * rows * cols) of the RS mapping, in (0, 1]."""
    mp = rs_mapping(layers, rows, cols, batch)
    macs = mp["groups"] * int(batch) * mp["M"] * mp["C"] * mp["E"] * mp["F"] * mp["R"] * mp["S"]
    return macs / (mp["cycles"] * np.asarray(rows) * np.asarray(cols))


__all__ = ["rs_compute_cycles", "rs_mapping", "rs_utilization"]
