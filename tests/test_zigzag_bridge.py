"""bench/zigzag_bridge.py: the hw_space -> ZigZag conversion (pure Python; ZigZag itself is not
imported: it lives in its own venv, made by bench/zigzag_compare.py)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from hw_space.cost import CostModel
from hw_space.energy import EnergyTable
from hw_space.spec import AcceleratorSpec
from hw_space.workload import Layer, mobilenet, resnet18

_PATH = Path(__file__).resolve().parents[1] / "bench" / "zigzag_bridge.py"
_SPEC = importlib.util.spec_from_file_location("zigzag_bridge", _PATH)
zb = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(zb)

WS = AcceleratorSpec(rows=16, cols=16, rf_bytes=64, gbuf_bytes=256 * 1024, dataflow="ws", dram_bw=16.0,
                     noc_bw=64.0, clock_mhz=800.0, precision_bits=8)
RS = AcceleratorSpec(rows=12, cols=14, rf_bytes=520, gbuf_bytes=108 * 1024, dataflow="rs", dram_bw=4.0,
                     noc_bw=24.0, clock_mhz=200.0, precision_bits=16)


def _layers() -> list[Layer]:
    r18 = {lay.name: lay for lay in resnet18()}
    mb = {lay.name: lay for lay in mobilenet()}
    return [r18["Conv2_1a"], r18["Conv3_1a"], r18["FC"], mb["Conv1"], zb.depthwise(mb["Conv4"])]


def test_per_word_energy_survives_the_per_access_conversion() -> None:
    en = EnergyTable()
    for spec in (WS, RS):
        acc = zb.accelerator(spec, en)
        json.dumps(acc)  # JSON is what the bench writes (ZigZag reads it as YAML)
        bits = spec.precision_bits
        for name, mem in acc["memories"].items():
            level = zb.LEVEL_OF_MEMORY[name]
            for port in mem["ports"]:
                assert port["bandwidth_min"] == bits
                per_word = mem["r_cost"] * bits / port["bandwidth_max"]
                assert per_word == pytest.approx(en.access_pj(level, bits))
                assert mem["w_cost"] == mem["r_cost"]
        assert acc["operational_array"]["unit_energy"] == pytest.approx(en.mac_pj(bits))
        assert acc["operational_array"]["sizes"] == [spec.rows, spec.cols]
        assert acc["memories"]["gbuf"]["size"] == spec.gbuf_bytes * 8
        assert acc["memories"]["dram"]["ports"][0]["bandwidth_max"] == int(spec.dram_bw * 8)


def test_rf_holds_the_dataflow_operands() -> None:
    assert zb.rf_words(WS) == {"I2": 64}  # 64 B of 8-bit weights
    assert zb.rf_words(RS) == {"I2": 224, "I1": 12, "O": 24}  # Eyeriss's spads, 520 B of 16-bit words
    acc = zb.accelerator(RS)
    assert acc["memories"]["rf_O"]["size"] == 24 * 16 and acc["operational_array"]["systolic_dimensions"] == []
    assert zb.accelerator(WS)["operational_array"]["systolic_dimensions"] == ["D1", "D2"]
    assert set(zb.accelerator(WS)["memories"]) == {"rf_I2", "gbuf", "dram"}


def test_workload_has_hw_space_dims_and_macs() -> None:
    layers = _layers()
    wl = zb.workload(layers, 8)
    macs = CostModel(WS).layers(layers)["macs"]
    for entry, lay, m in zip(wl, layers, macs):
        assert entry["name"] == lay.name and len(entry["loop_dims"]) == len(entry["loop_sizes"])
        assert math.prod(entry["loop_sizes"]) == int(m)
        dims = dict(zip(entry["loop_dims"], entry["loop_sizes"]))
        assert (dims["OY"], dims["OX"]) == (lay.ofmap_h, lay.ofmap_w)
        assert entry["dimension_relations"][0] == f"ix={lay.stride}*ox+1*fx"
    dw = wl[-1]
    assert dw["equation"] == zb.DW_EQUATION and "G" in dw["loop_dims"] and "C" not in dw["loop_dims"]


@pytest.mark.parametrize("spec", [WS, RS, *(AcceleratorSpec(**{**WS.to_dict(), "dataflow": d}) for d in ("os", "is"))])
def test_spatial_unrolling_fits_the_array_and_the_layer(spec: AcceleratorSpec) -> None:
    for lay in _layers():
        sm = zb.spatial_unrolling(lay, spec)
        dims = zb.loop_sizes(lay)
        for d, size in (("D1", spec.rows), ("D2", spec.cols)):
            assert math.prod(f for _, f in sm[d]) <= size
        used: dict[str, int] = {}
        for d in ("D1", "D2"):
            for n, f in sm[d]:
                assert f > 1 and n in dims
                used[n] = used.get(n, 1) * f
        assert all(used[n] <= dims[n] * 2 for n in used)  # ceil-splits never unroll past the loop twice


def test_spatial_unrolling_follows_hw_space_models() -> None:
    r18 = {lay.name: lay for lay in resnet18()}
    mb = {lay.name: lay for lay in mobilenet()}
    assert zb.spatial_unrolling(r18["Conv2_1a"], WS) == {"D1": [("C", 16)], "D2": [("K", 16)]}
    # 3 channels: ZigZag unrolls whole loops only, so 9 of 16 rows (hw_space folds R*S*C = 27)
    assert zb.spatial_unrolling(mb["Conv1"], WS) == {"D1": [("C", 3), ("FX", 3)], "D2": [("K", 16)]}
    # depthwise on WS: hw_space runs groups one after another, one column, a 3x3 window down the rows
    assert zb.spatial_unrolling(zb.depthwise(mb["Conv4"]), WS) == {"D1": [("FX", 3), ("FY", 3)], "D2": []}
    # RS, 3x3 with 54 output rows on 12x14: sets 3 high x 14 wide, 4 replicated down (over channels)
    assert zb.spatial_unrolling(r18["Conv2_1a"], RS) == {"D1": [("FY", 3), ("C", 4)], "D2": [("OY", 14)]}
    # RS, 7x7 output (5 rows of a 3x3): two sets side by side (14 // 5), over filters
    assert zb.spatial_unrolling(r18["Conv5_1b"], RS) == {"D1": [("FY", 3), ("C", 4)],
                                                          "D2": [("OY", 5), ("K", 2)]}
    m = zb.mapping([r18["FC"], zb.depthwise(mb["Conv4"])], WS)
    assert [e["name"] for e in m] == ["default", "FC", "Conv4"]
    assert m[2]["spatial_mapping"]["D2"] == ["G, 1"]


def test_bad_input_raises_one_line_errors() -> None:
    with pytest.raises(ValueError, match="pool steps"):
        zb.workload([Layer.pool("p", 8, 8, 2, 2, 4, 2)], 8)
    with pytest.raises(ValueError, match="grouped convs"):
        zb.workload([Layer("g", 8, 8, 3, 3, 8, 8, 1, groups=2)], 8)
    with pytest.raises(ValueError, match="unique"):
        zb.workload([resnet18()[1], resnet18()[1]], 8)
    narrow = AcceleratorSpec(**{**RS.to_dict(), "dram_bw": 1.0})
    with pytest.raises(ValueError, match="dram_bw"):
        zb.accelerator(narrow)
    tiny = AcceleratorSpec(**{**RS.to_dict(), "rf_bytes": 8})
    with pytest.raises(ValueError, match="rf_bytes"):
        zb.rf_words(tiny)
