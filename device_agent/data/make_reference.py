"""Writes the agent's drift references (developers only; needs ``onnx``): ``reference.onnx`` (the
small one, v1) and the panel's ``reference-mid.onnx`` and ``reference-large.onnx``.

The file is committed; the agent never runs this script. Its sha256 is the reference's identity in
every latency database, so the script is deterministic and must not change once released: a new
reference is a new file name and a new :data:`device_agent.reference.REFERENCE_VERSION`.

The network looks like a small NAS-Bench-201 network on purpose (3x3 and 1x1 convolutions with
ReLU, residual adds, a 3x3 average pool, a global pool and a classifier on a 1x3x32x32 input), so
that whatever slows the candidates down (another tenant, the clock, the caches) slows it down too.

    python device_agent/data/make_reference.py   # rewrites device_agent/data/reference.onnx
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], name: str) -> onnx.ModelProto:
    """The checked model of a graph from 1x3x32x32 ``x`` to 1x10 ``y`` (opset 17, IR 8)."""
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="device_agent")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build() -> onnx.ModelProto:
    """The reference network (weights from numpy seed 0)."""
    rng = np.random.default_rng(0)
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def weight(name: str, shape: tuple[int, ...]) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32), name))
        return name

    def conv(x: str, out: str, cin: int, cout: int, k: int) -> str:
        w, b = weight(f"{out}_w", (cout, cin, k, k)), weight(f"{out}_b", (cout,))
        nodes.append(helper.make_node("Conv", [x, w, b], [out], pads=[k // 2] * 4, kernel_shape=[k, k]))
        return out

    def relu(x: str, out: str) -> str:
        nodes.append(helper.make_node("Relu", [x], [out]))
        return out

    h = relu(conv("x", "stem", 3, 16, 3), "stem_r")
    for i in range(3):  # three residual blocks: relu-conv3x3, relu-conv1x1, add
        a = conv(relu(h, f"b{i}_r0"), f"b{i}_c3", 16, 16, 3)
        b = conv(relu(a, f"b{i}_r1"), f"b{i}_c1", 16, 16, 1)
        nodes.append(helper.make_node("Add", [h, b], [f"b{i}_add"]))
        h = f"b{i}_add"
    nodes.append(helper.make_node("AveragePool", [h], ["pool"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                  strides=[1, 1], count_include_pad=0))
    nodes.append(helper.make_node("GlobalAveragePool", ["pool"], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    nodes.append(helper.make_node("Gemm", ["flat", weight("fc_w", (10, 16)), weight("fc_b", (10,))], ["y"], transB=1))
    return _model(nodes, inits, "device_agent_reference_v1")


def build_staged(name: str, widths: tuple[int, ...], blocks: int, seed: int) -> onnx.ModelProto:
    """A NAS-Bench-201-shaped network of the panel: a stem, then one stage per width, each of
    ``blocks`` residual blocks (relu-conv3x3, relu-conv3x3, relu-conv1x1 and a 3x3 average pool,
    summed with the input, as a cell with conv and pool edges; the blocks of a stage share their
    weights, which keeps the file small and the work the same), stages joined by a stride-2 3x3
    convolution; a global pool and a classifier, on a 1x3x32x32 input. Sized so that the panel
    spans the candidates' latencies (``widths`` and ``blocks``), weights from numpy ``seed``."""
    rng = np.random.default_rng(seed)
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    made: set[str] = set()

    def weight(wname: str, shape: tuple[int, ...]) -> str:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32), wname))
        return wname

    def conv(x: str, out: str, cin: int, cout: int, k: int, stride: int = 1, share: str | None = None) -> str:
        """A convolution; ``share`` names weights that every block of a stage uses (a small file)."""
        wname = share or out
        if f"{wname}_w" not in made:
            made.update({f"{wname}_w", f"{wname}_b"})
            weight(f"{wname}_w", (cout, cin, k, k)), weight(f"{wname}_b", (cout,))
        nodes.append(helper.make_node("Conv", [x, f"{wname}_w", f"{wname}_b"], [out], pads=[k // 2] * 4,
                                      kernel_shape=[k, k], strides=[stride, stride]))
        return out

    def relu(x: str, out: str) -> str:
        nodes.append(helper.make_node("Relu", [x], [out]))
        return out

    def add(a: str, b: str, out: str) -> str:
        nodes.append(helper.make_node("Add", [a, b], [out]))
        return out

    h, c = conv("x", "stem", 3, widths[0], 3), widths[0]
    for s, width in enumerate(widths):
        if width != c:
            h, c = conv(relu(h, f"s{s}_rr"), f"s{s}_red", c, width, 3, stride=2), width
        for i in range(blocks):
            p = f"s{s}b{i}"
            a = conv(relu(h, f"{p}_r0"), f"{p}_c3a", c, c, 3, share=f"s{s}_c3a")
            b = conv(relu(a, f"{p}_r1"), f"{p}_c3b", c, c, 3, share=f"s{s}_c3b")
            d = conv(relu(h, f"{p}_r2"), f"{p}_c1", c, c, 1, share=f"s{s}_c1")
            nodes.append(helper.make_node("AveragePool", [a], [f"{p}_pool"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                          strides=[1, 1], count_include_pad=0))
            h = add(add(add(h, b, f"{p}_s0"), d, f"{p}_s1"), f"{p}_pool", f"{p}_out")
    nodes.append(helper.make_node("GlobalAveragePool", [relu(h, "last_r")], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"]))
    nodes.append(helper.make_node("Gemm", ["flat", weight("fc_w", (10, c)), weight("fc_b", (10,))], ["y"], transB=1))
    return _model(nodes, inits, f"device_agent_{name.replace('-', '_')}")


#: The panel's larger references: file name -> (widths, blocks per stage, weight seed).
PANEL = {"reference-mid.onnx": ((16, 32, 64), 2, 1), "reference-large.onnx": ((16, 32, 64), 5, 2)}


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    files = {"reference.onnx": build()}
    files.update({name: build_staged(name[:-5] + "-v1", *spec) for name, spec in PANEL.items()})
    for name, model in files.items():
        out = here / name
        out.write_bytes(model.SerializeToString())
        print(f"wrote {out} ({out.stat().st_size} bytes)")
