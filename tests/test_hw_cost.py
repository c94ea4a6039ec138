"""hw_space cost model (cycles, traffic, latency, energy, area), row stationary, ``hwnas hw cost``."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module

from hw_space import (
    ENERGY_PARTS,
    AcceleratorSpec,
    CostModel,
    EnergyTable,
    Layer,
    compute_cycles,
    resnet18,
    rs_compute_cycles,
    rs_mapping,
    write_topology_csv,
)
from hwnas.cli import hw as hw_commands
from hwnas.errors import CLIError

BASE = AcceleratorSpec(rows=16, cols=16, rf_bytes=64, gbuf_bytes=128 * 1024, dataflow="ws", dram_bw=8.0,
                       noc_bw=64.0, clock_mhz=400.0, precision_bits=8)
BIG = Layer("big", 58, 58, 3, 3, 64, 64)  # ResNet conv2-like, padded input
SMALL = [BIG, Layer("down", 56, 56, 1, 1, 64, 128, stride=2), Layer.gemm("fc", 1, 1000, 512),
         Layer("dw", 16, 16, 3, 3, 32, 32, groups=32)]


@pytest.mark.parametrize("df", ["ws", "os", "is", "rs"])
def test_energy_breakdown_sums_to_total(df: str) -> None:
    model = CostModel(dataclasses.replace(BASE, dataflow=df))
    d = model.layers(SMALL, batch=2)
    parts = sum(d[f"energy_{p}_uj"] for p in ENERGY_PARTS)
    np.testing.assert_allclose(parts, d["energy_uj"], rtol=1e-12)
    assert np.all(d["total_cycles"] >= d["compute_cycles"])
    assert np.all((d["utilization"] > 0) & (d["utilization"] <= 1))
    net = model.network(SMALL, batch=2)
    assert net["energy_uj"] == pytest.approx(sum(net["energy_breakdown_uj"].values()))
    assert net["latency_ms"] == pytest.approx(float(np.sum(d["latency_ms"])))
    assert net["edp_uj_ms"] == pytest.approx(net["energy_uj"] * net["latency_ms"])


@pytest.mark.parametrize("df", ["ws", "os", "is", "rs"])
def test_more_dram_bandwidth_never_slower_and_helps_memory_bound(df: str) -> None:
    slow = dataclasses.replace(BASE, dataflow=df, dram_bw=1.0, gbuf_bytes=32 * 1024)
    fast = dataclasses.replace(slow, dram_bw=2.0)
    layers = resnet18()
    a, b = CostModel(slow).layers(layers), CostModel(fast).layers(layers)
    assert np.all(b["latency_ms"] <= a["latency_ms"])
    fc = [i for i, n in enumerate(a["name"]) if n == "FC"][0]  # a GEMM with M=1: weight-bound
    assert a["dram_cycles"][fc] >= a["compute_cycles"][fc]
    assert b["latency_ms"][fc] < a["latency_ms"][fc]


@pytest.mark.parametrize("df", ["ws", "os", "is", "rs"])
def test_larger_array_never_more_compute_cycles_for_big_layer(df: str) -> None:
    cycles = [int(CostModel(dataclasses.replace(BASE, dataflow=df, rows=n, cols=n)).layers([BIG])
                  ["compute_cycles"][0]) for n in (8, 16, 32, 64)]
    assert cycles == sorted(cycles, reverse=True), cycles
    assert cycles[-1] < cycles[0]


def test_systolic_cycles_are_scalesim_and_batch_repeats() -> None:
    for df in ("ws", "os", "is"):
        spec = dataclasses.replace(BASE, dataflow=df)
        ref = compute_cycles(SMALL, spec.rows, spec.cols, df)
        np.testing.assert_array_equal(CostModel(spec).layers(SMALL)["compute_cycles"], ref)
        np.testing.assert_array_equal(CostModel(spec).layers(SMALL, batch=3)["compute_cycles"], 3 * ref)


def test_row_stationary_hand_computed() -> None:
    # R=S=3, E=F=13, C=4, M=6 on 12x14: one 3x13 set, four side by side; 24 sets -> 6 passes of 3*13
    conv = Layer("c", 15, 15, 3, 3, 4, 6)
    mp = rs_mapping([conv], 12, 14)
    assert (int(mp["h"][0]), int(mp["e"][0]), int(mp["sets_parallel"][0])) == (3, 13, 4)
    assert int(rs_compute_cycles([conv], 12, 14)[0]) == 6 * 3 * 13
    # folding both ways: R=5 on 4 rows -> 2 folds of 3 rows; E=10 on 4 cols -> 3 strips of 4;
    # one set at a time; 2*3*C(2)*M(1) = 12 passes of S*F = 5*10 cycles
    folded = Layer("f", 14, 14, 5, 5, 2, 1)
    mp = rs_mapping([folded], 4, 4)
    assert [int(mp[k][0]) for k in ("r_folds", "h", "e_folds", "e", "sets_parallel")] == [2, 3, 3, 4, 1]
    assert int(rs_compute_cycles([folded], 4, 4)[0]) == 600
    assert int(rs_compute_cycles([folded], 4, 4, batch=2)[0]) == 1200
    grouped = Layer("g", 14, 14, 5, 5, 4, 2, groups=2)  # two groups of the same problem
    assert int(rs_compute_cycles([grouped], 4, 4)[0]) == 1200
    # AlexNet CONV3 on Eyeriss, one image (documented example)
    assert int(rs_compute_cycles([Layer("conv3", 15, 15, 3, 3, 256, 384)], 12, 14)[0]) == 958464


def test_small_buffer_refused_naming_field() -> None:
    spec = dataclasses.replace(BASE, gbuf_bytes=64)
    with pytest.raises(ValueError, match="gbuf_bytes .* layer big") as err:
        CostModel(spec).layers(SMALL)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="batch"):
        CostModel(BASE).layers(SMALL, batch=0)


def test_energy_table_and_area() -> None:
    t = EnergyTable.from_dict({"dram_rel": 100})
    assert t.dram_rel == 100 and t.access_pj("dram", 16) == pytest.approx(100 * t.mac_pj_16)
    assert t.access_pj("gbuf", 8) == pytest.approx(EnergyTable().access_pj("gbuf", 16) / 2)
    with pytest.raises(ValueError, match="unknown energy table keys: bogus"):
        EnergyTable.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="mac_pj_16"):
        EnergyTable(mac_pj_16=-1.0)
    eyeriss = AcceleratorSpec(rows=12, cols=14, rf_bytes=512, gbuf_bytes=108 * 1024, dataflow="rs",
                              dram_bw=8.0, noc_bw=24.0, clock_mhz=200.0, precision_bits=16)
    assert CostModel(eyeriss).area_mm2()["total"] == pytest.approx(12.25, abs=0.01)
    # more DRAM energy per access raises energy, not latency
    a = CostModel(eyeriss).network(SMALL)
    b = CostModel(eyeriss, EnergyTable.from_dict({"dram_rel": 400})).network(SMALL)
    assert b["energy_uj"] > a["energy_uj"] and b["latency_ms"] == a["latency_ms"]


# ----------------------------------------------------------------------------- CLI


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="hwnas")
    sub = parser.add_subparsers(dest="command", required=True)
    hw_commands.add_parsers(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_hw_cost_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_topology_csv(tmp_path / "net.csv", SMALL[:2] + [Layer("c3", 16, 16, 3, 3, 8, 8)])
    assert _run(["hw", "cost", "--topology", str(csv), "--rows", "8", "--cols", "8", "--dataflow", "os",
                 "--batch", "2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"layers", "network", "spec"}
    assert [r["name"] for r in doc["layers"]] == ["big", "down", "c3"]
    for r in doc["layers"]:
        assert {"name", "compute_cycles", "total_cycles", "latency_ms", "energy_uj", "utilization",
                "energy_breakdown_uj"} <= set(r)
    net = doc["network"]
    assert {"total_cycles", "latency_ms", "energy_uj", "energy_breakdown_uj", "area_mm2", "edp_uj_ms"} <= set(net)
    assert doc["spec"]["rows"] == 8 and doc["spec"]["dataflow"] == "os" and net["batch"] == 2
    # --spec with a flag overriding one field; text output
    spec_file = dataclasses.replace(BASE, dataflow="rs").save(tmp_path / "hw.json")
    assert _run(["hw", "cost", "--topology", str(csv), "--spec", str(spec_file), "--cols", "12"]) == 0
    out = capsys.readouterr().out
    assert "16x12 RS" in out and "network: 3 layers" in out and "area" in out


@pytest.mark.parametrize("extra,needle", [
    (["--rows", "0"], "rows"), (["--dram-bw", "-1"], "dram_bw"), (["--gbuf-bytes", "32"], "gbuf_bytes"),
    (["--batch", "0"], "--batch"), (["--precision-bits", "12"], "precision_bits"),
    (["--spec", "missing.yaml"], "--spec missing.yaml"),
])
def test_hw_cost_cli_bad_flags_one_line(tmp_path: Path, extra: list[str], needle: str) -> None:
    csv = write_topology_csv(tmp_path / "net.csv", SMALL[:1])
    with pytest.raises(CLIError, match=needle) as err:
        _run(["hw", "cost", "--topology", str(csv), *extra])
    assert "\n" not in str(err.value)


def test_hw_cost_cli_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(CLIError, match="--topology .*nope.csv: no such file"):
        _run(["hw", "cost", "--topology", str(tmp_path / "nope.csv")])
    onnx = require_module("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    with pytest.raises(CLIError, match="no Conv, Gemm or MatMul"):
        _run(["hw", "cost", "--onnx", str(path)])
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CLIError, match="junk.onnx"):
        _run(["hw", "cost", "--onnx", str(tmp_path / "junk.onnx")])
