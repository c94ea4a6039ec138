"""SCALE-Sim's operand orders for WS/OS/IS systolic arrays: prefetch positions, demand streams and
ofmap writes per demand row (numpy only; used by :mod:`hw_space.traffic`).

Rebuilt from ``scalesim/compute/systolic_compute_{ws,os,is}.py`` (``create_*_prefetch_mat``,
``create_*_demand_mat``) and ``scalesim/compute/operand_matrix.py`` (im2col addresses, ``-1`` for
taps outside the ifmap of a ceil-sized ofmap), ``scalesim`` 3.0.0. Per group; ``a`` is one layer's
:func:`hw_space.systolic.layer_arrays` row as ints plus ``px``, ``k``, ``n`` (GEMM dims).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def cdiv(a: Any, b: Any) -> Any:
    return -(-a // b)


def folds(px: np.ndarray, k: np.ndarray, n: np.ndarray, rows: int, cols: int,
           dataflow: str) -> tuple[np.ndarray, np.ndarray]:
    if dataflow == "ws":
        return cdiv(k, rows), cdiv(n, cols)
    if dataflow == "os":
        return cdiv(px, rows), cdiv(n, cols)
    return cdiv(k, rows), cdiv(px, cols)


def address(a: dict[str, int], pix: np.ndarray, tap: np.ndarray) -> np.ndarray:
    """SCALE-Sim's ifmap address (less its offset) of im2col entries inside the ifmap."""
    st, c, w = a["stride"], a["channels"] // a["groups"], a["ifmap_w"]
    ew = -(-(w - a["filter_w"] + st) // st)
    oy, ox = np.divmod(pix, ew)
    r, rem = np.divmod(tap, a["filter_w"] * c)
    s, ch = np.divmod(rem, c)
    return ((oy * st + r) * w + ox * st + s) * c + ch


def inbounds(a: dict[str, int], pix: np.ndarray, tap: np.ndarray) -> np.ndarray:
    """Whether im2col entry (ofmap pixel, window index) reads inside the ifmap (else SCALE-Sim's -1)."""
    st, c = a["stride"], a["channels"] // a["groups"]
    ew = -(-(a["ifmap_w"] - a["filter_w"] + st) // st)
    oy, ox = np.divmod(pix, ew)
    r, rem = np.divmod(tap, a["filter_w"] * c)
    s = rem // c
    return (oy * st + r < a["ifmap_h"]) & (ox * st + s < a["ifmap_w"])


def diag_blocks(m_rows: int, width: int, block: int,
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


def runs(dataflow: str, op: str, a: dict[str, int], rows: int, cols: int
          ) -> tuple[list[tuple[float, float, float, float, Any, Any]], int, int, np.ndarray | None]:
    """Demand runs ``(p0, p1, row0, row1, flipped, timing)`` of one operand of one group (see
    :meth:`hw_space.scalesim_buffers.Circle.run`), its prefetch size ``E`` (with padding), valid size
    ``V`` and, for the ifmap, the address at each valid position (its copies can be searched).

    Positions are exact: SCALE-Sim's prefetch order is rebuilt (anti-diagonal reading of the
    fold-concatenated matrix for WS/OS ifmap, OS filter and IS filter, whose consecutive folds
    interleave by ``w (w - 1) / 2`` elements; row-major blocks for the flipped WS filter and IS ifmap
    folds) with its ``-1`` entries (padding, and ifmap taps outside a ceil-sized ofmap) skipped.
    """
    px, k, n = a["px"], a["k"], a["n"]
    rf, cf = (int(v) for v in folds(np.int64(px), np.int64(k), np.int64(n), rows, cols, dataflow))
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
            valid = (tap < k) & inbounds(a, i % px, np.minimum(tap, k - 1))
        elif key == ("os", "ifmap"):  # blocks of K taps x rows pixels
            blk_len, nblk, w = k, rf, rows
            i, c = np.divmod(np.arange(rf * k * w, dtype=np.int64), w)
            pix = (i // k) * w + c
            valid = (pix < px) & inbounds(a, np.minimum(pix, px - 1), i % k)
        elif key == ("os", "filter"):  # blocks of K taps x cols filters
            blk_len, nblk, w = k, cf, cols
            i, c = np.divmod(np.arange(cf * k * w, dtype=np.int64), w)
            valid = (i // k) * w + c < n
        else:  # is filter: blocks of N filters x rows taps
            blk_len, nblk, w = n, rf, rows
            i, c = np.divmod(np.arange(rf * n * w, dtype=np.int64), w)
            valid = (i // n) * w + c < k
        first, last, src = diag_blocks(nblk * blk_len, w, blk_len, valid)
        diag = src // w + src % w  # anti-diagonal of each valid position: its skewed demand row
        nvalid, size = int(valid.sum()), nblk * blk_len * w
        if key == ("ws", "ifmap"):
            addr = address(a, src // w % px, np.minimum((src // w // px) * w + src % w, k - 1))
        elif key == ("os", "ifmap"):
            addr = address(a, np.minimum((src // w // k) * w + src % w, px - 1), src // w % k)
    else:
        if key == ("ws", "filter"):  # blocks fc: K taps x cols filters, row-major
            j = np.arange(cols)
            cnt = np.repeat((np.arange(cf)[:, None] * cols + j < n).sum(axis=1)[:, None], k, axis=1)
            size = cf * k * cols
        else:  # is ifmap: blocks fc: K taps x cols pixels, row-major
            pix = np.arange(cf)[:, None, None] * cols + np.arange(cols)[None, None, :]
            tap = np.arange(k)[None, :, None]
            ok = (pix < px) & inbounds(a, np.minimum(pix, px - 1), tap)
            cnt = ok.sum(axis=2)
            size = cf * k * cols
            fc_i, tap_i, j_i = np.nonzero(ok)
            addr = address(a, fc_i * cols + j_i, tap_i)
        ends = np.cumsum(cnt.ravel()).reshape(cnt.shape)
        starts = ends - cnt
        nvalid = int(cnt.sum())
    runs: list[tuple[float, float, float, float, Any, Any]] = []
    for fc in range(cf):
        for fr in range(rf):
            base = (fc * rf + fr) * per_fold
            if key == ("ws", "filter") or key == ("is", "ifmap"):
                ur = min(rows, k - fr * rows)
                sl = slice(fr * rows, fr * rows + ur)
                runs.append((0.0, 0.0, base + rows - ur, 0.0, (starts[fc, sl], ends[fc, sl]), None))
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
                # element (t, c) of block blk is demanded at row base + prefix + t + c, where
                # t + c = its anti-diagonal - blk * blk_len and prefix = r0
                runs.append((float(first[blk]), float(last[blk] + 1), base + r0, base + r1, None,
                             (diag, base + r0 - blk * blk_len)))
    return runs, size, nvalid, (addr if op == "ifmap" else None)


def demand_stream(dataflow: str, op: str, a: dict[str, int], rows: int, cols: int) -> np.ndarray:
    """Addresses one operand's demand requests, in SCALE-Sim's order (fold by fold, demand row by
    row, column by column), ``-1`` entries left out."""
    px, k, n = a["px"], a["k"], a["n"]
    rf, cf = (int(v) for v in folds(np.int64(px), np.int64(k), np.int64(n), rows, cols, dataflow))
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
                    ok &= inbounds(a, np.minimum(pix, px - 1), np.minimum(tap, k - 1))
                    addr = address(a, pix, tap)
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
                    ok &= inbounds(a, np.minimum(pix, px - 1), np.minimum(tap, k - 1))
                    addr = address(a, pix, tap)
                else:
                    addr = tap * n + col
                row = t + c
            keys.append((row * (max(rows, cols) + 1) + c)[ok])  # order inside the fold
            addrs.append(addr[ok][np.argsort(keys[-1], kind="stable")])
    return np.concatenate(addrs) if addrs else np.zeros(0, dtype=np.int64)


def ofmap_per_row(dataflow: str, px: int, k: int, n: int, rows: int, cols: int) -> np.ndarray:
    """Valid ofmap writes in each stall-free demand row of one group (SCALE-Sim's ofmap demand)."""
    rf, cf = (int(v) for v in folds(np.int64(px), np.int64(k), np.int64(n), rows, cols, dataflow))
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


__all__ = ["address", "cdiv", "demand_stream", "diag_blocks", "folds", "inbounds", "ofmap_per_row", "runs"]
