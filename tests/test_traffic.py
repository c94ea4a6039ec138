"""SCALE-Sim memory-system traffic and stalls (``hw_space.traffic``), the spec fields and ``hwnas hw cost``.

Golden values come from SCALE-Sim itself (no SCALE-Sim needed at test time): ``scalesim`` 3.0.0 from
PyPI (numpy 1.26.4), run 2026-12-02 on single-layer topologies through its Python API
(``scalesim.scale_sim.scalesim(save_disk_space=True)``) with the config of
``bench/scalesim_compare.py`` (offsets 0 / 10000000 / 20000000, word = 1 byte, one SRAM bank per
operand, ``Bandwidth`` = ``IfmapSRAMBankBandwidth`` = ``FilterSRAMBankBandwidth``). Each row: layer
``(H, W, R, S, C, M, stride)``, array, dataflow, SRAM KB (each of the three), bandwidth (``None`` =
CALC), then COMPUTE_REPORT's ``Stall Cycles`` and DETAILED_ACCESS_REPORT's SRAM IFMAP Reads, SRAM
Filter Reads, SRAM OFMAP Writes, DRAM IFMAP Reads, DRAM Filter Reads, DRAM OFMAP Writes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest

from hw_space import AcceleratorSpec, CostModel, Layer, write_topology_csv
from hw_space.traffic import TRAFFIC_KEYS, scalesim_traffic, sram_traffic
from hwnas.cli import hw as hw_commands
from hwnas.errors import CLIError

SMALL = (8, 8, 3, 3, 4, 16, 1)
MID = (16, 16, 3, 3, 32, 64, 1)
# layer, rows, cols, dataflow, sram KB, bandwidth, stalls, sram i/f/o, dram i/f/o (SCALE-Sim 3.0.0)
GOLDEN = (
    (SMALL, 4, 4, "ws", 1, 10, 0, 5184, 576, 5184, 5720, 1040, 5184),
    (SMALL, 4, 4, "ws", 64, 10, 0, 5184, 576, 5184, 1300, 580, 5184),
    (SMALL, 4, 4, "ws", 64, None, 0, 5184, 576, 5184, 256, 576, 5184),
    (MID, 8, 8, "ws", 4, 10, 11814, 451584, 18432, 451584, 735950, 221400, 451584),
    (MID, 8, 8, "os", 4, 10, 297516, 451584, 460800, 15744, 735950, 3560850, 12544),
    (MID, 8, 8, "is", 4, 10, 339938, 56448, 460800, 451584, 1525200, 4151250, 451584),
    # stride 2 (a ceil-sized ofmap: -1 taps) and 3x3 repeats; a 1 KB ofmap SRAM at 5 words/cycle
    ((16, 16, 3, 3, 32, 64, 2), 8, 8, "is", 4, 10, 108908, 18432, 147456, 147456, 34850, 1328400, 147456),
    ((10, 10, 3, 3, 16, 40, 1), 4, 8, "ws", (1, 2, 1), 5, 5915, 46080, 5760, 92160, 73645, 74825, 92164),
)


def _layer(t: tuple[int, ...]) -> Layer:
    h, w, r, s, c, m, st = t
    return Layer("L", h, w, r, s, c, m, stride=st)


def test_sram_closed_forms_by_hand() -> None:
    # 8x8x4 input, 3x3 filters, 16 filters: px = 36, K = 36, N = 16; a 4x4 array
    lay = [_layer(SMALL)]
    ws = sram_traffic(lay, 4, 4, "ws")  # rf = 9, cf = 4
    assert [int(ws[k][0]) for k in ws] == [4 * 36 * 36, 36 * 16, 9 * 36 * 16]
    os_ = sram_traffic(lay, 4, 4, "os")  # rf = ceil(36/4) = 9, cf = 4; + rf cf (rows + cols)
    assert [int(os_[k][0]) for k in os_] == [4 * 36 * 36, 9 * 36 * 16, 36 * 16 + 36 * 8]
    is_ = sram_traffic(lay, 4, 4, "is")  # rf = 9, cf = ceil(36/4) = 9
    assert [int(is_[k][0]) for k in is_] == [36 * 36, 9 * 36 * 16, 9 * 36 * 16]


def test_unbounded_dram_reads_touched_pixels_once() -> None:
    # 1x1 stride 2 on 14x14: 7x7 pixels touched of 64 channels; filters 64x128 once; no stalls
    t = scalesim_traffic([Layer("d", 14, 14, 1, 1, 64, 128, stride=2)], 8, 4, "ws")
    assert int(t["dram_ifmap_reads"][0]) == 7 * 7 * 64
    assert int(t["dram_filter_reads"][0]) == 64 * 128
    assert int(t["stall_cycles"][0]) == 0
    # 3x3 stride 2 on 15x15: windows at 0,2,..,12 cover rows 0..14 (all 15)
    t = scalesim_traffic([Layer("c", 15, 15, 3, 3, 3, 16, stride=2)], 8, 8, "os")
    assert int(t["dram_ifmap_reads"][0]) == 15 * 15 * 3


def test_groups_multiply() -> None:
    one = scalesim_traffic([Layer("g", 16, 16, 3, 3, 8, 8)], 8, 8, "ws", (4096,) * 3, 10)
    four = scalesim_traffic([Layer("g", 16, 16, 3, 3, 32, 32, groups=4)], 8, 8, "ws", (4096,) * 3, 10)
    for key in TRAFFIC_KEYS:
        assert int(four[key][0]) == 4 * int(one[key][0]), key


@pytest.mark.parametrize("row", GOLDEN, ids=lambda r: f"{r[3]}-{r[4]}kB-{r[5]}")
def test_against_scalesim_golden(row: tuple) -> None:
    lay, rows, cols, df, kb, bw, stall, *want = row
    kb = kb if isinstance(kb, tuple) else (kb,) * 3
    t = scalesim_traffic([_layer(lay)], rows, cols, df, tuple(v * 1024 for v in kb), bw)
    got = [int(t[k][0]) for k in TRAFFIC_KEYS[:6]]
    keys = TRAFFIC_KEYS[:5]
    assert dict(zip(keys, got)) == dict(zip(keys, want))
    # SCALE-Sim also counts the -1 padding of partial lines flushed mid-drain (< bandwidth per drain)
    assert 0 <= want[5] - got[5] <= (bw or cols) * (1 + got[5] // (kb[2] * 512))
    assert int(t["stall_cycles"][0]) == pytest.approx(stall, rel=0.02, abs=0)


def test_validation_errors() -> None:
    lay = [_layer(SMALL)]
    with pytest.raises(ValueError, match="rs"):
        scalesim_traffic(lay, 4, 4, "rs")
    with pytest.raises(ValueError, match="sram_words"):
        scalesim_traffic(lay, 4, 4, "ws", (1024, 1024))
    with pytest.raises(ValueError, match="bandwidth"):
        scalesim_traffic(lay, 4, 4, "ws", (1024,) * 3, 0)
    with pytest.raises(ValueError, match="SRAM"):
        scalesim_traffic(lay, 4, 4, "ws", None, 10)


BASE = AcceleratorSpec(rows=16, cols=16, rf_bytes=64, gbuf_bytes=128 * 1024, dataflow="ws", dram_bw=8.0,
                       noc_bw=64.0, clock_mhz=400.0, precision_bits=8)


def test_spec_fields_optional_and_round_trip() -> None:
    assert "sram_kb" not in BASE.to_dict() and "bandwidth_words" not in BASE.to_dict()
    assert AcceleratorSpec.from_dict(BASE.to_dict()) == BASE
    mem = dataclasses.replace(BASE, sram_kb=[64, 32, 16], bandwidth_words=10)
    assert mem.sram_kb == (64, 32, 16) and mem.sram_words == (65536, 32768, 16384)
    assert AcceleratorSpec.from_dict(json.loads(json.dumps(mem.to_dict()))) == mem
    assert dataclasses.replace(mem, precision_bits=16).sram_words == (32768, 16384, 8192)
    for bad, msg in (({"sram_kb": [64, 64]}, "three"), ({"bandwidth_words": 10}, "needs sram_kb"),
                     ({"sram_kb": [64, 0, 64]}, "positive"), ({"sram_kb": [1, 1, 1], "bandwidth_words": 2.5}, "integer")):
        with pytest.raises(ValueError, match=msg):
            dataclasses.replace(BASE, **bad)


NET = [Layer("a", 30, 30, 3, 3, 16, 32), Layer("b", 16, 16, 1, 1, 32, 64, stride=2),
       Layer.gemm("fc", 1, 100, 256)]


def test_cost_model_adds_user_mode_stalls_only_when_given() -> None:
    layers = NET
    plain = CostModel(BASE).layers(layers)
    calc = CostModel(dataclasses.replace(BASE, sram_kb=(64, 64, 64))).layers(layers)
    user = CostModel(dataclasses.replace(BASE, sram_kb=(64, 64, 64), bandwidth_words=10)).layers(layers)
    np.testing.assert_array_equal(plain["total_cycles"], calc["total_cycles"])
    assert np.all(calc["stall_cycles"] == 0) and user["stall_cycles"][0] > 0
    np.testing.assert_array_equal(user["total_cycles"],
                                  np.maximum(user["compute_cycles"] + user["stall_cycles"],
                                             np.maximum(user["dram_cycles"], user["noc_cycles"])))
    assert np.all(user["dram_ifmap_reads"] >= calc["dram_ifmap_reads"])  # requests, im2col-expanded
    rs = CostModel(dataclasses.replace(BASE, dataflow="rs")).layers(layers)
    assert not rs["traffic_modelled"].any()


def _args(tmp_path, **kw) -> argparse.Namespace:
    topo = write_topology_csv(tmp_path / "t.csv", NET[:2])
    base = dict(topology=str(topo), onnx=None, spec=None, rows=16, cols=16, dataflow=None, rf_bytes=None,
                gbuf_bytes=None, dram_bw=None, noc_bw=None, clock_mhz=None, precision_bits=None, batch=1,
                json=True, sram_kb=None, bandwidth_words=None)
    base.update(kw)
    return argparse.Namespace(**base)


def test_cli_json_reports_traffic_and_stalls(tmp_path) -> None:
    args = _args(tmp_path, sram_kb="64,64,64", bandwidth_words=10)
    spec = hw_commands.build_spec(args)
    assert spec.sram_kb == (64, 64, 64) and spec.bandwidth_words == 10
    rep = hw_commands.cost_report(spec, hw_commands.load_layers(args), 1)
    lay = rep["layers"][0]
    assert set(lay["traffic"]) == {"sram", "dram"}
    for level in ("sram", "dram"):
        assert set(lay["traffic"][level]) == {"ifmap_reads", "filter_reads", "ofmap_writes"}
    assert lay["stall_cycles"] > 0 and lay["total_cycles"] >= lay["compute_cycles"] + lay["stall_cycles"]
    assert rep["spec"]["sram_kb"] == [64, 64, 64]
    json.dumps(rep)
    text = hw_commands.format_cost(rep)
    assert "USER 10 words/cyc" in text and "stalls" in text
    rs = hw_commands.cost_report(dataclasses.replace(spec, dataflow="rs"), hw_commands.load_layers(args), 1)
    assert rs["layers"][0]["traffic"] is None and rs["layers"][0]["stall_cycles"] == 0
    hw_commands.format_cost(rs)


@pytest.mark.parametrize("kw, msg", [({"sram_kb": "64,64"}, "--sram-kb must be three"),
                                     ({"sram_kb": "64,x,64"}, "--sram-kb must be three"),
                                     ({"bandwidth_words": 10}, "needs sram_kb"),
                                     ({"sram_kb": "64,64,64", "bandwidth_words": 0}, "bandwidth_words")])
def test_cli_memory_flag_errors_are_one_line(tmp_path, kw, msg) -> None:
    with pytest.raises(CLIError, match=msg) as exc:
        hw_commands.build_spec(_args(tmp_path, **kw))
    assert "\n" not in str(exc.value)


def test_calc_mode_small_srams_against_scalesim() -> None:
    # SCALE-Sim 3.0.0, CALC mode, 12x12x8 input, 3x3, 20 filters, 8x8 array: DRAM IFMAP/Filter Reads
    lay = [Layer("L", 12, 12, 3, 3, 8, 20)]
    os_ = scalesim_traffic(lay, 8, 8, "os", (2048,) * 3)
    assert (int(os_["dram_ifmap_reads"][0]), int(os_["dram_filter_reads"][0])) == (3928, 1864)
    is_ = scalesim_traffic(lay, 8, 8, "is", (1024,) * 3)
    assert (int(is_["dram_ifmap_reads"][0]), int(is_["dram_filter_reads"][0])) == (1668, 18720)
