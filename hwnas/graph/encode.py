"""Encode any ONNX model as a :class:`~hwnas.graph.data.GraphData`: operators, edges, features.

Nodes are the model's operators except ``Constant`` (its tensor is a constant, like an
initializer) and ``Identity`` (bypassed: its producer is wired to its consumers). Edges go from the
node that produces a tensor to each node that consumes it (one edge per tensor and consumer).
Shapes come from ONNX shape inference; symbolic dimensions count as 1.

Node features (:data:`NODE_FEATURES`): a one-hot of the op type over :data:`OP_VOCAB` plus an
``op_other`` column, then numbers, ``log1p``-scaled except ``log2_groups``, ``is_depthwise`` and
``num_inputs``:

* ``kernel_h``, ``kernel_w``: kernel of Conv/ConvTranspose/pools (global pools: the input's
  spatial size); 0 for ops without a kernel.
* ``stride``: the largest stride of Conv/ConvTranspose/pools (1 if absent); 0 for other ops.
* ``log2_groups``, ``is_depthwise``: of convolutions (0 for other ops); depthwise means
  ``groups == in_channels > 1``.
* ``in_channels``, ``out_channels``: dim 1 of the data input and of the output (Gemm/MatMul: the
  reduction size K and the output size N).
* ``out_h``, ``out_w``: output dims 2 and 3 (1 where the output has fewer dims).
* ``flops``: ``2 * MACs`` for Conv/ConvTranspose/Gemm/MatMul (as :func:`hwnas.onnx_graph.node_macs`);
  output elements x kernel area for pools; output elements for other compute ops; 0 for pure
  data-movement ops (:data:`DATA_MOVEMENT_OPS`).
* ``params``: elements of the node's initializer inputs.
* ``bytes``: ``4 * (input + output + weight elements)`` (weights: initializer and ``Constant`` inputs).
* ``num_inputs``: number of (non-empty) inputs.

Graph features (:data:`GRAPH_FEATURES`, raw): ``flops`` (2 x MACs, equal to
:func:`~hwnas.onnx_graph.graph_stats`), ``params``, ``bytes`` (sum over nodes), ``num_nodes``,
``depth`` (nodes on the longest path), ``input_h``, ``input_w``, ``count_<Op>`` for each op of the
vocabulary and ``count_other``, FLOPs of dense convolutions, depthwise convolutions and
Gemm/MatMul, FLOPs of all other ops, and bytes of memory-bound ops (everything but conv/gemm).

Bump :data:`ENCODER_VERSION` whenever any of this changes: caches and predictor files record it.

Example:
    >>> from hwnas.space import NB201Space
    >>> from hwnas.export import arch_to_onnx
    >>> space = NB201Space()
    >>> g = encode_onnx(arch_to_onnx(space, space.from_index(1)))
    >>> g.x.shape[1] == len(NODE_FEATURES), g.node_keys[0]
    (True, 'Conv|k3x3|s1|g1|c3>16|32x32')
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np
import onnx

from hwnas.graph.data import GraphData
from hwnas.onnx_graph import ShapedGraph, graph_stats, node_macs, shaped_graph

#: Version of the features below; caches and predictor files made with another version are refused.
ENCODER_VERSION = 1

#: Op types with their own one-hot column (then one ``op_other`` column).
OP_VOCAB: tuple[str, ...] = (
    "Conv", "ConvTranspose", "Gemm", "MatMul", "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish",
    "Mul", "Add", "Sub", "Div", "AveragePool", "MaxPool", "GlobalAveragePool", "BatchNormalization",
    "Concat", "Reshape", "Flatten", "Transpose", "Resize", "Softmax", "Pad", "Split", "Slice",
    "ReduceMean",
)  # fmt: skip
NUM_OP_COLUMNS = len(OP_VOCAB) + 1

NUMERIC_FEATURES: tuple[str, ...] = (
    "kernel_h", "kernel_w", "stride", "log2_groups", "is_depthwise", "in_channels", "out_channels",
    "out_h", "out_w", "flops", "params", "bytes", "num_inputs",
)  # fmt: skip
#: Node feature columns: the op one-hot, then :data:`NUMERIC_FEATURES`.
NODE_FEATURES: tuple[str, ...] = tuple(f"op_{op}" for op in OP_VOCAB) + ("op_other",) + NUMERIC_FEATURES
#: Numeric node features stored as ``log1p(value)``.
LOG_SCALED: frozenset[str] = frozenset(NUMERIC_FEATURES) - {"log2_groups", "is_depthwise", "num_inputs"}

#: Whole-model features (raw values).
GRAPH_FEATURES: tuple[str, ...] = (
    ("flops", "params", "bytes", "num_nodes", "depth", "input_h", "input_w")
    + tuple(f"count_{op}" for op in OP_VOCAB)
    + ("count_other", "flops_conv", "flops_dwconv", "flops_gemm", "flops_other", "bytes_memory_bound")
)

CONV_OPS = frozenset({"Conv", "ConvTranspose"})
GEMM_OPS = frozenset({"Gemm", "MatMul"})
POOL_OPS = frozenset({"AveragePool", "MaxPool", "LpPool"})
GLOBAL_POOL_OPS = frozenset({"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"})
#: Ops that only move or re-view data: no FLOPs (their cost shows in ``bytes``).
DATA_MOVEMENT_OPS = frozenset({
    "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Split", "Slice", "Pad",
    "Gather", "Expand", "Tile", "Shape", "Size", "Cast", "Dropout", "ConstantOfShape", "DepthToSpace",
    "SpaceToDepth",
})  # fmt: skip

_OP_COLUMN = {op: i for i, op in enumerate(OP_VOCAB)}
_NUM_COLUMN = {name: NUM_OP_COLUMNS + i for i, name in enumerate(NUMERIC_FEATURES)}
_GRAPH_COLUMN = {name: i for i, name in enumerate(GRAPH_FEATURES)}
_BYTES_PER_ELEMENT = 4

def load_model(model: onnx.ModelProto | bytes | str | os.PathLike[str]) -> onnx.ModelProto:
    """``model`` itself, parsed from serialized bytes, or loaded from a file path."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(model, (bytes, bytearray, memoryview)):
        return onnx.load_from_string(bytes(model))
    return onnx.load(os.fspath(model))


def encode_onnx(model: onnx.ModelProto | bytes | str | os.PathLike[str]) -> GraphData:
    """Encode an ONNX model (proto, serialized bytes, or file path) as a :class:`GraphData`.

    Works on any model: unknown op types get the ``op_other`` column, tensors whose shape cannot
    be inferred count as empty. Deterministic: the same model gives equal arrays and keys.
    ``flops``/``params`` of the result equal ``graph_stats(model).flops``/``.params``.
    """
    proto = load_model(model)
    sg = shaped_graph(proto)
    stats = graph_stats(proto, sg)
    return _encode(sg, flops=stats.flops, params=stats.params)


def _attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _numel(dims: Sequence[int] | None) -> int:
    return int(np.prod(dims, dtype=np.int64)) if dims is not None else 0


def _spatial(dims: Sequence[int] | None) -> str:
    if dims is None:
        return "?"
    return "x".join(str(d) for d in dims[2:]) or "1"


def _channels(dims: Sequence[int] | None) -> int:
    if not dims:
        return 0
    return int(dims[1]) if len(dims) >= 2 else int(dims[0])


def _encode(sg: ShapedGraph, *, flops: int, params: int) -> GraphData:
    graph, shapes, inits = sg.graph, sg.shapes, sg.initializers
    const: set[str] = set(inits)
    alias: dict[str, str] = {}  # Identity output -> the tensor it forwards

    def real(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    kept: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type == "Constant":
            const.update(node.output)
        elif node.op_type == "Identity" and node.input and node.output:
            alias[node.output[0]] = node.input[0]
        else:
            kept.append(node)
    for out in alias:  # an Identity of a constant is a constant
        if real(out) in const:
            const.add(out)

    producer: dict[str, int] = {}
    for i, node in enumerate(kept):
        for out in node.output:
            if out:
                producer[out] = i

    x = np.zeros((len(kept), len(NODE_FEATURES)), dtype=np.float64)
    keys: list[str] = []
    edges: set[tuple[int, int, str]] = set()
    gf = graph_feature_sums()
    for i, node in enumerate(kept):
        inputs = [real(t) for t in node.input if t]
        for t in inputs:
            if t in producer:
                edges.add((producer[t], i, t))
        feats, key = node_features(node, inputs, shapes, const, inits)
        keys.append(key)
        x[i] = node_row(node.op_type, feats)
        add_node_to_sums(gf, node.op_type, feats)

    edge_list = sorted(edges, key=lambda e: (e[0], e[1], e[2]))
    edge_index = np.array([[e[0] for e in edge_list], [e[1] for e in edge_list]], dtype=np.int64).reshape(2, -1)
    return assemble(
        x,
        edge_index,
        gf,
        op_types=tuple(n.op_type for n in kept),
        node_keys=tuple(keys),
        node_names=tuple(n.name for n in kept),
        flops=flops,
        params=params,
        input_shape=sg.input_shape,
    )


def node_row(op: str, feats: dict[str, float]) -> np.ndarray:
    """Feature row (float64, :data:`NODE_FEATURES` columns) of a node of type ``op`` whose raw
    numeric features are ``feats`` (as :func:`node_features` returns them)."""
    row = np.zeros(len(NODE_FEATURES), dtype=np.float64)
    row[_OP_COLUMN.get(op, len(OP_VOCAB))] = 1.0
    for name, value in feats.items():
        row[_NUM_COLUMN[name]] = math.log1p(value) if name in LOG_SCALED else value
    return row


def graph_feature_sums() -> np.ndarray:
    """Zeroed float64 accumulator of :data:`GRAPH_FEATURES` for :func:`add_node_to_sums`."""
    return np.zeros(len(GRAPH_FEATURES), dtype=np.float64)


def add_node_to_sums(gf: np.ndarray, op: str, feats: dict[str, float]) -> None:
    """Add one node's op count, bytes and FLOPs to the graph-feature accumulator ``gf``."""
    gf[_GRAPH_COLUMN[f"count_{op}" if op in _OP_COLUMN else "count_other"]] += 1
    gf[_GRAPH_COLUMN["bytes"]] += feats["bytes"]
    if op in CONV_OPS:
        gf[_GRAPH_COLUMN["flops_dwconv" if feats["is_depthwise"] else "flops_conv"]] += feats["flops"]
    elif op in GEMM_OPS:
        gf[_GRAPH_COLUMN["flops_gemm"]] += feats["flops"]
    else:
        gf[_GRAPH_COLUMN["flops_other"]] += feats["flops"]
        gf[_GRAPH_COLUMN["bytes_memory_bound"]] += feats["bytes"]


def assemble(
    x: np.ndarray,
    edge_index: np.ndarray,
    gf: np.ndarray,
    *,
    op_types: tuple[str, ...],
    node_keys: tuple[str, ...],
    node_names: tuple[str, ...],
    flops: int,
    params: int,
    input_shape: Sequence[int],
    depth: int | None = None,
) -> GraphData:
    """The :class:`GraphData` of a graph whose node rows are ``x`` (float64), whose edges are
    ``edge_index`` (sorted by producer, then consumer) and whose per-node sums are in ``gf``;
    fills in the whole-graph features (FLOPs, params, node count, depth, input size).
    ``depth`` (nodes on the longest path) is computed from the edges unless given."""
    inp = tuple(input_shape)
    n = int(x.shape[0])
    gf[_GRAPH_COLUMN["flops"]] = flops
    gf[_GRAPH_COLUMN["params"]] = params
    gf[_GRAPH_COLUMN["num_nodes"]] = n
    gf[_GRAPH_COLUMN["depth"]] = _depth(n, edge_index) if depth is None else depth
    gf[_GRAPH_COLUMN["input_h"]] = inp[2] if len(inp) > 2 else 0
    gf[_GRAPH_COLUMN["input_w"]] = inp[3] if len(inp) > 3 else (1 if len(inp) > 2 else 0)
    return GraphData(
        x=x.astype(np.float32),
        edge_index=edge_index,
        graph_features=gf.astype(np.float32),
        op_types=op_types,
        node_keys=node_keys,
        flops=int(flops),
        params=int(params),
        node_names=node_names,
    )


def node_features(
    node: onnx.NodeProto,
    inputs: list[str],
    shapes: dict[str, list[int]],
    const: set[str],
    inits: dict[str, list[int]],
) -> tuple[dict[str, float], str]:
    """Raw numeric features and the lookup key of one node.

    Args:
        node: the node (its op type and attributes are read).
        inputs: its non-empty input tensor names, ``Identity`` outputs resolved to their source.
        shapes: tensor name -> dims (as :class:`~hwnas.onnx_graph.ShapedGraph`).
        const: names of constant tensors (initializers, ``Constant`` outputs).
        inits: initializer name -> dims.
    """
    op = node.op_type
    data_in = [t for t in inputs if t not in const]
    weights = [t for t in inputs if t in const]
    in_dims = shapes.get(data_in[0]) if data_in else None
    out_dims = shapes.get(node.output[0]) if node.output and node.output[0] else None
    f: dict[str, float] = dict.fromkeys(NUMERIC_FEATURES, 0.0)
    f["num_inputs"] = len(inputs)
    f["params"] = sum(_numel(inits[t]) for t in weights if t in inits)
    f["bytes"] = _BYTES_PER_ELEMENT * (
        sum(_numel(shapes.get(t)) for t in data_in)
        + sum(_numel(shapes.get(o)) for o in node.output if o)
        + sum(_numel(shapes.get(t)) for t in weights)
    )
    f["in_channels"] = _channels(in_dims)
    f["out_channels"] = _channels(out_dims)
    if out_dims is not None:
        f["out_h"] = out_dims[2] if len(out_dims) > 2 else 1
        f["out_w"] = _numel(out_dims[3:]) if len(out_dims) > 3 else 1
    out_n = _numel(out_dims)
    spatial = _spatial(out_dims)
    batch = f"|n{out_dims[0]}" if out_dims and out_dims[0] != 1 else ""

    if op in CONV_OPS or op in POOL_OPS or op in GLOBAL_POOL_OPS:
        if op in GLOBAL_POOL_OPS:
            kernel = list(in_dims[2:]) if in_dims else []
            strides: list[int] = [1]
        else:
            w = shapes.get(inputs[1]) if op in CONV_OPS and len(inputs) > 1 else None
            kernel = list(_attr(node, "kernel_shape", None) or (w[2:] if w else []))
            strides = list(_attr(node, "strides", None) or [1])
        f["kernel_h"] = kernel[0] if kernel else 1
        f["kernel_w"] = _numel(kernel[1:]) if len(kernel) > 1 else 1
        f["stride"] = max(strides)
        k = "x".join(str(v) for v in kernel) or "?"
        s = str(strides[0]) if len(set(strides)) == 1 else "x".join(str(v) for v in strides)
        if op in CONV_OPS:
            groups = int(_attr(node, "group", 1))
            f["log2_groups"] = math.log2(max(groups, 1))
            f["is_depthwise"] = float(groups > 1 and groups == f["in_channels"])
            f["flops"] = 2 * node_macs(node, shapes)
            dil = list(_attr(node, "dilations", None) or [1])
            d = "" if max(dil) == 1 else "|d" + "x".join(str(v) for v in dil)
            key = f"{op}|k{k}|s{s}|g{groups}|c{_channels(in_dims)}>{_channels(out_dims)}|{spatial}{d}{batch}"
        else:
            f["flops"] = out_n * _numel(kernel)
            key = f"{op}|k{k}|s{s}|c{_channels(out_dims)}|{spatial}{batch}"
        return f, key
    if op in GEMM_OPS:
        a = shapes.get(inputs[0]) if inputs else None
        kdim = 0
        if a:
            kdim = a[0] if (op == "Gemm" and _attr(node, "transA", 0)) else a[-1]
        n = out_dims[-1] if out_dims else 0
        f["in_channels"], f["out_channels"] = kdim, n
        f["flops"] = 2 * node_macs(node, shapes)
        m = _numel(out_dims[:-1]) if out_dims else 0
        return f, f"{op}|c{kdim}>{n}|m{m}"
    f["flops"] = 0 if op in DATA_MOVEMENT_OPS else out_n
    key = f"{op}|c{_channels(out_dims)}|{spatial}{batch}"
    if in_dims is not None and out_dims is not None and list(in_dims) != list(out_dims):
        key += "|from" + "x".join(str(v) for v in in_dims[1:])
    return f, key


def _depth(n: int, edge_index: np.ndarray) -> int:
    """Number of nodes on the longest path (0 for an empty graph)."""
    if n == 0:
        return 0
    succ: list[list[int]] = [[] for _ in range(n)]
    indeg = [0] * n
    for s, t in zip(edge_index[0].tolist(), edge_index[1].tolist()):
        succ[s].append(t)
        indeg[t] += 1
    longest = [1] * n
    ready = [i for i in range(n) if indeg[i] == 0]
    while ready:
        i = ready.pop()
        for j in succ[i]:
            longest[j] = max(longest[j], longest[i] + 1)
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(j)
    return max(longest)

