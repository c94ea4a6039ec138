"""Replays of SCALE-Sim's double-buffered memories (numpy only; used by :mod:`hw_space.traffic`).

``scalesim/memory/read_buffer.py`` (USER mode: a circular window of lines over the prefetch order,
slid on each miss; :class:`Circle`, :func:`user_reads`), ``read_buffer_estimate_bw.py`` (CALC mode:
misses since the last flush; :func:`calc_misses`), ``write_buffer.py`` and
``double_buffered_scratchpad_mem.py`` (ofmap drains and the row stall rule; :func:`stalls`), from
``scalesim`` 3.0.0. See :mod:`hw_space.traffic` for the model these implement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


class Copies:
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


def _row(q: float, p0: float, p1: float, row0: float, row1: float, timing: Any) -> float:
    """Demand row at which a forward run reaches position ``q`` (clamped to the run)."""
    if timing is not None:
        diag, base = timing
        qi = int(min(max(q, p0), p1 - 1))
        return min(max(base + float(diag[qi]), row0), row1)
    return row0 + min(max((q - p0) / (p1 - p0), 0.0), 1.0) * (row1 - row0)


class Circle:
    """SCALE-Sim ``read_buffer``'s circular window over ``Lt`` lines (see the module docstring)."""

    def __init__(self, lines: int, active: int, slide: int, eps: int = 1,
                 dup: Copies | None = None) -> None:
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
                    flipped: tuple[np.ndarray, np.ndarray] | None, timing: Any) -> None:
        """:meth:`run` for an operand whose addresses repeat (the im2col ifmap)."""
        eps, lt = self.eps, self.lt
        if flipped is None:
            cur, end = int(p0), int(math.ceil(p1))
            if end <= cur:
                return

            def row_of(q: int) -> float:
                return _row(q, p0, p1, row0, row1, timing)

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
            flipped: tuple[np.ndarray, np.ndarray] | None = None, timing: Any = None) -> None:
        """Demand valid positions ``[p0, p1)`` over rows ``[row0, row1)``.

        ``flipped is None``: forward, in prefetch order; ``timing`` ``(diag, base)``: position ``q``
        is demanded at row ``base + diag[q]`` (anti-diagonal prefetch, skewed demand), else at evenly
        spaced rows. Otherwise a flipped fold: ``(starts, ends)`` of its rows in ascending positions
        (forward inside a row), demanded last row first, one row per cycle from ``row0``.
        """
        if self.dup is not None:
            self._run_copies(p0, p1, row0, row1, flipped, timing)
            return
        lt = self.lt
        if flipped is None:
            if p1 <= p0:
                return
            la, lb = int(p0) // eps, int(math.ceil(p1) - 1) // eps

            def row_of(line: int) -> float:
                return _row(line * eps, p0, p1, row0, row1, timing)

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


def user_reads(runs: Sequence[tuple[float, float, float, float, Any, Any]], valid: int, size: int,
                words: int, bw: int, addr: np.ndarray | None = None) -> tuple[int, list[tuple[float, int]], int]:
    """(DRAM reads, slide events, lines per slide) of SCALE-Sim's ``read_buffer`` in USER mode."""
    act_el = int(math.ceil(words * 0.5))
    pre_el = words - act_el
    eps = int(math.ceil(words / 100))
    lt = valid // eps + 1
    active = min(lt, int(math.ceil(act_el / eps)))
    slide = min(lt - active, int(math.ceil(pre_el / eps)))
    copies = Copies(addr) if addr is not None and addr.size else None
    if copies is not None and copies.width == 1:  # no address repeats: its own line decides
        copies = None
    circle = Circle(lt, active, slide, eps, copies)
    if active < lt:
        for p0, p1, r0, r1, flipped, timing in runs:
            circle.run(p0, p1, eps, r0, r1, flipped, timing)
    pre_lines = int(math.ceil(pre_el / bw))
    first = min(int(math.ceil(act_el / bw)), int(math.ceil(size / bw)))
    return bw * (first + circle.calls * pre_lines), circle.events, pre_lines


def calc_misses(stream: np.ndarray, window: int) -> int:
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


def stalls(events: dict[str, list[tuple[float, int]]], pre_lines: dict[str, int],
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


__all__ = ["Circle", "Copies", "calc_misses", "stalls", "user_reads"]
