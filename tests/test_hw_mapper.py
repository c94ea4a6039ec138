"""The per-layer buffer mapper (hw_space.mapper): reuse analysis against a literal loop-nest
simulation, capacity, a hand-checked layer, and never worse than the fixed tiling in the cost model."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from hw_space import AcceleratorSpec, CostModel, Layer, mobilenet, resnet18
from hw_space.mapper import ORDERS, BufferMapper, fixed_dram_words, mapping_traffic, search_tiling
from hw_space.systolic import layer_arrays

SPEC = AcceleratorSpec(rows=12, cols=14, rf_bytes=64, gbuf_bytes=32 * 1024, dataflow="ws", dram_bw=8.0,
                       noc_bw=64.0, clock_mhz=400.0, precision_bits=8)
MIXED = [Layer("conv", 30, 30, 3, 3, 32, 64), Layer("pw", 14, 14, 1, 1, 96, 24), Layer("fc", 1, 1, 1, 1, 512, 1000),
         Layer("dw", 58, 58, 3, 3, 64, 64, stride=2, groups=64), Layer("s2", 29, 29, 3, 3, 48, 96, stride=2),
         Layer("big", 58, 58, 3, 3, 128, 128), Layer("k7", 230, 230, 7, 7, 3, 64, stride=2)]


def _simulate(layer: Layer, batch: int, order: str, mt: int, ct: int, pt: int, nt: int) -> tuple[int, int, int]:
    """DRAM words (weights, ifmap, outputs) of a literal run of the tiled loop nest: the buffer holds
    one tile per operand; a tile is loaded when the tile the loops need changes, an output tile is
    written back when evicted and read back when it was written before (partial sums)."""
    a = layer_arrays([layer])
    m, c = layer.num_filter // layer.groups, layer.channels // layer.groups
    u, r, s = layer.stride, layer.filter_h, layer.filter_w
    e = -(-(layer.ifmap_h - r + u) // u)
    f = -(-(layer.ifmap_w - s + u) // u)
    del a
    tiles = {"m": range(0, m, mt), "c": range(0, c, ct), "p": [(n0, e0) for n0 in range(0, batch, nt) for e0 in range(0, e, pt)]}
    words = {"w": 0, "i": 0, "o": 0}
    res: dict[str, object] = {"w": None, "i": None, "o": None}
    written: set[object] = set()

    def o_size(key: tuple[int, int, int]) -> int:
        m0, n0, e0 = key
        return min(mt, m - m0) * min(nt, batch - n0) * min(pt, e - e0) * f

    for idx in itertools.product(*(tiles[k] for k in order)):
        at = dict(zip(order, idx))
        m0, c0, (n0, e0) = at["m"], at["c"], at["p"]
        mm, cc, nn, ee = min(mt, m - m0), min(ct, c - c0), min(nt, batch - n0), min(pt, e - e0)
        if res["w"] != (m0, c0):
            res["w"] = (m0, c0)
            words["w"] += mm * cc * r * s
        if res["i"] != (c0, n0, e0):
            res["i"] = (c0, n0, e0)
            words["i"] += nn * cc * min(layer.ifmap_h, (ee - 1) * u + r) * layer.ifmap_w
        key = (m0, n0, e0)
        if res["o"] != key:
            if res["o"] is not None:
                words["o"] += o_size(res["o"])  # write back the evicted tile
                written.add(res["o"])
            if key in written:
                words["o"] += o_size(key)  # read its partial sums back
            res["o"] = key
    words["o"] += o_size(res["o"])
    return words["w"], words["i"], words["o"]


@pytest.mark.parametrize("layer", [Layer("a", 9, 9, 3, 3, 6, 10), Layer("b", 11, 8, 3, 2, 5, 7, stride=2),
                                   Layer("c", 6, 6, 1, 1, 8, 3), Layer("dw", 10, 10, 3, 3, 4, 4, groups=4)])
def test_reuse_analysis_matches_a_literal_loop_nest(layer: Layer) -> None:
    rng = np.random.default_rng(0)
    a = layer_arrays([layer])
    m, c = layer.num_filter // layer.groups, layer.channels // layer.groups
    e = -(-(layer.ifmap_h - layer.filter_h + layer.stride) // layer.stride)
    for order in ORDERS:
        for _ in range(6):
            batch = int(rng.integers(1, 4))
            mt, ct, pt = int(rng.integers(1, m + 1)), int(rng.integers(1, c + 1)), int(rng.integers(1, e + 1))
            nt = int(rng.integers(1, batch + 1)) if pt == e else 1
            got = mapping_traffic(a, batch, order, mt, ct, pt, nt)
            want = _simulate(layer, batch, order, mt, ct, pt, nt)
            assert (int(got["weights"][0]), int(got["ifmap"][0]), int(got["outputs"][0])) == want, (order, mt, ct, pt, nt)


def test_hand_checked_pointwise_layer() -> None:
    # 1x1 conv, 4x4 pixels, 8 -> 8 channels: weights 64, ifmap 128, outputs 128 words
    a = layer_arrays([Layer("pw", 4, 4, 1, 1, 8, 8)])
    # c outer in 2 chunks, one output row per tile: psums spilled once (written 2x, read 1x)
    t = mapping_traffic(a, 1, "cpm", 8, 4, 1)
    assert (int(t["weights"][0]), int(t["ifmap"][0]), int(t["outputs"][0])) == (64, 128, 3 * 128)
    assert int(t["footprint"][0]) == 8 * 4 + 4 * 4 + 8 * 4
    # 128 words hold all weights + one input row + one output row: every word moves once (320)
    best = search_tiling(a, 1, 128)
    assert int(best["dram_words"][0]) == 320 and int(best["footprint"][0]) == 128
    assert (int(best["mt"][0]), int(best["ct"][0]), int(best["pt"][0])) == (8, 8, 1)
    # one word less and some operand must move twice (moving each once needs M and C untiled)
    assert int(search_tiling(a, 1, 127)["dram_words"][0]) > 320


@pytest.mark.parametrize("cap", [300, 2048, 9000, 65536])
def test_search_respects_buffer_capacity(cap: int) -> None:
    a = layer_arrays(MIXED)
    got = search_tiling(a, 2, cap)
    ok = got["dram_words"] < np.iinfo(np.int64).max // 4
    assert np.all(got["footprint"][ok] <= cap)
    for i in np.nonzero(ok)[0]:  # the reported words are those of the reported mapping
        sub = {k: v[i:i + 1] for k, v in a.items()}
        t = mapping_traffic(sub, 2, ORDERS[got["order"][i]], got["mt"][i], got["ct"][i], got["pt"][i], got["nt"][i])
        assert int(t["total"][0]) == got["dram_words"][i] and int(t["footprint"][0]) == got["footprint"][i]
    # a buffer per operand: each tile fits its own
    caps = (cap // 4, cap // 2, cap // 4)
    per = search_tiling(a, 2, caps)
    ok = per["dram_words"] < np.iinfo(np.int64).max // 4
    for i in np.nonzero(ok)[0]:
        sub = {k: v[i:i + 1] for k, v in a.items()}
        mt, ct, pt, nt = per["mt"][i], per["ct"][i], per["pt"][i], per["nt"][i]
        m = MIXED[i]
        strip = min(m.ifmap_h, (pt - 1) * m.stride + m.filter_h)
        e = -(-(m.ifmap_h - m.filter_h + m.stride) // m.stride)
        f = -(-(m.ifmap_w - m.filter_w + m.stride) // m.stride)
        assert mt * ct * m.filter_h * m.filter_w <= caps[0] and nt * ct * strip * m.ifmap_w <= caps[1]
        assert nt * mt * pt * f <= caps[2] and pt <= e
        assert mapping_traffic(sub, 2, ORDERS[per["order"][i]], mt, ct, pt, nt)["total"][0] == per["dram_words"][i]


@pytest.mark.parametrize("df", ["ws", "os", "is", "rs"])
@pytest.mark.parametrize("gbuf_kb", [8, 32, 256])
def test_cost_model_with_mapper_never_worse(df: str, gbuf_kb: int) -> None:
    spec = dataclasses.replace(SPEC, dataflow=df, gbuf_bytes=gbuf_kb * 1024)
    mapper = BufferMapper()
    layers = MIXED[:-1] + resnet18() + mobilenet() if gbuf_kb > 8 else MIXED[:-1]
    for batch in (1, 3):
        fixed = CostModel(spec).layers(layers, batch)
        found = CostModel(spec, mapper=mapper).layers(layers, batch)
        assert np.all(found["dram_bytes"] <= fixed["dram_bytes"])
        assert np.all(found["energy_uj"] <= fixed["energy_uj"] * (1 + 1e-12))
        assert np.all(found["total_cycles"] <= fixed["total_cycles"])
        np.testing.assert_array_equal(found["compute_cycles"], fixed["compute_cycles"])
        np.testing.assert_array_equal(found["noc_bytes"], fixed["noc_bytes"])
    # the fixed schedules are candidates: where the search does not beat them, it equals them
    a = layer_arrays(MIXED[:-1])
    cap = spec.gbuf_bytes // (spec.precision_bits // 8)
    plan = mapper.plan(a, 1, cap)
    assert np.all(plan["dram_words"] <= fixed_dram_words(a, 1, cap).min(axis=0))
    if gbuf_kb == 8:  # a small buffer: the search strictly wins somewhere
        assert np.any(plan["dram_words"] < fixed_dram_words(a, 1, cap).min(axis=0))


def test_mapper_cache_and_bad_input() -> None:
    mapper = BufferMapper()
    a = layer_arrays(MIXED)
    first = mapper.plan(a, 1, 4096)
    assert len(mapper) == len(MIXED)
    again = mapper.plan(a, 1, 4096)
    np.testing.assert_array_equal(first["dram_words"], again["dram_words"])
    assert again["mapping"] == first["mapping"] and len(mapper) == len(MIXED)
    mapper.plan(a, 1, 8192)
    assert len(mapper) == 2 * len(MIXED)
    mapper.clear()
    assert len(mapper) == 0
    for bad in (0, (1, 2), -5):
        with pytest.raises(ValueError, match="cap_words"):
            search_tiling(a, 1, bad)
    with pytest.raises(ValueError, match="order"):
        mapping_traffic(a, 1, "mmp", 1, 1, 1)
