"""hw_space: accelerator spec, design space, workloads (CSV/ONNX), SCALE-Sim systolic cycles."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module

from hw_space import (
    AcceleratorSpec,
    DesignSpace,
    Layer,
    compute_cycles,
    compute_utilization,
    layer_arrays,
    layers_from_onnx,
    mapping_efficiency,
    mobilenet,
    read_topology_csv,
    resnet18,
    write_topology_csv,
)

ROOT = Path(__file__).resolve().parent.parent
SPEC = dict(rows=12, cols=14, rf_bytes=512, gbuf_bytes=108 * 1024, dataflow="rs", dram_bw=16.0,
            noc_bw=64.0, clock_mhz=200.0, precision_bits=16)


# ----------------------------------------------------------------------------- spec


@pytest.mark.parametrize("field,value,needle", [
    ("rows", 0, "rows"), ("cols", -3, "cols"), ("dram_bw", -1.0, "dram_bw"), ("noc_bw", 0, "noc_bw"),
    ("dataflow", "xy", "dataflow"), ("precision_bits", 12, "precision_bits"),
    ("gbuf_bytes", 1.5, "gbuf_bytes"), ("clock_mhz", float("nan"), "clock_mhz"), ("rows", True, "rows"),
])
def test_spec_validation_names_field(field: str, value: object, needle: str) -> None:
    with pytest.raises(ValueError, match=needle) as err:
        AcceleratorSpec(**{**SPEC, field: value})
    assert "\n" not in str(err.value)


def test_spec_json_round_trip_and_unknown_keys(tmp_path: Path) -> None:
    spec = AcceleratorSpec(**SPEC)
    path = spec.save(tmp_path / "eyeriss.json")
    assert AcceleratorSpec.load(path) == spec
    assert json.loads(path.read_text())["dataflow"] == "rs"
    assert [p.name for p in tmp_path.iterdir()] == ["eyeriss.json"]  # no temp file left behind
    with pytest.raises(ValueError, match="unknown accelerator spec keys: bogus, extra"):
        AcceleratorSpec.from_dict({**SPEC, "extra": 1, "bogus": 2})
    with pytest.raises(ValueError, match="missing accelerator spec keys: rows"):
        AcceleratorSpec.from_dict({k: v for k, v in SPEC.items() if k != "rows"})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**SPEC, "rows": 0}))
    with pytest.raises(ValueError, match="rows"):
        AcceleratorSpec.load(bad)


def test_spec_yaml_round_trip_or_clear_error(tmp_path: Path) -> None:
    spec = AcceleratorSpec(**SPEC)
    try:
        import yaml  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install pyyaml"):
            spec.save(tmp_path / "s.yaml")
        assert not list(tmp_path.iterdir())
    else:
        assert AcceleratorSpec.load(spec.save(tmp_path / "s.yaml")) == spec


# ----------------------------------------------------------------------------- design space


def test_design_space_encode_decode_sample_mutate() -> None:
    space = DesignSpace()
    assert space.cardinalities == (17, 6, 7, 4, 5, 1, 5, 2)
    assert (12, 14) in space.pe_shapes and space.gbuf_bytes[0] == 32 * 1024
    assert space.gbuf_bytes[-1] == 2 * 1024 * 1024
    rng = np.random.default_rng(0)
    for _ in range(50):
        spec = space.sample(rng)
        vec = space.encode(spec)
        assert vec.dtype == np.int64 and space.decode(vec) == spec
        child = space.mutate(spec, rng)
        diff = np.flatnonzero(space.encode(child) != vec)
        assert len(diff) == 1 and space.cardinalities[diff[0]] > 1
    a = [space.sample(np.random.default_rng(7)) for _ in range(2)]
    assert a[0] == a[1]
    s = space.sample(np.random.default_rng(1))
    assert space.mutate(s, np.random.default_rng(3)) == space.mutate(s, np.random.default_rng(3))
    with pytest.raises(ValueError, match="entry 0"):
        space.decode([99, 0, 0, 0, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="rf_bytes"):
        space.encode(AcceleratorSpec(**{**SPEC, "rf_bytes": 100}))
    assert not space.contains(AcceleratorSpec(**{**SPEC, "rf_bytes": 100}))
    with pytest.raises(ValueError, match="dataflow"):
        DesignSpace(dataflows=("ws", "zz"))


# ----------------------------------------------------------------------------- workloads


def test_topology_csv_round_trip(tmp_path: Path) -> None:
    layers = resnet18()[:3] + [Layer("Conv_DP", 14, 14, 3, 3, 32, 32, 1, groups=32)]
    path = write_topology_csv(tmp_path / "t.csv", layers)
    text = path.read_text().splitlines()
    assert text[0] == ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                       "Channels, Num Filter, Strides,")
    assert text[1] == "Conv1, 224, 224, 7, 7, 3, 64, 2,"
    assert text[4] == "Conv_DP, 14, 14, 3, 3, 32, 1, 1,"  # SCALE-Sim's DP form: C channels, filters/group
    assert read_topology_csv(path) == layers
    with pytest.raises(ValueError, match="groups=2"):
        write_topology_csv(tmp_path / "g.csv", [Layer("g", 8, 8, 3, 3, 4, 8, groups=2)])
    grouped = [Layer("g", 8, 8, 3, 3, 4, 8, groups=2)]
    rows = read_topology_csv(write_topology_csv(tmp_path / "g.csv", grouped, expand_groups=True))
    assert [(r.name, r.channels, r.num_filter) for r in rows] == [("g_g0", 2, 4), ("g_g1", 2, 4)]


def test_topology_csv_tolerant_and_malformed(tmp_path: Path) -> None:
    ok = tmp_path / "ok.csv"
    ok.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                  "Num Filter, Strides,, Target\n\n\tConv1,224,224,7,7,3,64,2, NPU\nFC, 1, 1, 1, 1, 512, 1000, 1\n")
    assert [layer.name for layer in read_topology_csv(ok)] == ["Conv1", "FC"]
    bad = tmp_path / "bad.csv"
    bad.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                   "Num Filter, Strides,\nConv1, 224, 224, 7, 7, 3, 64, 2,\nConv2, 56, x, 3, 3, 64, 64, 1,\n")
    with pytest.raises(ValueError, match=r"bad.csv:3: IFMAP Width is 'x'"):
        read_topology_csv(bad)
    bad.write_text("h\nConv1, 224, 224, 7,\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: expected 8 fields"):
        read_topology_csv(bad)
    bad.write_text("h\nConv1, 3, 3, 7, 7, 3, 64, 2,\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: .*larger than the ifmap"):
        read_topology_csv(bad)


def test_reference_topologies() -> None:
    r18, mb = resnet18(), mobilenet()
    assert len(r18) == 21 and r18[0] == Layer("Conv1", 224, 224, 7, 7, 3, 64, 2)
    assert r18[-1] == Layer("FC", 1, 1, 1, 1, 512, 1000, 1)
    assert r18[0].ofmap_h == 110  # SCALE-Sim's ceil((224 - 7 + 2) / 2)
    assert len(mb) == 27 and mb[1] == Layer("Conv2", 112, 112, 3, 3, 32, 1, 1)


def test_layers_from_onnx(tmp_path: Path) -> None:
    onnx = require_module("onnx")
    from onnx import TensorProto, helper, numpy_helper

    def init(name: str, shape: tuple[int, ...]) -> object:
        return numpy_helper.from_array(np.zeros(shape, dtype=np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["y1"], name="conv", pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Conv", ["y1", "w2"], ["y2"], name="dw", pads=[1, 1, 1, 1], strides=[2, 2],
                         group=8),
        helper.make_node("Flatten", ["y2"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w3"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [init("w1", (8, 3, 3, 3)), init("w2", (8, 1, 3, 3)), init("w3", (10, 128))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    conv, dw, fc = layers_from_onnx(path)
    assert conv == Layer("conv", 10, 10, 3, 3, 3, 8, 1)
    assert (conv.ofmap_h, conv.ofmap_w) == (8, 8)
    assert dw == Layer("dw", 9, 9, 3, 3, 8, 8, 2, groups=8)  # padded 10 -> 9 rows actually read
    assert (dw.ofmap_h, dw.window, dw.filters_per_group) == (4, 9, 1)
    assert fc == Layer.gemm("fc", 1, 10, 128)
    assert layers_from_onnx(model, include_padding=False)[0].ifmap_h == 8


# ----------------------------------------------------------------------------- systolic cycles


def test_golden_scalesim_gemm_reports() -> None:
    # scale-sim-v2 test/general/golden_trace_user_{os,ws,is}/COMPUTE_REPORT.csv: GEMM M=256 N=128
    # K=256 on 32x32; Total - Stall cycles, Mapping Efficiency %, Compute Util %.
    g = [Layer.gemm("Test 1", 256, 128, 256)]
    for df, cycles, util in (("os", 52447 - 42272, 80.50314465408806),
                             ("ws", 52447 - 41248, 67.19160104986877),
                             ("is", 19984 - 5777, 50.59288537549407)):
        assert compute_cycles(g, 32, 32, df).tolist() == [cycles]
        assert mapping_efficiency(g, 32, 32, df)[0] == pytest.approx(1.0)
        assert compute_utilization(g, 32, 32, df)[0] * 100 == pytest.approx(util, rel=1e-12)


def test_hand_computed_cycles_4x4() -> None:
    one = [Layer.gemm("one", 4, 4, 4)]  # exactly one fold in every dataflow
    assert compute_cycles(one, 4, 4, "os").tolist() == [4 + 4 + 4 - 2 - 1]
    assert compute_cycles(one, 4, 4, "ws").tolist() == [2 * 4 + 4 + 4 - 2 - 1]
    assert compute_cycles(one, 4, 4, "is").tolist() == [2 * 4 + 4 + 4 - 2 - 1]
    multi = [Layer.gemm("multi", 10, 5, 3)]  # M=10, N=5, K=3
    assert compute_cycles(multi, 4, 4, "os").tolist() == [3 * 2 * (3 + 4 + 4 - 2) - 1]  # Sr=10, Sc=5
    assert compute_cycles(multi, 4, 4, "ws").tolist() == [1 * 2 * (8 + 4 + 10 - 2) - 1]  # Sr=3, Sc=5
    assert compute_cycles(multi, 4, 4, "is").tolist() == [1 * 3 * (8 + 4 + 5 - 2) - 1]  # Sr=3, Sc=10
    assert mapping_efficiency(multi, 4, 4, "os")[0] == pytest.approx(50 / (6 * 16))
    assert compute_utilization(multi, 4, 4, "ws")[0] == pytest.approx(15 / (2 * 16) * 10 / (8 + 8 + 10 - 3))
    dw = [Layer("dw", 6, 6, 3, 3, 4, 4, 1, groups=4)]  # 4 SCALE-Sim layers of 16 px, K=9, N=1
    assert compute_cycles(dw, 4, 4, "os").tolist() == [4 * (4 * 1 * (9 + 4 + 4 - 2) - 1)]
    with pytest.raises(ValueError, match="dataflow"):
        compute_cycles(one, 4, 4, "rs")


def test_vectorised_equals_loop_and_broadcasts() -> None:
    layers = resnet18() + mobilenet() + [Layer("dw", 14, 14, 3, 3, 32, 64, 2, groups=32)]
    arrays = layer_arrays(layers)
    for df in ("os", "ws", "is"):
        for rows, cols in ((32, 32), (12, 14), (8, 64)):
            vec = compute_cycles(layers, rows, cols, df)
            loop = [int(compute_cycles([layer], rows, cols, df)[0]) for layer in layers]
            assert vec.tolist() == loop
            assert np.array_equal(compute_cycles(arrays, rows, cols, df), vec)
            eff = mapping_efficiency(layers, rows, cols, df)
            util = compute_utilization(layers, rows, cols, df)
            assert np.all((eff > 0) & (eff <= 1)) and np.all((util > 0) & (util <= eff))
    grid = compute_cycles(arrays, np.array([8, 16, 32])[:, None], np.array([8, 16, 32])[:, None], "os")
    assert grid.shape == (3, len(layers))
    assert np.array_equal(grid[2], compute_cycles(layers, 32, 32, "os"))


def test_import_is_numpy_only() -> None:
    code = ("import sys, hw_space; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'hwnas', 'onnx', 'yaml')]; print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_spec_is_frozen() -> None:
    spec = AcceleratorSpec(**SPEC)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.rows = 4  # type: ignore[misc]
