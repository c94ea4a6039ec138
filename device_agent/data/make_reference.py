"""Writes ``reference.onnx``, the agent's drift reference (developers only; needs ``onnx``).

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
    graph = helper.make_graph(nodes, "device_agent_reference_v1",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="device_agent")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "reference.onnx"
    out.write_bytes(build().SerializeToString())
    print(f"wrote {out} ({out.stat().st_size} bytes)")
