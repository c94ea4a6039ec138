"""Static facts of any ONNX model: FLOPs, parameters, input shape, operator counts.

Works on every ONNX model, not only those of hwnas's spaces: shapes come from ONNX shape inference.

* ``macs``: multiply-accumulates of Conv (grouped and depthwise included), ConvTranspose, Gemm and
  MatMul at the model's input shape (symbolic dimensions taken as 1).
* ``flops``: ``2 * macs`` (one multiply and one add per MAC), the convention of most NAS papers'
  "FLOPs" when they count both.
* ``params``: elements of all initializers (after the exporter's BatchNorm folding, so the number
  that the deployed model carries).

:func:`shaped_graph` and :func:`node_macs` are the building blocks, shared with the graph encoder
(:mod:`hwnas.graph.encode`) so that both count the same MACs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import shape_inference


@dataclass(frozen=True)
class GraphStats:
    """Static facts of an ONNX model (see the module docstring for the definitions)."""

    macs: int
    flops: int
    params: int
    input_shape: tuple[int, ...]
    op_counts: dict[str, int] = field(default_factory=dict)
    nodes: int = 0
    opset: int = 0

    def summary(self) -> dict[str, Any]:
        """Small JSON-able dict stored with the model in the latency database."""
        return {"nodes": self.nodes, "opset": self.opset, "op_counts": dict(sorted(self.op_counts.items()))}


@dataclass(frozen=True)
class ShapedGraph:
    """An ONNX graph after shape inference, with the shape of every tensor that has one.

    Attributes:
        graph: the inferred graph (a copy; the caller's model is not modified).
        shapes: tensor name -> dims (symbolic dims as 1), for graph inputs/outputs, inferred
            intermediate tensors and initializers. Tensors that inference could not type are absent.
        initializers: initializer name -> dims.
        input_shape: dims of the first graph input that is not an initializer (``()`` if none).
        opset: default-domain opset of the model.
    """

    graph: onnx.GraphProto
    shapes: dict[str, list[int]]
    initializers: dict[str, list[int]]
    input_shape: tuple[int, ...]
    opset: int


def _dims(value_info: onnx.ValueInfoProto) -> list[int]:
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else 1 for d in shape.dim]


def shaped_graph(model: onnx.ModelProto) -> ShapedGraph:
    """Run ONNX shape inference on ``model`` (not modified) and collect tensor shapes."""
    inferred = shape_inference.infer_shapes(model)
    graph = inferred.graph
    shapes: dict[str, list[int]] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        if vi.type.tensor_type.HasField("shape"):
            shapes[vi.name] = _dims(vi)
    inits = {t.name: list(t.dims) for t in graph.initializer}
    shapes.update(inits)
    real_inputs = [i for i in graph.input if i.name not in inits]
    input_shape = tuple(_dims(real_inputs[0])) if real_inputs else ()
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    return ShapedGraph(graph=graph, shapes=shapes, initializers=inits, input_shape=input_shape, opset=int(opset))


def graph_stats(model: onnx.ModelProto, shaped: ShapedGraph | None = None) -> GraphStats:
    """Compute :class:`GraphStats` of ``model`` (not modified).

    Args:
        shaped: ``shaped_graph(model)`` if the caller already has it (saves a second inference).
    """
    sg = shaped if shaped is not None else shaped_graph(model)
    macs = sum(node_macs(node, sg.shapes) for node in sg.graph.node)
    params = int(sum(int(np.prod(d)) if d else 1 for d in sg.initializers.values()))
    return GraphStats(
        macs=int(macs),
        flops=int(2 * macs),
        params=params,
        input_shape=sg.input_shape,
        op_counts=dict(Counter(n.op_type for n in sg.graph.node)),
        nodes=len(sg.graph.node),
        opset=sg.opset,
    )


def node_macs(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> int:
    """Multiply-accumulates of one node: Conv, ConvTranspose, Gemm, MatMul; 0 for every other op
    and for nodes whose shapes are unknown."""
    op = node.op_type
    if op in ("Conv", "ConvTranspose"):
        if len(node.input) < 2:
            return 0
        w = shapes.get(node.input[1])
        ref = shapes.get(node.output[0]) if op == "Conv" else shapes.get(node.input[0])
        if not w or not ref:
            return 0
        # Conv: out elements x (Cin/groups x kernel); ConvTranspose: in elements x (Cout/groups x kernel)
        return int(np.prod(ref)) * int(np.prod(w[1:]))
    if op == "Gemm":
        a, out = shapes.get(node.input[0]), shapes.get(node.output[0])
        if not a or not out:
            return 0
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        k = a[0] if trans_a else a[-1]
        return int(np.prod(out)) * int(k)
    if op == "MatMul":
        a, out = shapes.get(node.input[0]), shapes.get(node.output[0])
        if not a or not out:
            return 0
        return int(np.prod(out)) * int(a[-1])
    return 0
