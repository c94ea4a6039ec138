"""SCALE-Sim's memory-system quantities for WS/OS/IS systolic arrays (numpy only).

Per layer: SRAM reads/writes per operand, DRAM reads/writes per operand behind three operand SRAMs
of given sizes, and stall cycles in SCALE-Sim's USER bandwidth mode, as SCALE-Sim v2/v3 counts them
(``scalesim/compute/systolic_compute_{ws,os,is}.py``, ``scalesim/memory/read_buffer.py``,
``read_buffer_estimate_bw.py``, ``write_buffer.py``, ``double_buffered_scratchpad_mem.py``; read from
the ``scalesim`` 3.0.0 wheel on PyPI). Words are operands of ``precision_bits`` (SCALE-Sim's word is
one byte, so an 8-bit spec mirrors it exactly). Notation as in :mod:`hw_space.systolic`: per group,
``px`` ofmap pixels, ``K`` window (``R S C``), ``N`` filters; array ``rows x cols``; ``rf``/``cf``
row/column folds of the dataflow (WS ``ceil(K/rows)``/``ceil(N/cols)``, OS ``ceil(px/rows)``/
``ceil(N/cols)``, IS ``ceil(K/rows)``/``ceil(px/cols)``).

**SRAM traffic (exact, closed form).** SCALE-Sim counts the elements of each fold's demand slice
(``ifmap_reads``/``filter_reads``/``ofmap_writes`` in ``create_*_demand_mat``):
WS ``cf px K`` / ``K N`` / ``rf px N``; OS ``cf px K`` / ``rf K N`` / ``px N + rf cf (rows + cols)``
(SCALE-Sim's OS ofmap counter also adds the padded fold's ``rows + cols`` per fold, a bookkeeping
quirk reproduced here); IS ``px K`` / ``cf K N`` / ``rf px N``.

**DRAM writes (ofmap).** Every valid element of the ofmap demand is written back once through the
double-buffered write buffer: WS/IS ``rf px N`` (each row fold writes its partial sums), OS ``px N``.
SCALE-Sim also counts the ``-1`` padding of a partial line flushed in the middle of a drain chunk
(at most ``bandwidth - 1`` words per drain of half the SRAM; in CALC mode the line is ``cols`` wide);
that is not modelled (< 0.1 % at 8 KB and more).

**DRAM reads, CALC mode** (``read_buffer_estimate_bw``: no bandwidth given): misses of distinct
addresses into 100 sets of ``floor(words / 100)`` addresses, of which the 50 of the active half are
searched; everything is fetched once (exact) when the operand's distinct addresses fit in that half
(``U <= 50 floor(words / 100)``; ifmap ``U`` = touched input pixels x channels, filter ``K N``).
Otherwise the demand's addresses are replayed in SCALE-Sim's order: a miss is an address not missed
since the last flush, and the buffer forgets everything after every 50 sets of misses (exact; memory
and time grow with the SRAM reads, as the demand stream is materialised).

**DRAM reads, USER mode** (``read_buffer``: interface bandwidth ``bw`` words/cycle). The operand's
*prefetch matrix* (the im2col-expanded operand in the dataflow's fold order, read by anti-diagonals
for WS/OS ifmap, OS filter and IS filter; padded with ``-1`` to whole folds; ``E`` elements, ``V`` of
them valid) is cut into *lines* of ``eps = ceil(words/100)`` valid elements
(``Lt = floor(V / eps) + 1`` lines) that form a circular buffer; the active window holds
``min(Lt, ceil(words/2 / eps))`` lines and each miss slides it forward by
``min(Lt - active, ceil((words - words/2) / eps))`` lines (one ``new_prefetch``), wrapping around until
the address is found. DRAM reads are requests, not elements:
``bw (min(ceil(words/2 / bw), ceil(E / bw)) + slides ceil((words - words/2) / bw))``. This module
rebuilds the prefetch order (positions exact, ``-1`` entries skipped) and replays the demand fold by
fold as *runs* (forward, or reversed rows where SCALE-Sim flips a fold: WS filter, IS ifmap),
counting slides with modular arithmetic in O(folds + slides) steps: WS ifmap, OS ifmap and IS filter
are re-read once per column fold (trips around the circle), OS filter re-reads a column block once
per row fold, consecutive anti-diagonal folds interleave by ``w (w - 1) / 2`` elements (a fold
starting behind the window costs a trip around the circle), and a flipped fold straddling the
window's start costs one too. For the im2col ifmap, whose addresses repeat up to ``R S`` times, a
miss is decided as SCALE-Sim decides it: the address is searched in every line of the window.
Timing: on anti-diagonal prefetches a position is demanded at its skewed row (exact); on other
forward runs at evenly spaced rows of the fold (approximate), which can move stall cycles, not reads.
Cost: reads-only folds are O(1) each; the prefetch order is materialised (O(E) numpy), and repeated
addresses are checked per window line, so USER mode takes seconds per ResNet-18 on a 32x32 array.

**Stall cycles, USER mode.** SCALE-Sim issues the k-th slide's DRAM lines back to back after the
previous ones, whatever the demand: it completes at ``L_k = -1 + k (ceil((words - words/2) / bw) + 1)``.
A demand row at cycle ``c`` (stall-free row + stalls so far) that triggers it sees
``p = L_k - (c + 1)``; ``read_buffer.service_reads`` adds ``p`` to its offset, and adds ``p`` again
when ``p > 0`` (so a late prefetch costs ``2 p``; an early one lowers the offset). The ofmap
``write_buffer`` starts draining ``ceil(half / bw)`` lines once more than half its SRAM holds
undrained words (freeing them at once; the drain ends ``lines - 1`` cycles later) and a row that
fills the SRAM while a drain runs waits for its end. A row's stall is the largest of the three, at
least 0 (``service_memory_requests``). CALC mode has no stalls.

The replays live in :mod:`hw_space.scalesim_order` (prefetch positions, demand streams, ofmap writes
per row) and :mod:`hw_space.scalesim_buffers` (the read/write buffers and the stall rule).

Grouped layers are ``groups`` independent SCALE-Sim layers (each with fresh buffers): every quantity
is the per-group value times ``groups``; a batch of ``n`` is ``n`` back-to-back runs.

Example:
    >>> from hw_space.workload import Layer
    >>> t = scalesim_traffic([Layer("c", 8, 8, 3, 3, 4, 16)], 4, 4, "ws", (1024, 1024, 1024), 10)
    >>> [int(t[k][0]) for k in ("sram_ifmap_reads", "dram_ifmap_reads", "dram_filter_reads")]
    [5184, 5720, 1040]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hw_space.scalesim_buffers import calc_misses, stalls, user_reads
from hw_space.scalesim_order import cdiv as _cdiv
from hw_space.scalesim_order import demand_stream, ofmap_per_row, runs
from hw_space.scalesim_order import folds as _folds
from hw_space.systolic import SYSTOLIC_DATAFLOWS, LayersLike, gemm_dims, layer_arrays

TRAFFIC_KEYS = ("sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes",
                "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes", "stall_cycles")


def _check(rows: int, cols: int, dataflow: str) -> None:
    if dataflow not in SYSTOLIC_DATAFLOWS:
        raise ValueError(f"dataflow must be one of {', '.join(SYSTOLIC_DATAFLOWS)} for SCALE-Sim traffic, "
                         f"got {dataflow!r}")
    for name, v in (("rows", rows), ("cols", cols)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def sram_traffic(layers: LayersLike, rows: int, cols: int, dataflow: str) -> dict[str, np.ndarray]:
    """SCALE-Sim's SRAM reads/writes per operand (words, int64 per layer), exact closed forms.

    Keys ``sram_ifmap_reads``, ``sram_filter_reads``, ``sram_ofmap_writes`` (see the module docstring).
    """
    _check(rows, cols, dataflow)
    px, k, n, g = gemm_dims(layers)
    rf, cf = _folds(px, k, n, rows, cols, dataflow)
    if dataflow == "ws":
        i, f, o = cf * px * k, k * n, rf * px * n
    elif dataflow == "os":
        i, f, o = cf * px * k, rf * k * n, px * n + rf * cf * (rows + cols)
    else:
        i, f, o = px * k, cf * k * n, rf * px * n
    return {"sram_ifmap_reads": (g * i).astype(np.int64), "sram_filter_reads": (g * f).astype(np.int64),
            "sram_ofmap_writes": (g * o).astype(np.int64)}


def _ifmap_counts(a: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(valid im2col entries, distinct ifmap addresses touched), per group."""
    s = a["stride"]
    ch = a["channels"] // a["groups"]
    out = []
    for size, f in ((a["ifmap_h"], a["filter_h"]), (a["ifmap_w"], a["filter_w"])):
        e = _cdiv(size - f + s, s)
        valid = f * e - np.maximum(0, (e - 1) * s + f - size)  # window taps inside the map
        touched = np.where(s <= f, np.minimum(size, (e - 1) * s + f),
                           (e - 1) * f + np.minimum(f, size - (e - 1) * s))
        out.append((valid, touched))
    (vh, th), (vw, tw) = out
    return vh * vw * ch, th * tw * ch


def scalesim_traffic(layers: LayersLike, rows: int, cols: int, dataflow: str,
                     sram_words: tuple[int, int, int] | None = None,
                     bandwidth: int | None = None) -> dict[str, np.ndarray]:
    """SCALE-Sim's SRAM/DRAM traffic per operand and stall cycles, per layer (int64 arrays).

    Args:
        layers: ``Layer`` objects or :func:`hw_space.systolic.layer_arrays` columns.
        rows, cols: array shape.
        dataflow: ``ws``, ``os`` or ``is``.
        sram_words: (ifmap, filter, ofmap) SRAM sizes in words; ``None``: unbounded (each distinct
            element read from DRAM once).
        bandwidth: USER-mode interface bandwidth in words per cycle (positive integer, needs
            ``sram_words``); ``None``: SCALE-Sim's CALC mode (no stalls).
    Returns:
        ``{key: int64 array}`` for :data:`TRAFFIC_KEYS`.
    Raises:
        ValueError: bad dataflow, array shape, SRAM sizes or bandwidth (one line naming it).
    """
    _check(rows, cols, dataflow)
    if sram_words is not None:
        if len(sram_words) != 3 or any(isinstance(w, bool) or not isinstance(w, (int, np.integer))
                                       or w < 100 for w in sram_words):
            raise ValueError(f"sram_words must be three integers >= 100 (ifmap, filter, ofmap), got {sram_words!r}")
    if bandwidth is not None:
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, np.integer)) or bandwidth < 1:
            raise ValueError(f"bandwidth must be a positive integer (words per cycle), got {bandwidth!r}")
        if sram_words is None:
            raise ValueError("a USER-mode bandwidth needs the three operand SRAM sizes")
    a = layer_arrays(layers)
    out = sram_traffic(a, rows, cols, dataflow)
    px, k, n, g = gemm_dims(a)
    rf, cf = _folds(px, k, n, rows, cols, dataflow)
    out["dram_ofmap_writes"] = (g * (px * n if dataflow == "os" else rf * px * n)).astype(np.int64)
    valid_i, uniq_i = _ifmap_counts(a)
    uniq_f = k * n
    if bandwidth is None:
        if sram_words is None:
            di, df = uniq_i, uniq_f
        else:
            win_i = 50 * (sram_words[0] // 100)
            win_f = 50 * (sram_words[1] // 100)
            di, df = uniq_i.copy(), uniq_f.copy()
            for j in np.flatnonzero((uniq_i > win_i) | (uniq_f > win_f)):
                one = {f: int(v[j]) for f, v in a.items()}
                one.update(px=int(px[j]), k=int(k[j]), n=int(n[j]))
                if uniq_i[j] > win_i:
                    di[j] = calc_misses(demand_stream(dataflow, "ifmap", one, rows, cols), win_i)
                if uniq_f[j] > win_f:
                    df[j] = calc_misses(demand_stream(dataflow, "filter", one, rows, cols), win_f)
        out["dram_ifmap_reads"] = (g * di).astype(np.int64)
        out["dram_filter_reads"] = (g * df).astype(np.int64)
        out["stall_cycles"] = np.zeros_like(px, dtype=np.int64)
        return {key: out[key] for key in TRAFFIC_KEYS}
    bw = int(bandwidth)
    di, df, st = [], [], []
    for j in range(len(px)):
        one = {f: int(v[j]) for f, v in a.items()}
        one.update(px=int(px[j]), k=int(k[j]), n=int(n[j]))
        events, lines, reads = {}, {}, {}
        for op, words in (("ifmap", sram_words[0]), ("filter", sram_words[1])):
            rn, size, valid, addr = runs(dataflow, op, one, rows, cols)
            reads[op], events[op], lines[op] = user_reads(rn, valid, size, int(words), bw, addr)
        di.append(reads["ifmap"])
        df.append(reads["filter"])
        orows = ofmap_per_row(dataflow, one["px"], one["k"], one["n"], rows, cols)
        st.append(stalls(events, lines, orows, int(sram_words[2]), bw))
    out["dram_ifmap_reads"] = g * np.array(di, dtype=np.int64)
    out["dram_filter_reads"] = g * np.array(df, dtype=np.int64)
    out["stall_cycles"] = g * np.array(st, dtype=np.int64)
    return {key: out[key] for key in TRAFFIC_KEYS}


__all__ = ["TRAFFIC_KEYS", "scalesim_traffic", "sram_traffic"]


def spec_traffic(spec: Any, layers: LayersLike, batch: int = 1,
                 skip: np.ndarray | None = None, enabled: bool = True) -> dict[str, np.ndarray]:
    """:func:`scalesim_traffic` of an :class:`~hw_space.spec.AcceleratorSpec`, for :class:`CostModel`.

    Uses the spec's ``sram_words`` (``None``: unbounded SRAMs) and ``bandwidth_words`` (``None``:
    CALC); a batch of ``n`` is ``n`` back-to-back SCALE-Sim runs (every quantity times ``n``).
    Returns :data:`TRAFFIC_KEYS` arrays plus ``traffic_modelled`` (bool): ``False`` (and zeros) for
    the ``rs`` dataflow, which SCALE-Sim does not have, and for layers in ``skip`` (memory-bound
    steps, which run beside the array); all ``False`` when not ``enabled``.
    """
    if not enabled:
        n_layers = len(layers["ifmap_h"]) if isinstance(layers, dict) else len(layers)
        out = {key: np.zeros(n_layers, dtype=np.int64) for key in TRAFFIC_KEYS}
        out["traffic_modelled"] = np.zeros(n_layers, dtype=bool)
        return out
    a = layer_arrays(layers)
    n_layers = len(a["ifmap_h"])
    keep = np.ones(n_layers, dtype=bool) if skip is None else ~np.asarray(skip, dtype=bool)
    out = {key: np.zeros(n_layers, dtype=np.int64) for key in TRAFFIC_KEYS}
    if spec.dataflow not in SYSTOLIC_DATAFLOWS or not keep.any():
        out["traffic_modelled"] = np.zeros(n_layers, dtype=bool)
        return out
    sub = {f: v[keep] for f, v in a.items()}
    t = scalesim_traffic(sub, spec.rows, spec.cols, spec.dataflow, spec.sram_words, spec.bandwidth_words)
    for key in TRAFFIC_KEYS:
        out[key][keep] = t[key] * int(batch)
    out["traffic_modelled"] = keep
    return out


__all__ += ["spec_traffic"]
