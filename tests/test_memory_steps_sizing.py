"""Memory-bound steps (pooling, element-wise) in hw_space, and accelerator sizing for one network."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
from conftest import require_module

from hw_space import AcceleratorSpec, CostModel, DesignSpace, Layer, layers_from_onnx, read_topology_csv, resnet18
from hw_space import write_topology_csv
from hwnas.codesign import HardwareBudget
from hwnas.codesign.sizing import network_metrics, size_accelerator, unique_layers

BASE = AcceleratorSpec(rows=16, cols=16, rf_bytes=64, gbuf_bytes=128 * 1024, dataflow="ws", dram_bw=8.0,
                       noc_bw=64.0, clock_mhz=400.0, precision_bits=8)


def _residual_model() -> object:
    onnx = require_module("onnx")
    from onnx import TensorProto, helper, numpy_helper

    def init(name: str, shape: tuple[int, ...], value: float = 0.0) -> object:
        return numpy_helper.from_array(np.full(shape, value, dtype=np.float32), name)

    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["y1"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["y1"], ["r1"], name="relu"),
        helper.make_node("Add", ["r1", "x8"], ["s"], name="residual"),
        helper.make_node("Mul", ["s", "half"], ["m"], name="scale"),
        helper.make_node("MaxPool", ["m"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "w3"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "res", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 8, 8]),
                       helper.make_tensor_value_info("x8", TensorProto.FLOAT, [1, 8, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        [init("w1", (8, 8, 3, 3)), init("half", (1,), 0.5), init("w3", (10, 8))])
    return onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def test_onnx_memory_steps_extracted_and_optional() -> None:
    model = _residual_model()
    conv, add, mul, pool, gap, fc = layers_from_onnx(model)
    assert conv.kind == "conv" and fc.kind == "gemm"
    assert add == Layer.eltwise("residual", 8, 8, 8, inputs=2)
    assert mul == Layer.eltwise("scale", 8, 8, 8, inputs=1)  # the constant operand is not traffic
    assert pool == Layer.pool("pool", 8, 8, 2, 2, 8, stride=2) and (pool.ofmap_h, pool.ofmap_w) == (4, 4)
    assert gap == Layer.pool("gap", 4, 4, 4, 4, 8) and gap.ofmap_px == 1
    assert all(layer.memory_bound and layer.macs == 0 for layer in (add, mul, pool, gap))
    assert [layer.name for layer in layers_from_onnx(model, memory_steps=False)] == ["conv", "fc"]


def test_memory_step_validation_and_csv_leaves_them_out(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="groups == channels == num_filter"):
        Layer("p", 8, 8, 2, 2, 8, 8, 2, groups=1, kind="pool")
    with pytest.raises(ValueError, match="only eltwise"):
        Layer("c", 8, 8, 3, 3, 8, 8, inputs=2)
    with pytest.raises(ValueError, match="inputs must be a positive integer"):
        Layer.eltwise("e", 8, 8, 8, inputs=0)
    conv = Layer("c", 10, 10, 3, 3, 8, 8)
    path = write_topology_csv(tmp_path / "t.csv", [conv, Layer.eltwise("e", 8, 8, 8), Layer.pool("p", 8, 8, 2, 2, 8, 2)])
    assert read_topology_csv(path) == [conv]


@pytest.mark.parametrize("df", ["ws", "os", "is", "rs"])
def test_memory_step_cost_is_streaming_traffic(df: str) -> None:
    spec = dataclasses.replace(BASE, dataflow=df)
    add, pool = Layer.eltwise("add", 16, 16, 32, inputs=2), Layer.pool("pool", 16, 16, 2, 2, 32, stride=2)
    d = CostModel(spec).layers([add, pool], batch=2)
    in_words = np.array([2 * 2 * 32 * 16 * 16, 2 * 32 * 16 * 16])
    out_words = np.array([2 * 32 * 16 * 16, 2 * 32 * 8 * 8])
    words = in_words + out_words  # 8-bit: bytes == words
    np.testing.assert_array_equal(d["dram_bytes"], words)
    np.testing.assert_array_equal(d["noc_bytes"], words)
    np.testing.assert_array_equal(d["macs"], [0, 0])
    np.testing.assert_array_equal(d["rf_accesses"], [0, 0])
    ops = np.array([out_words[0] * 1, out_words[1] * 4])
    np.testing.assert_array_equal(d["compute_cycles"], -(-ops // spec.cols))
    expect = np.maximum(np.maximum(-(-ops // spec.cols), np.ceil(words / spec.dram_bw)), np.ceil(words / spec.noc_bw))
    np.testing.assert_array_equal(d["total_cycles"], expect)
    assert np.all(d["utilization"] == 0)
    # memory-bound: twice the DRAM bandwidth halves the cycles
    d2 = CostModel(dataclasses.replace(spec, dram_bw=16.0)).layers([add, pool], batch=2)
    np.testing.assert_array_equal(d2["total_cycles"], np.ceil(words / 16.0))
    assert np.all(d2["energy_dram_uj"] == d["energy_dram_uj"]) and np.all(d2["energy_leak_uj"] < d["energy_leak_uj"])


def test_network_metrics_with_counts_equals_full_network() -> None:
    layers = resnet18()[:6] + [Layer.eltwise("a1", 56, 56, 64), Layer.eltwise("a2", 56, 56, 64)] + resnet18()[1:4]
    uniq, counts = unique_layers(layers)
    assert len(uniq) < len(layers) and counts.sum() == len(layers)
    for df in ("ws", "rs"):
        spec = dataclasses.replace(BASE, dataflow=df)
        full = CostModel(spec).network(layers)
        got = network_metrics(spec, uniq, counts)
        for key in ("latency_ms", "energy_uj", "edp_uj_ms", "utilization", "area_mm2", "power_mw"):
            assert got[key] == pytest.approx(full[key], rel=1e-12), key
        assert got["macs"] == full["macs"]


def _small_space() -> DesignSpace:
    return DesignSpace(pe_shapes=((8, 8), (16, 16), (32, 32)), rf_bytes=(32, 128), gbuf_bytes=(64 * 1024, 512 * 1024),
                       dataflows=("ws", "os", "rs"), dram_bw=(4.0, 16.0), noc_bw=(64.0,), clock_mhz=(200.0, 800.0),
                       precision_bits=(8,))  # fmt: skip


def test_sizing_finds_the_exhaustive_optimum_within_budget() -> None:
    layers = resnet18()[:8] + [Layer.eltwise("add", 56, 56, 64)]
    hw = _small_space()
    budget = HardwareBudget(area_mm2=3.0)
    uniq, counts = unique_layers(layers)
    best = None
    for vec in itertools.product(*(range(c) for c in hw.cardinalities)):
        spec = hw.decode(vec)
        m = network_metrics(spec, uniq, counts)
        if not budget.violations(m) and (best is None or m["edp_uj_ms"] < best[0]):
            best = (m["edp_uj_ms"], spec)
    assert best is not None
    r = size_accelerator(layers, hw, budget, starts=4, max_evals=hw.size, seed=1)
    assert r.feasible and r.violations == () and r.metrics["area_mm2"] <= 3.0
    assert r.evaluations <= hw.size
    # coordinate descent is a local search: it must land within 10% of the optimum on this space
    assert r.metrics["edp_uj_ms"] <= best[0] * 1.10
    assert r == size_accelerator(layers, hw, budget, starts=4, max_evals=hw.size, seed=1)  # deterministic
    lat = size_accelerator(layers, hw, budget, objective="latency_ms", max_evals=hw.size, seed=1)
    assert lat.metrics["latency_ms"] <= r.metrics["latency_ms"]


def test_sizing_infeasible_and_bad_arguments() -> None:
    layers = resnet18()[:3]
    r = size_accelerator(layers, _small_space(), HardwareBudget(area_mm2=1e-3), seed=0)
    assert not r.feasible and r.violations and r.violations[0].startswith("area")
    with pytest.raises(ValueError, match="sizing objective"):
        size_accelerator(layers, _small_space(), objective="speed")
    with pytest.raises(ValueError, match="at least one layer"):
        size_accelerator([], _small_space())
    tiny = DesignSpace(gbuf_bytes=(32,), pe_shapes=((8, 8),))
    with pytest.raises(ValueError, match="no design"):
        size_accelerator(layers, tiny)
