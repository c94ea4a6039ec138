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
What remains approximate is *when* a slide happens (a forward run's positions are taken as demanded
at evenly spaced rows of its fold), which moves stall cycles, not reads.

**Stall cycles, USER mode.** SCALE-Sim issues the k-th slide's DRAM lines back to back after the
previous ones, whatever the demand: it completes at ``L_k = -1 + k (ceil((words - words/2) / bw) + 1)``.
A demand row at cycle ``c`` (stall-free row + stalls so far) that triggers it sees
``p = L_k - (c + 1)``; ``read_buffer.service_reads`` adds ``p`` to its offset, and adds ``p`` again
when ``p > 0`` (so a late prefetch costs ``2 p``; an early one lowers the offset). The ofmap
``write_buffer`` starts draining ``ceil(half / bw)`` lines once more than half its SRAM holds
undrained words (freeing them at once; the drain ends ``lines - 1`` cycles later) and a row that
fills the SRAM while a drain runs waits for its end. A row's stall is the largest of the three, at
least 0 (``service_memory_requests``). CALC mode has no stalls.

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


class _Copies:
    """Positions holding the same address, for each valid position of a prefetch order."""

    def __init__(self, addr: np.ndarray) -> None:
        self.perm = np.argsort(addr, kind="stable")
        srt = addr[self.perm]
        self.lo = np.searchsorted(srt, addr, side="left")
        self.hi = np.searchsorted(srt, addr, side="right")
        self.width = int((self.hi - self.lo).max()) if addr.size else 1

    def __call__(self, qs: np.ndarray) -> np.ndarray:
        idx = self.lo[qs][:, None] + np.arange(self.width)
        ok = idx < self.hi[qs][:, None]
        return np.where(ok, self.perm[np.minimum(idx, self.perm.size - 1)], -1)


def _address(a: dict[str, int], pix: np.ndarray, tap: np.ndarray) -> np.ndarray:
    """SCALE-Sim's ifmap address (less its offset) of im2col entries inside the ifmap."""
    st, c, w = a["stride"], a["channels"] // a["groups"], a["ifmap_w"]
    ew = -(-(w - a["filter_w"] + st) // st)
    oy, ox = np.divmod(pix, ew)
    r, rem = np.divmod(tap, a["filter_w"] * c)
    s, ch = np.divmod(rem, c)
    return ((oy * st + r) * w + ox * st + s) * c + ch


class _Circle:
    """SCALE-Sim ``read_buffer``'s circular window over ``Lt`` lines (see the module docstring)."""

    def __init__(self, lines: int, active: int, slide: int, eps: int = 1,
                 dup: _Copies | None = None) -> None:
        self.lt, self.active, self.slide, self.eps, self.dup = lines, active, slide, eps, dup
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

    def _hits(self, qs: np.ndarray) -> np.ndarray:
        """Whether the address at each position is in the window: its own line, or any line holding a
        copy of it (``read_buffer.active_buffer_hit`` searches every line of the window)."""
        cand = self.dup(qs) if self.dup is not None else qs[:, None]
        ok = (cand >= 0) & ((cand // self.eps - self.start) % self.lt < self.active)
        return ok.any(axis=1)

    def _serve(self, q0: int, q1: int, row: Any) -> None:
        """Demand positions ``[q0, q1)`` in order at ``row`` (a number, or a function of the position),
        sliding the window on each miss until the address is found (address-aware path)."""
        guard = self.lt // max(self.slide, 1) + 2
        while q0 < q1:
            hit = self._hits(np.arange(q0, q1, dtype=np.int64))
            if hit.all() or self.slide == 0:
                return
            m = q0 + int(np.argmin(hit))
            when = row(m) if callable(row) else row
            for _ in range(guard):
                self._call(when)
                if self._hits(np.array([m], dtype=np.int64))[0]:
                    break
            q0 = m + 1

    def _run_copies(self, p0: float, p1: float, row0: float, row1: float,
                    flipped: tuple[np.ndarray, np.ndarray] | None) -> None:
        """:meth:`run` for an operand whose addresses repeat (the im2col ifmap)."""
        eps, lt = self.eps, self.lt
        if flipped is None:
            cur, end = int(p0), int(math.ceil(p1))
            if end <= cur:
                return

            def row_of(q: int) -> float:
                return row0 + min(max((q - p0) / (p1 - p0), 0.0), 1.0) * (row1 - row0)

            while cur < end:
                line = cur // eps
                off = (line - self.start) % lt
                if off < self.active:  # own line in the window: hits up to the window's end
                    cur = (line + self.active - off) * eps
                    continue
                seg = min(end, (line + 1) * eps)
                self._serve(cur, seg, row_of)
                cur = seg
            return
        starts, ends = flipped
        nrow = len(starts)
        r = nrow - 1
        while r >= 0:
            q, e = int(starts[r]), int(ends[r])
            if e > q:
                self._serve(q, e, row0 + (nrow - 1 - r))
                first = q // eps
                off = (first - self.start) % lt
                if off < self.active:  # rows from the window's start up to this one are hits
                    r_next = int(np.searchsorted(starts, (first - off) * eps, side="left")) - 1
                    r = min(r - 1, r_next)
                    continue
            r -= 1

    def run(self, p0: float, p1: float, eps: int, row0: float, row1: float,
            flipped: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Demand valid positions ``[p0, p1)`` over rows ``[row0, row1)``.

        ``flipped is None``: forward, in prefetch order. Otherwise a flipped fold: ``(starts, ends)``
        of its rows in ascending positions (forward inside a row), demanded last row first, one row
        per cycle from ``row0``.
        """
        if self.dup is not None:
            self._run_copies(p0, p1, row0, row1, flipped)
            return
        lt = self.lt
        if flipped is None:
            if p1 <= p0:
                return
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
        starts, ends = flipped
        nrow = len(starts)
        r = nrow - 1
        while r >= 0:
            q, e = int(starts[r]), int(ends[r])
            if e <= q:  # a row of padding only
                r -= 1
                continue
            time = row0 + (nrow - 1 - r)
            last = (e - 1) // eps
            for line in range(q // eps, last + 1):
                self._reach(line % lt, time)
            # rows below r that start at or above the window's start are hits
            start_line = last - (last - self.start) % lt
            r_next = int(np.searchsorted(starts, start_line * eps, side="left")) - 1
            r = min(r - 1, r_next)


def _inbounds(a: dict[str, int], pix: np.ndarray, tap: np.ndarray) -> np.ndarray:
    """Whether im2col entry (ofmap pixel, window index) reads inside the ifmap (else SCALE-Sim's -1)."""
    st, c = a["stride"], a["channels"] // a["groups"]
    ew = -(-(a["ifmap_w"] - a["filter_w"] + st) // st)
    oy, ox = np.divmod(pix, ew)
    r, rem = np.divmod(tap, a["filter_w"] * c)
    s = rem // c
    return (oy * st + r < a["ifmap_h"]) & (ox * st + s < a["ifmap_w"])


def _diag_blocks(m_rows: int, width: int, block: int,
                 valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First and last valid positions of each block of ``block`` rows of an ``m_rows x width`` matrix
    read by anti-diagonals (SCALE-Sim's ``create_*_prefetch_mat``), skipping invalid entries (-1 for
    an empty block), and the row-major index of each valid entry in that order. ``valid`` is the
    row-major validity mask."""
    i, c = np.divmod(np.arange(m_rows * width, dtype=np.int64), width)
    d = i + c
    dl = np.minimum(np.arange(m_rows + width - 1), m_rows - 1) - np.maximum(0, np.arange(m_rows + width - 1) - width + 1) + 1
    dstart = np.concatenate(([0], np.cumsum(dl)[:-1]))
    pos = dstart[d] + (np.minimum(d, m_rows - 1) - i)
    ordered_valid = np.zeros(m_rows * width, dtype=bool)
    ordered_blk = np.empty(m_rows * width, dtype=np.int64)
    ordered_valid[pos] = valid.ravel()
    ordered_blk[pos] = i // block
    src = np.empty(m_rows * width, dtype=np.int64)
    src[pos] = np.arange(m_rows * width, dtype=np.int64)
    bv = ordered_blk[ordered_valid]
    nblk = -(-m_rows // block)
    first = np.full(nblk, -1, dtype=np.int64)
    last = np.full(nblk, -1, dtype=np.int64)
    if bv.size:
        u, idx = np.unique(bv, return_index=True)
        first[u] = idx
        u, idx = np.unique(bv[::-1], return_index=True)
        last[u] = bv.size - 1 - idx
    return first, last, src[ordered_valid]


def _runs(dataflow: str, op: str, a: dict[str, int], rows: int, cols: int
          ) -> tuple[list[tuple[float, float, float, float, Any]], int, int, _Copies | None]:
    """Demand runs ``(p0, p1, row0, row1, flipped)`` of one operand of one group (see
    :meth:`_Circle.run`), its prefetch size ``E`` (with padding), valid size ``V`` and, for an
    ifmap whose addresses repeat, where each address's copies are.

    Positions are exact: SCALE-Sim's prefetch order is rebuilt (anti-diagonal reading of the
    fold-concatenated matrix for WS/OS ifmap, OS filter and IS filter, whose consecutive folds
    interleave by ``w (w - 1) / 2`` elements; row-major blocks for the flipped WS filter and IS ifmap
    folds) with its ``-1`` entries (padding, and ifmap taps outside a ceil-sized ofmap) skipped.
    """
    px, k, n = a["px"], a["k"], a["n"]
    rf, cf = (int(v) for v in _folds(np.int64(px), np.int64(k), np.int64(n), rows, cols, dataflow))
    if dataflow == "os":
        per_fold = k + rows + cols - 2
    else:
        per_fold = 2 * rows + cols + (px if dataflow == "ws" else n) - 2
    key = (dataflow, op)
    if key in (("ws", "ifmap"), ("os", "ifmap"), ("os", "filter"), ("is", "filter")):
        # (rows of a block, block count, width, valid(row-in-block, block, column))
        if key == ("ws", "ifmap"):  # blocks of px pixels x rows taps
            blk_len, nblk, w = px, rf, rows
            i, c = np.divmod(np.arange(rf * px * w, dtype=np.int64), w)
            tap = (i // px) * w + c
            valid = (tap < k) & _inbounds(a, i % px, np.minimum(tap, k - 1))
        elif key == ("os", "ifmap"):  # blocks of K taps x rows pixels
            blk_len, nblk, w = k, rf, rows
            i, c = np.divmod(np.arange(rf * k * w, dtype=np.int64), w)
            pix = (i // k) * w + c
            valid = (pix < px) & _inbounds(a, np.minimum(pix, px - 1), i % k)
        elif key == ("os", "filter"):  # blocks of K taps x cols filters
            blk_len, nblk, w = k, cf, cols
            i, c = np.divmod(np.arange(cf * k * w, dtype=np.int64), w)
            valid = (i // k) * w + c < n
        else:  # is filter: blocks of N filters x rows taps
            blk_len, nblk, w = n, rf, rows
            i, c = np.divmod(np.arange(rf * n * w, dtype=np.int64), w)
            valid = (i // n) * w + c < k
        first, last, src = _diag_blocks(nblk * blk_len, w, blk_len, valid)
        nvalid, size = int(valid.sum()), nblk * blk_len * w
        if key == ("ws", "ifmap"):
            addr = _address(a, src // w % px, np.minimum((src // w // px) * w + src % w, k - 1))
        elif key == ("os", "ifmap"):
            addr = _address(a, np.minimum((src // w // k) * w + src % w, px - 1), src // w % k)
    else:
        if key == ("ws", "filter"):  # blocks fc: K taps x cols filters, row-major
            j = np.arange(cols)
            cnt = np.repeat((np.arange(cf)[:, None] * cols + j < n).sum(axis=1)[:, None], k, axis=1)
            size = cf * k * cols
        else:  # is ifmap: blocks fc: K taps x cols pixels, row-major
            pix = np.arange(cf)[:, None, None] * cols + np.arange(cols)[None, None, :]
            tap = np.arange(k)[None, :, None]
            ok = (pix < px) & _inbounds(a, np.minimum(pix, px - 1), tap)
            cnt = ok.sum(axis=2)
            size = cf * k * cols
            fc_i, tap_i, j_i = np.nonzero(ok)
            addr = _address(a, fc_i * cols + j_i, tap_i)
        ends = np.cumsum(cnt.ravel()).reshape(cnt.shape)
        starts = ends - cnt
        nvalid = int(cnt.sum())
    runs: list[tuple[float, float, float, float, Any]] = []
    for fc in range(cf):
        for fr in range(rf):
            base = (fc * rf + fr) * per_fold
            if key == ("ws", "filter") or key == ("is", "ifmap"):
                ur = min(rows, k - fr * rows)
                sl = slice(fr * rows, fr * rows + ur)
                runs.append((0.0, 0.0, base + rows - ur, 0.0, (starts[fc, sl], ends[fc, sl])))
                continue
            if key == ("ws", "ifmap"):
                blk, r0, r1 = fr, rows, rows + px + min(rows, k - fr * rows) - 1
            elif key == ("os", "ifmap"):
                blk, r0, r1 = fr, 0, k + min(rows, px - fr * rows) - 1
            elif key == ("os", "filter"):
                blk, r0, r1 = fc, 0, k + min(cols, n - fc * cols) - 1
            else:  # is filter
                blk, r0, r1 = fr, rows, rows + n + min(rows, k - fr * rows) - 1
            if first[blk] >= 0:
                runs.append((float(first[blk]), float(last[blk] + 1), base + r0, base + r1, None))
    copies = None
    if op == "ifmap" and nvalid:
        cp = _Copies(addr)
        copies = cp if cp.width > 1 else None
    return runs, size, nvalid, copies


def _user_reads(runs: Sequence[tuple[float, float, float, float, Any]], valid: int, size: int,
                words: int, bw: int, copies: _Copies | None = None) -> tuple[int, list[tuple[float, int]], int]:
    """(DRAM reads, slide events, lines per slide) of SCALE-Sim's ``read_buffer`` in USER mode."""
    act_el = int(math.ceil(words * 0.5))
    pre_el = words - act_el
    eps = int(math.ceil(words / 100))
    lt = valid // eps + 1
    active = min(lt, int(math.ceil(act_el / eps)))
    slide = min(lt - active, int(math.ceil(pre_el / eps)))
    circle = _Circle(lt, active, slide, eps, copies)
    if active < lt:
        for p0, p1, r0, r1, flipped in runs:
            circle.run(p0, p1, eps, r0, r1, flipped)
    pre_lines = int(math.ceil(pre_el / bw))
    first = min(int(math.ceil(act_el / bw)), int(math.ceil(size / bw)))
    return bw * (first + circle.calls * pre_lines), circle.events, pre_lines


def _demand_stream(dataflow: str, op: str, a: dict[str, int], rows: int, cols: int) -> np.ndarray:
    """Addresses one operand's demand requests, in SCALE-Sim's order (fold by fold, demand row by
    row, column by column), ``-1`` entries left out."""
    px, k, n = a["px"], a["k"], a["n"]
    rf, cf = (int(v) for v in _folds(np.int64(px), np.int64(k), np.int64(n), rows, cols, dataflow))
    keys, addrs = [], []
    for fc in range(cf):
        for fr in range(rf):
            if (dataflow, op) in (("ws", "filter"), ("is", "ifmap")):  # flipped rows, one per cycle
                i, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
                tap = fr * rows + rows - 1 - i
                if op == "filter":
                    col = fc * cols + c
                    ok = (tap < k) & (col < n)
                    addr = tap * n + col
                else:
                    pix = fc * cols + c
                    ok = (tap < k) & (pix < px)
                    ok &= _inbounds(a, np.minimum(pix, px - 1), np.minimum(tap, k - 1))
                    addr = _address(a, pix, tap)
                row = i
            else:  # skewed: element (t, c) at row t + c
                t_len = {("ws", "ifmap"): px, ("os", "ifmap"): k, ("os", "filter"): k, ("is", "filter"): n}[(dataflow, op)]
                t, c = np.meshgrid(np.arange(t_len), np.arange(max(rows, cols)), indexing="ij")
                if (dataflow, op) == ("ws", "ifmap"):
                    tap, pix = fr * rows + c, t
                    ok = (c < rows) & (tap < k)
                elif (dataflow, op) == ("os", "ifmap"):
                    tap, pix = t, fr * rows + c
                    ok = (c < rows) & (pix < px)
                elif op == "filter" and dataflow == "os":
                    tap, col = t, fc * cols + c
                    ok = (c < cols) & (col < n)
                else:  # is filter
                    tap, col = fr * rows + c, t
                    ok = (c < rows) & (tap < k)
                if op == "ifmap":
                    ok &= _inbounds(a, np.minimum(pix, px - 1), np.minimum(tap, k - 1))
                    addr = _address(a, pix, tap)
                else:
                    addr = tap * n + col
                row = t + c
            keys.append((row * (max(rows, cols) + 1) + c)[ok])  # order inside the fold
            addrs.append(addr[ok][np.argsort(keys[-1], kind="stable")])
    return np.concatenate(addrs) if addrs else np.zeros(0, dtype=np.int64)


def _calc_misses(stream: np.ndarray, window: int) -> int:
    """DRAM reads of SCALE-Sim's CALC-mode read buffer (``read_buffer_estimate_bw``) for a demand
    stream: a miss is an address not missed since the last flush, and the buffer forgets everything
    (flushes) after every ``window`` misses (50 sets of ``floor(words / 100)`` addresses)."""
    total, i0, n = 0, 0, stream.size
    while i0 < n:
        span = min(n - i0, 4 * window)
        while True:
            _, first = np.unique(stream[i0:i0 + span], return_index=True)
            if first.size >= window or i0 + span >= n:
                break
            span = min(n - i0, span * 2)
        if first.size < window:
            return total + int(first.size)
        first.sort()
        total += window
        i0 += int(first[window - 1]) + 1
    return total


def _ofmap_per_row(dataflow: str, px: int, k: int, n: int, rows: int, cols: int) -> np.ndarray:
    """Valid ofmap writes in each stall-free demand row of one group (SCALE-Sim's ofmap demand)."""
    rf, cf = (int(v) for v in _folds(np.int64(px), np.int64(k), np.int64(n), rows, cols, dataflow))
    parts = []
    for fc in range(cf):
        for fr in range(rf):
            if dataflow == "os":  # prefix K - 1, then a flipped rows x cols block (padded rows first), skewed
                ur, uc = min(rows, px - fr * rows), min(cols, n - fc * cols)
                i = np.arange(rows + cols - 1)[:, None]
                r_ = np.arange(rows)[None, :]
                cnt = ((r_ >= rows - ur) & (i - r_ >= 0) & (i - r_ < uc)).sum(axis=1)
                parts.append(np.concatenate((np.zeros(k - 1, dtype=np.int64), cnt)))
            else:  # ws/is: prefix 2 rows - 1, then T x used-cols skewed (T = px for ws, N for is)
                t = px if dataflow == "ws" else n
                uc = min(cols, (n if dataflow == "ws" else px) - fc * cols)
                i = np.arange(t + cols - 1)
                cnt = np.clip(np.minimum(i, uc - 1) - np.maximum(0, i - t + 1) + 1, 0, None)
                parts.append(np.concatenate((np.zeros(2 * rows - 1, dtype=np.int64), cnt)))
    return np.concatenate(parts).astype(np.int64)


def _stalls(events: dict[str, list[tuple[float, int]]], pre_lines: dict[str, int],
            ofmap_rows: np.ndarray | None = None, ofmap_words: int = 0, bw: int = 1) -> int:
    """Stall cycles of SCALE-Sim's USER mode.

    Read buffers: the slide events (see the module docstring). Ofmap (``write_buffer``): once more
    than half the SRAM holds undrained words and no drain is running, a drain of
    ``ceil(half / bw)`` lines starts at that row's cycle (its words are freed at once, it ends
    ``lines - 1`` cycles later); a row that fills the SRAM while a drain runs waits for its end, and
    the next drain starts then. A row's stall is the largest of the three (``service_memory_requests``).
    """
    reads = sorted((int(row), op, kk) for op, evs in events.items() for row, kk in evs)
    cum = None
    if ofmap_rows is not None and ofmap_rows.size:
        cum = np.concatenate(([0], np.cumsum(ofmap_rows)))  # words stored before row t: cum[t]
        n_rows = ofmap_rows.size
        act = int(math.ceil(ofmap_words * 0.5))
        drain = ofmap_words - act
        chunk = int(math.ceil(drain / bw)) * bw
    total, i, t = 0, 0, 0
    drained, drain_end = 0, -(10 ** 18)
    while True:
        # next ofmap event row (stall-free), scanning from row t
        o_row, o_kind = None, None
        while cum is not None and t < n_rows and o_row is None:
            if t + total < drain_end:  # draining: does the SRAM fill before the drain ends?
                full = int(np.searchsorted(cum, drained + ofmap_words, side="left")) - 1
                end_row = drain_end - total
                if full < min(end_row, n_rows):
                    o_row, o_kind = max(full, t), "full"
                else:
                    t = max(t, end_row)
            else:
                start = int(np.searchsorted(cum, drained + drain, side="right")) - 1
                if start >= n_rows:
                    break
                o_row, o_kind = max(start, t), "start"
        r_row = reads[i][0] if i < len(reads) else None
        if o_row is None and r_row is None:
            return total
        row = min(x for x in (o_row, r_row) if x is not None)
        cyc = row + total
        off = {"ifmap": 1, "filter": 1}
        while i < len(reads) and reads[i][0] == row:
            _, op, kk = reads[i]
            pot = -1 + kk * (pre_lines[op] + 1) - (cyc + off[op])
            off[op] += pot + max(pot, 0)
            i += 1
        ostall = 0
        if o_row == row:
            used = int(cum[row + 1]) - drained
            begin = cyc
            if o_kind == "full":
                ostall = max(drain_end - cyc, 0)
                begin = drain_end
            amount = min(chunk, used)
            drained += amount
            drain_end = begin + int(math.ceil(amount / bw)) - 1
        total += max(0, off["ifmap"] - 1, off["filter"] - 1, ostall)
        t = row + 1


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
                    di[j] = _calc_misses(_demand_stream(dataflow, "ifmap", one, rows, cols), win_i)
                if uniq_f[j] > win_f:
                    df[j] = _calc_misses(_demand_stream(dataflow, "filter", one, rows, cols), win_f)
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
            runs, size, valid, copies = _runs(dataflow, op, one, rows, cols)
            reads[op], events[op], lines[op] = _user_reads(runs, valid, size, int(words), bw, copies)
        di.append(reads["ifmap"])
        df.append(reads["filter"])
        orows = _ofmap_per_row(dataflow, one["px"], one["k"], one["n"], rows, cols)
        st.append(_stalls(events, lines, orows, int(sram_words[2]), bw))
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
