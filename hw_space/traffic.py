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
(at most ``bandwidth - 1`` words per drain of half the SRAM); that is not modelled (< 0.1 % at 64 KB).

**DRAM reads, CALC mode** (``read_buffer_estimate_bw``: no bandwidth given): misses of distinct
addresses into 100 sets of ``floor(words / 100)`` addresses, of which the 50 of the active half are
searched; everything is fetched once (exact) when the operand's distinct addresses fit in that half
(``U <= 50 floor(words / 100)``; ifmap ``U`` = touched input pixels x channels, filter ``K N``).
Otherwise the window is flushed every 50 sets and each pass of the demand over the operand re-misses
it: ``U x passes`` (an approximation; passes below).

**DRAM reads, USER mode** (``read_buffer``: interface bandwidth ``bw`` words/cycle). The operand's
*prefetch matrix* (the im2col-expanded operand in the dataflow's fold order, padded with ``-1`` to
whole folds; ``E`` elements, ``V`` of them valid) is cut into *lines* of ``eps = ceil(words/100)``
valid elements (``Lt = floor(V / eps) + 1`` lines) that form a circular buffer; the active window
holds ``min(Lt, ceil(words/2 / eps))`` lines and each miss slides it forward by
``min(Lt - active, ceil((words - words/2) / eps))`` lines (one ``new_prefetch``), wrapping around
until the address is found. DRAM reads are requests, not elements:
``bw (min(ceil(words/2 / bw), ceil(E / bw)) + calls ceil((words - words/2) / bw))``. This module
replays the demand fold by fold as *runs* over line ranges (forward, or reversed where SCALE-Sim
flips a fold: WS filter, IS ifmap) and counts the slides with modular arithmetic, O(folds + calls)
per layer: WS ifmap, OS ifmap and IS filter are re-read once per column fold (``cf`` passes around
the circle), OS filter re-reads each column block once per row fold (a block that does not fit the
window costs a trip around the circle per repeat), and a reversed fold that straddles the window's
start costs a trip around the circle too. Approximations (documented; the bench measures them):
(1) an address is found only in its own line, whereas the im2col ifmap repeats addresses, so
SCALE-Sim can hit a duplicate in the window and slide less (layers with few channels per fold);
(2) out-of-bounds (``-1``) ifmap entries of a ceil-sized output are spread evenly over the folds;
(3) a run's lines are demanded at evenly spaced rows of its fold.

**Stall cycles, USER mode.** SCALE-Sim issues the k-th slide's DRAM lines back to back after the
previous ones, whatever the demand: it completes at ``L_k = -1 + k (ceil((words - words/2) / bw) + 1)``.
A demand row at cycle ``c`` (stall-free row + stalls so far) that triggers it sees
``p = L_k - (c + 1)``; ``read_buffer.service_reads`` adds ``p`` to its offset, and adds ``p`` again
when ``p > 0`` (so a late prefetch costs ``2 p``; an early one lowers the offset), and the row's
stall is the largest over ifmap, filter and ofmap, at least 0 (``service_memory_requests``).
The ofmap write buffer's own stalls (half the SRAM draining at ``bw`` while the other half fills) are
not modelled. CALC mode has no stalls.

Grouped layers are ``groups`` independent SCALE-Sim layers (each with fresh buffers): every quantity
is the per-group value times ``groups``; a batch of ``n`` is ``n`` back-to-back runs.

Example:
    >>> from hw_space.workload import Layer
    >>> t = scalesim_traffic([Layer("c", 8, 8, 3, 3, 4, 16)], 4, 4, "ws", (1024, 1024, 1024), 10)
    >>> [int(t[k][0]) for k in ("sram_ifmap_reads", "dram_ifmap_reads", "dram_filter_reads")]
    [5184, 5720, 1040]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hw_space.systolic import SYSTOLIC_DATAFLOWS, LayersLike, gemm_dims, layer_arrays

TRAFFIC_KEYS = ("sram_ifmap_reads", "sram_filter_reads", "sram_ofmap_writes",
                "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes", "stall_cycles")


def _cdiv(a: Any, b: Any) -> Any:
    return -(-a // b)


def _check(rows: int, cols: int, dataflow: str) -> None:
    if dataflow not in SYSTOLIC_DATAFLOWS:
        raise ValueError(f"dataflow must be one of {', '.join(SYSTOLIC_DATAFLOWS)} for SCALE-Sim traffic, "
                         f"got {dataflow!r}")
    for name, v in (("rows", rows), ("cols", cols)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _folds(px: np.ndarray, k: np.ndarray, n: np.ndarray, rows: int, cols: int,
           dataflow: str) -> tuple[np.ndarray, np.ndarray]:
    if dataflow == "ws":
        return _cdiv(k, rows), _cdiv(n, cols)
    if dataflow == "os":
        return _cdiv(px, rows), _cdiv(n, cols)
    return _cdiv(k, rows), _cdiv(px, cols)


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


class _Circle:
    """SCALE-Sim ``read_buffer``'s circular window over ``Lt`` lines (see the module docstring)."""

    def __init__(self, lines: int, active: int, slide: int) -> None:
        self.lt, self.active, self.slide = lines, active, slide
        self.start = 0
        self.calls = 0
        self.events: list[tuple[float, int]] = []  # (stall-free demand row, call index k >= 1)

    def _inside(self, line: int) -> bool:
        return (line - self.start) % self.lt < self.active

    def _call(self, row: float) -> None:
        self.start = (self.start + self.slide) % self.lt
        self.calls += 1
        self.events.append((row, self.calls))

    def _reach(self, line: int, row: float) -> None:
        guard = self.lt // max(self.slide, 1) + 2
        while not self._inside(line):
            if self.slide == 0 or guard == 0:  # cannot happen for a consistent buffer; stay finite
                return
            self._call(row)
            guard -= 1

    def run(self, p0: float, p1: float, eps: int, row0: float, row1: float, width: int) -> None:
        """Demand valid positions ``[p0, p1)`` over rows ``[row0, row1)``.

        ``width == 0``: forward, in prefetch order. ``width > 0``: a flipped fold, rows of ``width``
        positions each (forward inside a row) demanded last row first, one row per cycle.
        """
        if p1 <= p0:
            return
        lt = self.lt
        if width == 0:
            la, lb = int(p0) // eps, int(math.ceil(p1) - 1) // eps

            def row_of(line: int) -> float:
                frac = (line * eps - p0) / (p1 - p0)
                return row0 + min(max(frac, 0.0), 1.0) * (row1 - row0)

            line = la
            self._reach(line % lt, row0)
            while True:
                nxt = line + self.active - (line - self.start) % lt  # first line past the window
                if nxt > lb:
                    return
                self._reach(nxt % lt, row_of(nxt))
                line = nxt
        base, nrow = int(p0), int(round((p1 - p0) / width))
        r = nrow - 1
        while r >= 0:
            q = base + r * width
            time = row0 + (nrow - 1 - r)
            last = (q + width - 1) // eps
            for line in range(q // eps, last + 1):
                self._reach(line % lt, time)
            # rows below r whose positions are at or above the window's start are hits
            start_line = last - (last - self.start) % lt
            r_next = -(-(start_line * eps - base) // width) - 1
            r = min(r - 1, r_next)


def _runs(dataflow: str, op: str, px: int, k: int, n: int, rows: int, cols: int,
          scale: float) -> tuple[list[tuple[float, float, float, float, int]], int, int]:
    """Demand runs ``(p0, p1, row0, row1, width)`` of one operand (see :meth:`_Circle.run`), its
    prefetch size ``E`` (with padding) and valid size ``V``.

    Diagonalised prefetches (WS/OS ifmap, OS filter, IS filter: SCALE-Sim reads the fold-concatenated
    matrix of width ``w`` by anti-diagonals) interleave the last ``w (w - 1) / 2`` elements of a fold
    with the first ones of the next: a fold's run starts that much before its block and ends that
    much after it. Flipped folds (WS filter, IS ifmap) are rows of ``width`` elements, last first.
    """
    rf, cf = (int(v) for v in _folds(np.int64(px), np.int64(k), np.int64(n), rows, cols, dataflow))
    if dataflow == "os":
        per_fold = k + rows + cols - 2
    else:
        per_fold = 2 * rows + cols + (px if dataflow == "ws" else n) - 2
    key = (dataflow, op)
    # (diagonal width, block length in rows of the concatenated prefetch matrix)
    diag = {("ws", "ifmap"): rows, ("os", "ifmap"): rows, ("os", "filter"): cols,
            ("is", "filter"): rows}.get(key, 0)
    valid = {("ws", "ifmap"): px * k, ("os", "ifmap"): px * k, ("is", "ifmap"): px * k}.get(key, k * n)
    half = diag * (diag - 1) / 2
    runs = []
    for fc in range(cf):
        for fr in range(rf):
            base = (fc * rf + fr) * per_fold
            if key == ("ws", "ifmap"):
                u = min(rows, k - fr * rows)
                p0, p1, r0, r1 = fr * rows * px, fr * rows * px + px * u, rows, rows + px + u - 1
            elif key == ("ws", "filter"):
                uc, ur = min(cols, n - fc * cols), min(rows, k - fr * rows)
                p0 = fc * k * cols + fr * rows * uc
                runs.append((p0, p0 + ur * uc, base + rows - ur, base + rows, uc))
                continue
            elif key == ("os", "ifmap"):
                u = min(rows, px - fr * rows)
                p0, p1, r0, r1 = fr * rows * k, fr * rows * k + k * u, 0, k + u - 1
            elif key == ("os", "filter"):
                uc = min(cols, n - fc * cols)
                p0, p1, r0, r1 = fc * cols * k, fc * cols * k + k * uc, 0, k + uc - 1
            elif key == ("is", "ifmap"):
                uc, ur = min(cols, px - fc * cols), min(rows, k - fr * rows)
                p0 = fc * k * cols + fr * rows * uc
                runs.append((p0 * scale, (p0 + ur * uc) * scale, base + rows - ur, base + rows, uc))
                continue
            else:  # is filter
                u = min(rows, k - fr * rows)
                p0, p1, r0, r1 = fr * rows * n, fr * rows * n + n * u, rows, rows + n + u - 1
            p0, p1 = max(0.0, p0 - half), min(float(valid), p1 + half)
            runs.append((p0 * scale, p1 * scale, base + r0, base + r1, 0))
    size = {("ws", "ifmap"): rf * px * rows, ("ws", "filter"): cf * k * cols,
            ("os", "ifmap"): rf * k * rows, ("os", "filter"): cf * k * cols,
            ("is", "ifmap"): cf * k * cols, ("is", "filter"): rf * n * rows}[key]
    return runs, size


def _user_reads(runs: Sequence[tuple[float, float, float, float, int]], valid: int, size: int,
                words: int, bw: int) -> tuple[int, list[tuple[float, int]], int]:
    """(DRAM reads, slide events, lines per slide) of SCALE-Sim's ``read_buffer`` in USER mode."""
    act_el = int(math.ceil(words * 0.5))
    pre_el = words - act_el
    eps = int(math.ceil(words / 100))
    lt = valid // eps + 1
    active = min(lt, int(math.ceil(act_el / eps)))
    slide = min(lt - active, int(math.ceil(pre_el / eps)))
    circle = _Circle(lt, active, slide)
    if active < lt:
        for p0, p1, r0, r1, width in runs:
            circle.run(p0, p1, eps, r0, r1, width)
    pre_lines = int(math.ceil(pre_el / bw))
    first = min(int(math.ceil(act_el / bw)), int(math.ceil(size / bw)))
    return bw * (first + circle.calls * pre_lines), circle.events, pre_lines


def _stalls(events: dict[str, list[tuple[float, int]]], pre_lines: dict[str, int]) -> int:
    """Stall cycles of SCALE-Sim's USER mode from the slide events of the two read buffers."""
    merged = sorted((int(row), op, kk) for op, evs in events.items() for row, kk in evs)
    total = 0
    i = 0
    while i < len(merged):
        row = merged[i][0]
        cyc = row + total
        off = {"ifmap": 1, "filter": 1}
        while i < len(merged) and merged[i][0] == row:
            _, op, kk = merged[i]
            done = -1 + kk * (pre_lines[op] + 1)
            pot = done - (cyc + off[op])
            off[op] += pot + max(pot, 0)
            i += 1
        total += max(0, off["ifmap"] - 1, off["filter"] - 1)
    return total


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
        passes_i = np.ones_like(px) if dataflow == "is" else cf
        if sram_words is None:
            di, df = uniq_i, uniq_f
        else:
            win_i = 50 * (sram_words[0] // 100)
            win_f = 50 * (sram_words[1] // 100)
            di = np.where(uniq_i <= win_i, uniq_i, uniq_i * passes_i)
            if dataflow == "is":
                df = np.where(uniq_f <= win_f, uniq_f, uniq_f * cf)
            elif dataflow == "os":
                df = np.where((uniq_f <= win_f) | (k * cols <= win_f), uniq_f, uniq_f * rf)
            else:
                df = uniq_f
        out["dram_ifmap_reads"] = (g * di).astype(np.int64)
        out["dram_filter_reads"] = (g * df).astype(np.int64)
        out["stall_cycles"] = np.zeros_like(px, dtype=np.int64)
        return {key: out[key] for key in TRAFFIC_KEYS}
    bw = int(bandwidth)
    di, df, st = [], [], []
    for j in range(len(px)):
        p, kk, nn = int(px[j]), int(k[j]), int(n[j])
        scale = int(valid_i[j]) / (p * kk)
        events, lines, reads = {}, {}, {}
        for op, words, valid in (("ifmap", sram_words[0], int(valid_i[j])),
                                 ("filter", sram_words[1], int(uniq_f[j]))):
            runs, size = _runs(dataflow, op, p, kk, nn, rows, cols, scale if op == "ifmap" else 1.0)
            reads[op], events[op], lines[op] = _user_reads(runs, valid, size, int(words), bw)
        di.append(reads["ifmap"])
        df.append(reads["filter"])
        st.append(_stalls(events, lines))
    out["dram_ifmap_reads"] = g * np.array(di, dtype=np.int64)
    out["dram_filter_reads"] = g * np.array(df, dtype=np.int64)
    out["stall_cycles"] = g * np.array(st, dtype=np.int64)
    return {key: out[key] for key in TRAFFIC_KEYS}


__all__ = ["TRAFFIC_KEYS", "scalesim_traffic", "sram_traffic"]


def spec_traffic(spec: Any, layers: LayersLike, batch: int = 1,
                 skip: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """:func:`scalesim_traffic` of an :class:`~hw_space.spec.AcceleratorSpec`, for :class:`CostModel`.

    Uses the spec's ``sram_words`` (``None``: unbounded SRAMs) and ``bandwidth_words`` (``None``:
    CALC); a batch of ``n`` is ``n`` back-to-back SCALE-Sim runs (every quantity times ``n``).
    Returns :data:`TRAFFIC_KEYS` arrays plus ``traffic_modelled`` (bool): ``False`` (and zeros) for
    the ``rs`` dataflow, which SCALE-Sim does not have, and for layers in ``skip`` (memory-bound
    steps, which run beside the array).
    """
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
