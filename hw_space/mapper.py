"""Per-layer mapper of the DRAM <-> global-buffer level: loop order and tile sizes (numpy only).

For every layer, :class:`BufferMapper` picks the loop order and tiling of the buffer level that
moves the fewest words between DRAM and the global buffer, among those whose tiles fit the buffer.

**The loop nest.** One group of a conv layer is the loop nest over ``m`` (filters, ``M``), ``c``
(input channels, ``C``) and ``p`` (output pixels: ``N`` images x ``E`` output rows of ``F``
columns). The buffer holds one tile of each operand: ``Mt x Ct x R x S`` weights,
``Nt x Ct x ((Pt - 1) * stride + R) x W`` ifmap words (an input strip, halo rows included) and
``Nt x Mt x Pt x F`` output words (partial sums in the buffer); a tile of several images
(``Nt > 1``) holds whole images (``Pt = E``). The tile loops run in one of the 6 orders of
``(m, c, p)``. An operand's tile is re-fetched whenever a loop it does not depend on iterates
above the innermost loop it does depend on (the usual reuse analysis of Timeloop / ZigZag for one
memory level), so its DRAM traffic is its size times the trip counts of those loops:

* weights (depend on ``m, c``) x ``n_p`` unless ``p`` is below every weight loop that iterates;
* ifmap (depends on ``c, p``; halo rows re-read between pixel tiles) x ``n_m`` likewise;
* outputs (depend on ``m, p``): if ``c`` iterates above them, partial sums are spilled: written
  ``n_c`` times and read back ``n_c - 1`` times, ``O * (2 n_c - 1)``.

Loops with one trip are no loops, so an operand whose tile is the whole tensor is fetched once.

**Why this mapper.** Exhaustive search over a pruned grid, vectorised: trip counts ``n`` of each
of ``m``, ``c`` and the output rows are the powers of two up to the dimension (plus the
dimension itself), each with the smallest tile that gives it, ``ceil(D / n)`` (the traffic depends
on the trip counts only, so the smallest tile per trip count dominates every other); images per
tile likewise. All 6 loop orders are scored in closed form for every grid point, for all layers at
once. A closed-form optimum exists only per order and without the capacity constraint; a random
(Timeloop-like) sampler would miss the best point of a grid this small. Cost: ``O(L * g^3 * 6)``
numpy element operations for ``L`` distinct layers with ``g = log2(max dim) + 2`` grid points per
dimension (~1500 points x 6 orders per layer); the result depends on the layer, the batch and the
buffer capacity only, so it is cached per instance: a codesign search, which costs thousands of
designs sharing a few buffer sizes and layers, maps each (layer, capacity) once.

**Why minimum DRAM words is minimum EDP.** With the array-level mapping fixed by the dataflow
(compute cycles and NoC words as :mod:`hw_space.cost` computes them), a layer's energy grows with
its DRAM words (DRAM access + global-buffer fill per word) and its latency
``max(compute, DRAM, NoC cycles)`` never falls as DRAM words grow; so the tiling with the fewest
DRAM words minimises the layer's energy, latency and EDP at once.

**Never worse than the fixed tiling.** The four schedules of :mod:`hw_space.cost` (and its
"everything fits" case) are candidates too (labelled ``fixed:...``); :mod:`hw_space.cost` takes the
minimum of the two, so a layer's DRAM traffic with the mapper is never above today's.

Example:
    >>> from hw_space.workload import Layer
    >>> from hw_space.systolic import layer_arrays
    >>> a = layer_arrays([Layer("conv", 58, 58, 3, 3, 64, 64)])  # a ResNet-18 conv2 layer, padded
    >>> plan = BufferMapper().plan(a, 1, 16 * 1024)  # a 16 K-word buffer
    >>> plan["mapping"][0], int(plan["dram_words"][0]), int(fixed_dram_words(a, 1, 16 * 1024).min())
    ('order mpc, tile M64 C2 P4 N1', 1028608, 1314048)
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: The 6 loop orders of the buffer level, outer -> inner.
ORDERS: tuple[str, ...] = tuple("".join(o) for o in itertools.permutations("mcp"))
_FIXED = ("fixed:out-by-filter", "fixed:out-by-pixel", "fixed:weights-resident", "fixed:ifmap-resident")


def _cdiv(a: Any, b: Any) -> np.ndarray:
    return -(-np.asarray(a, dtype=np.int64) // np.asarray(b, dtype=np.int64))


def _trip_grid(dim: np.ndarray) -> np.ndarray:
    """(L, G) trip counts: the powers of two below each dimension, then the dimension itself
    (repeated to fill ``G``, the count the largest dimension needs)."""
    bits = int(np.max(dim)).bit_length() + 1 if dim.size else 1
    pw = np.int64(2) ** np.arange(bits, dtype=np.int64)
    return np.minimum(pw[None, :], dim[:, None]).astype(np.int64)


def _dims(a: Mapping[str, np.ndarray], batch: int) -> dict[str, np.ndarray]:
    """Per-group loop bounds of each layer: m, c, e (output rows), f (output cols), n (images),
    r, s (filter), h, w (ifmap), u (stride)."""
    g = a["groups"]
    big_r, big_s, hin, win, u = (np.asarray(a[k], dtype=np.int64) for k in
                                 ("filter_h", "filter_w", "ifmap_h", "ifmap_w", "stride"))
    e = _cdiv(hin - big_r + u, u)
    return {"m": np.asarray(a["num_filter"] // g, dtype=np.int64), "c": np.asarray(a["channels"] // g, dtype=np.int64),
            "e": e, "f": _cdiv(win - big_s + u, u), "n": np.full_like(e, int(batch)), "r": big_r, "s": big_s,
            "h": hin, "w": win, "u": u}


def _nest(d: Mapping[str, np.ndarray], mt: np.ndarray, ct: np.ndarray, pt: np.ndarray,
          nt: np.ndarray) -> dict[str, Any]:
    """Tiles, whole-tensor words and trip counts of the tiling ``(mt, ct, pt, nt)`` (arrays with
    layers on axis 0, broadcasting against each other)."""
    extra = np.broadcast(mt, ct, pt, nt).ndim - 1
    col = lambda v: v.reshape(v.shape + (1,) * extra)  # noqa: E731
    m, c, e, f, n, r, s, h, w, u = (col(d[k]) for k in ("m", "c", "e", "f", "n", "r", "s", "h", "w", "u"))
    n_m, n_c, n_e, n_n = _cdiv(m, mt), _cdiv(c, ct), _cdiv(e, pt), _cdiv(n, nt)
    strip = np.minimum(h, (pt - 1) * u + r)
    last = e - (n_e - 1) * pt  # output rows of the last (partial) pixel tile
    rows = (n_e - 1) * strip + np.minimum(h, (last - 1) * u + r)  # ifmap rows read per image, halos included
    return {"tiles": (mt * ct * r * s, nt * ct * strip * w, nt * mt * pt * f),
            "all": (m * c * r * s, n * c * w * rows, n * e * f * m),
            "trips": {"m": n_m, "c": n_c, "p": n_e * n_n},
            "valid": (nt == 1) | (pt == e)}  # several images per tile only as whole images


_DEPS = {"w": "mc", "i": "cp", "o": "mp"}


def _order_words(nest: Mapping[str, Any], order: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DRAM words (weights, ifmap, outputs) of ``nest`` under the loop ``order`` (outer -> inner)."""
    trips = nest["trips"]
    mult = {}
    for op, dep in _DEPS.items():
        k: Any = 1
        seen = False  # an iterating loop the operand depends on, at or below this one
        for loop in reversed(order):  # inner -> outer
            t = trips[loop]
            if loop in dep:
                seen = seen | (t > 1)
            else:
                k = np.where(seen, k * t, k)
        mult[op] = np.asarray(k, dtype=np.int64)
    w_all, i_all, o_all = nest["all"]
    return w_all * mult["w"], i_all * mult["i"], o_all * (2 * mult["o"] - 1)


def mapping_traffic(a: Mapping[str, np.ndarray], batch: int, order: str, mt: Any, ct: Any, pt: Any,
                    nt: Any = 1) -> dict[str, np.ndarray]:
    """DRAM words of one given mapping of each layer (one group): ``weights, ifmap, outputs``,
    ``total`` and the tile ``footprint`` in words. Tiles are clipped to the layer's dimensions.

    Example:
        >>> from hw_space.workload import Layer
        >>> from hw_space.systolic import layer_arrays
        >>> t = mapping_traffic(layer_arrays([Layer("pw", 4, 4, 1, 1, 8, 8)]), 1, "mcp", 8, 8, 1)
        >>> int(t["total"][0]), int(t["footprint"][0])  # everything once; whole weights + one row
        (320, 128)
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}, got {order!r}")
    d = _dims(a, batch)
    clip = lambda t, k: np.clip(np.broadcast_to(np.asarray(t, dtype=np.int64), d[k].shape), 1, d[k])  # noqa: E731
    nest = _nest(d, clip(mt, "m"), clip(ct, "c"), clip(pt, "e"), clip(nt, "n"))
    if not np.all(nest["valid"]):
        raise ValueError("a tile of several images (nt > 1) must hold whole images (pt = output rows)")
    w, i, o = _order_words(nest, order)
    return {"weights": w, "ifmap": i, "outputs": o, "total": w + i + o, "footprint": sum(nest["tiles"])}


def fixed_dram_words(a: Mapping[str, np.ndarray], batch: int, cap_words: int) -> np.ndarray:
    """(5, L) DRAM words per group of :mod:`hw_space.cost`'s fixed schedules, in :data:`_FIXED`'s
    order, then "everything fits" (``W + I + O`` where it fits, else a large number)."""
    g = a["groups"]
    big_r, big_s, hin, win, s = a["filter_h"], a["filter_w"], a["ifmap_h"], a["ifmap_w"], a["stride"]
    e = _cdiv(hin - big_r + s, s)
    f = _cdiv(win - big_s + s, s)
    ch, m = a["channels"] // g, a["num_filter"] // g
    w_g, i_g, o_g = m * ch * big_r * big_s, batch * ch * hin * win, batch * e * f * m
    half = max(cap_words // 2, 1)
    n_o, n_w, n_i = _cdiv(o_g, half), _cdiv(w_g, half), _cdiv(i_g, half)
    nc_w, nc_i = _cdiv(big_r * big_s * ch, half), _cdiv(big_r * win * ch, half)
    big = np.iinfo(np.int64).max // 4
    return np.stack([o_g + w_g + n_o * i_g, o_g + i_g + n_o * w_g, w_g + n_w * i_g + o_g * (2 * nc_w - 1),
                     i_g + n_i * w_g + o_g * (2 * nc_i - 1),
                     np.where(w_g + i_g + o_g <= cap_words, w_g + i_g + o_g, big)])


def search_tiling(a: Mapping[str, np.ndarray], batch: int, cap_words: int | Sequence[int]) -> dict[str, np.ndarray]:
    """The searched mapping of each layer (one group): fewest DRAM words over loop orders x tiles.

    Args:
        a: :func:`hw_space.systolic.layer_arrays` columns of ``L`` layers.
        batch: images per run, >= 1.
        cap_words: buffer capacity in words: one number (the three tiles share it) or three
            ``(weights, ifmap, outputs)`` (a buffer per operand).
    Returns:
        int64 arrays of length ``L``: ``dram_words`` (per group; a huge number when not even the
        smallest tile fits), ``order`` (index into :data:`ORDERS`), ``mt, ct, pt, nt`` (tile:
        filters, channels, output rows, images), ``weights, ifmap, outputs`` (DRAM words of each,
        outputs counting spilled psum reads and writes), ``footprint`` (tile words).
    """
    caps = np.asarray(cap_words, dtype=np.int64).ravel()
    if caps.size not in (1, 3) or np.any(caps < 1):
        raise ValueError(f"cap_words must be one positive number or three (weights, ifmap, outputs), got {cap_words!r}")
    dims = _dims(a, batch)
    m, ch, e, nb = dims["m"], dims["c"], dims["e"], dims["n"]
    # trip-count grids (L, G) -> smallest tiles; axes of the score arrays: (L, Gm, Gc, Gp, Gn)
    tm, tc, tp, tn = (_cdiv(d[:, None], _trip_grid(d)) for d in (m, ch, e, nb))
    nest = _nest(dims, tm[:, :, None, None, None], tc[:, None, :, None, None], tp[:, None, None, :, None],
                 tn[:, None, None, None, :])
    w_t, i_t, o_t = nest["tiles"]
    if caps.size == 1:
        fits = (w_t + i_t + o_t) <= caps[0]
    else:
        fits = (w_t <= caps[0]) & (i_t <= caps[1]) & (o_t <= caps[2])
    fits = fits & nest["valid"]
    big = np.iinfo(np.int64).max // 4
    per_order = []
    for order in ORDERS:
        words = _order_words(nest, order)
        per_order.append((np.where(fits, words[0] + words[1] + words[2], big), words))
    totals = np.stack([t for t, _ in per_order])  # (6, L, Gm, Gc, Gp, Gn)
    n_layers = e.shape[0]
    flat = totals.transpose(1, 0, 2, 3, 4, 5).reshape(n_layers, -1)
    arg = flat.argmin(axis=1)
    o_i, gm, gc, gp, gn = np.unravel_index(arg, totals.shape[0:1] + totals.shape[2:])
    rows_l = np.arange(n_layers)
    grid = totals.shape[1:]
    pick = lambda arr: np.broadcast_to(arr, grid)[rows_l, gm, gc, gp, gn]  # noqa: E731
    chosen = [np.zeros(n_layers, dtype=np.int64) for _ in range(3)]
    for k, (_, words) in enumerate(per_order):
        for j in range(3):
            chosen[j] = np.where(o_i == k, pick(words[j]), chosen[j])
    return {
        "dram_words": flat[rows_l, arg].astype(np.int64), "order": o_i.astype(np.int64),
        "mt": tm[rows_l, gm], "ct": tc[rows_l, gc], "pt": tp[rows_l, gp], "nt": tn[rows_l, gn],
        "weights": chosen[0], "ifmap": chosen[1], "outputs": chosen[2],
        "footprint": (pick(w_t) + pick(i_t) + pick(o_t)).astype(np.int64),
    }


class BufferMapper:
    """Per-layer loop order and tiling of the buffer level, cached (see the module docstring).

    Pass one instance to every :class:`hw_space.cost.CostModel` of a search
    (``CostModel(spec, mapper=mapper)``) so the cache is shared. Thread-safe: the cache is guarded
    by a lock; results are immutable numpy scalars. The cache grows with the distinct
    (layer, batch, capacity) triples seen; :meth:`clear` empties it.
    """

    def __init__(self) -> None:
        self._cache: dict[tuple[Any, ...], tuple[int, str]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._cache)

    def clear(self) -> None:
        """Forget every cached mapping."""
        with self._lock:
            self._cache.clear()

    def plan(self, a: Mapping[str, np.ndarray], batch: int, cap_words: int | Sequence[int]) -> dict[str, Any]:
        """Per layer: ``dram_words`` (int64, per group: the best of the searched mapping and the
        fixed schedules) and ``mapping`` (a list of labels such as ``"order mcp, tile M32 C16
        P8 N1"`` or ``"fixed:weights-resident"``). Uncached layers are mapped in one vectorised
        call."""
        caps = tuple(int(c) for c in np.asarray(cap_words).ravel())
        keys = [(batch, caps) + tuple(int(a[f][i]) for f in _KEY_FIELDS) for i in range(len(a["ifmap_h"]))]
        with self._lock:
            missing = sorted({i for i, k in enumerate(keys) if k not in self._cache})
        if missing:
            sub = {f: np.asarray(a[f])[missing] for f in _KEY_FIELDS}
            found = search_tiling(sub, batch, caps if len(caps) == 3 else caps[0])
            fixed = fixed_dram_words(sub, batch, sum(caps))
            fx_best = fixed.min(axis=0)
            fx_arg = fixed.argmin(axis=0)
            with self._lock:
                for j, i in enumerate(missing):
                    if found["dram_words"][j] <= fx_best[j]:
                        label = (f"order {ORDERS[found['order'][j]]}, tile M{found['mt'][j]} C{found['ct'][j]} "
                                 f"P{found['pt'][j]} N{found['nt'][j]}")
                        self._cache[keys[i]] = (int(found["dram_words"][j]), label)
                    else:
                        label = "fixed:all-fits" if fx_arg[j] == 4 else _FIXED[int(fx_arg[j])]
                        self._cache[keys[i]] = (int(fx_best[j]), label)
        with self._lock:
            got = [self._cache[k] for k in keys]
        return {"dram_words": np.array([w for w, _ in got], dtype=np.int64), "mapping": [lab for _, lab in got]}

    def dram_words(self, a: Mapping[str, np.ndarray], batch: int, cap_words: int | Sequence[int]) -> np.ndarray:
        """DRAM words per group of each layer under its best mapping (:meth:`plan`)."""
        return self.plan(a, batch, cap_words)["dram_words"]


_KEY_FIELDS = ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filter", "stride", "groups")

__all__ = ["ORDERS", "BufferMapper", "fixed_dram_words", "mapping_traffic", "search_tiling"]
